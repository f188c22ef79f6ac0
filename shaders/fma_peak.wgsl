// The benchmark's FMA-throughput kernel ("measured peak"): every invocation runs 4 independent vec4 fma chains
// a = a·mul + add for `iters` iterations from a start that depends on its index, and writes the sum of the
// 16 lanes, so nothing is optimised away: threads · iters · 4 chains · 4 lanes · 2 flops per dispatch.
{{include:elementwise}}

fn element(i: u32) {
  let m = vec4<f32>(params.mul);
  let c = vec4<f32>(params.add);
  var a0 = vec4<f32>(f32(i & 255u) * 1e-3, 0.25, 0.5, 0.75);
  var a1 = a0 + vec4<f32>(0.125);
  var a2 = a0 + vec4<f32>(0.375);
  var a3 = a0 + vec4<f32>(0.625);
  for (var k = 0u; k < params.iters; k = k + 1u) {
    a0 = fma(a0, m, c);
    a1 = fma(a1, m, c);
    a2 = fma(a2, m, c);
    a3 = fma(a3, m, c);
  }
  out[i] = dot(a0 + a1 + a2 + a3, vec4<f32>(1.0));
}
