// The tiled flash backward kernels' load of a block of BR query rows t0 .. t0 + BR of head (b, h): q
// (pre-scaled) into Qs and dOut into dOs, zeros past T. Every invocation takes part; the caller puts the
// barriers around it.
{{include:flash_tiled}}

var<workgroup> Qs: array<f32, {{BR}} * {{HDP}}>;
var<workgroup> dOs: array<f32, {{BR}} * {{HDP}}>;

fn loadQueryBlock(tid: u32, b: u32, h: u32, t0: u32) {
  let T = params.T;
  for (var e = tid; e < BR * HD; e += WG) {
    let rr = e / HD;
    let d = e % HD;
    let tt = t0 + rr;
    var x = 0.0;
    var g = 0.0;
    if (tt < T) {
      let at = ((b * T + tt) * params.H + h) * HD + d;
      x = q[at] * params.scale;
      g = dOut[at];
    }
    Qs[rr * HDP + d] = x;
    dOs[rr * HDP + d] = g;
  }
}
