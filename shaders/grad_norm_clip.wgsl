// The clipping coefficient of torch.nn.utils.clip_grad_norm_: min(1, maxNorm / (norm + 1e-6)), or 1 when
// clipping is off (maxNorm ≤ 0). A NaN norm gives NaN (as torch.clamp does), an infinite one 0.
@compute @workgroup_size(1)
fn main() {
  if (params.maxNorm <= 0.0) {
    clipScale[0] = 1.0;
    return;
  }
  let c = params.maxNorm / (norm[0] + 1e-6);
  clipScale[0] = select(c, 1.0, c > 1.0);
}
