// The dispatch-overhead benchmark's kernel (bench/kernels.ts): it touches its binding only for an impossible
// parameter, so nothing is optimized away and nothing runs.
@compute @workgroup_size(64)
fn main() {
  if (params.n == 0xffffffffu) {
    buf[0] = 1.0;
  }
}
