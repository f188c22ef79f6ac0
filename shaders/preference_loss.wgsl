// The pairwise preference loss of P pairs in one workgroup (rows p and P + p: chosen and rejected), in f32: the
// float64 formulas of src/train/objectives/preference-loss.ts per mode (0 sigmoid, 1 hinge, 2 ipo, 3 orpo,
// 4 simpo, 5 the reward model's −log σ(r_c − r_r)). A pair is scored on sign · values[row] (sign −1: values are
// NLL sums, S = −NLL; +1: values are rewards); ipo, orpo and simpo divide by the token counts lens[row].
//   coef[row]  = sign · dL/dS_row · scale
//   stats[lossSlot] += Σ_pairs loss,  stats[metricSlot + i] += Σ_pairs metric i (PAIR_METRICS' order)
// The eight sums take workgroupSum's tree one after another (a barrier between).
{{include:workgroup_sum}}

const NM = 8u; // loss + 7 metrics

fn log1p_(y: f32) -> f32 {
  let u = 1.0 + y;
  if (u == 1.0) {
    return y;
  }
  return log(u) * (y / (u - 1.0));
}

fn expm1_(x: f32) -> f32 {
  let u = exp(x);
  if (u == 1.0) {
    return x;
  }
  let um1 = u - 1.0;
  if (um1 == -1.0) {
    return -1.0;
  }
  return um1 * x / log(u);
}

// −log σ(x)
fn nls(x: f32) -> f32 {
  if (x >= 0.0) {
    return log1p_(exp(-x));
  }
  return -x + log1p_(exp(x));
}

fn sig(x: f32) -> f32 {
  if (x >= 0.0) {
    return 1.0 / (1.0 + exp(-x));
  }
  let e = exp(x);
  return e / (1.0 + e);
}

// log(1 − e^x), x < 0
fn log1mexp(x: f32) -> f32 {
  if (x > -0.6931472) {
    return log(-expm1_(x));
  }
  return log1p_(-exp(x));
}

@compute @workgroup_size({{WG}})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let P = params.P;
  let beta = params.beta;
  var acc: array<f32, 8>;
  for (var m = 0u; m < NM; m++) {
    acc[m] = 0.0;
  }
  for (var p = lid.x; p < P; p += {{WG}}u) {
    let Sc = params.sign * values[p];
    let Sr = params.sign * values[P + p];
    let Nc = lens[p];
    let Nr = lens[P + p];
    var nc = 1.0;
    var nr = 1.0;
    if (params.mode == 2u || params.mode == 3u || params.mode == 4u) {
      nc = Nc;
      nr = Nr;
    }
    let c = Sc / nc;
    let r = Sr / nr;
    var loss = 0.0;
    var dc = 0.0;
    var dr = 0.0;
    var rwc = 0.0;
    var rwr = 0.0;
    var orl = 0.0;
    if (params.mode <= 2u) {
      let rc = refs[p] / nc;
      let rr = refs[P + p] / nr;
      let h = (c - rc) - (r - rr);
      var dh = 0.0;
      if (params.mode == 0u) {
        loss = nls(beta * h);
        dh = -beta * sig(-beta * h);
      } else if (params.mode == 1u) {
        let mg = 1.0 - beta * h;
        loss = max(mg, 0.0);
        dh = select(0.0, -beta, mg > 0.0);
      } else {
        let d = h - 1.0 / (2.0 * beta);
        loss = d * d;
        dh = 2.0 * d;
      }
      dc = dh;
      dr = -dh;
      rwc = beta * (c - rc);
      rwr = beta * (r - rr);
    } else if (params.mode == 3u) {
      let z = (c - r) - (log1mexp(c) - log1mexp(r));
      orl = nls(z);
      loss = -c + beta * orl;
      let dz = -beta * sig(-z);
      dc = -1.0 + dz / (-expm1_(c));
      dr = -dz / (-expm1_(r));
      rwc = beta * c;
      rwr = beta * r;
    } else if (params.mode == 4u) {
      let u = beta * (c - r) - params.gamma;
      loss = nls(u);
      let du = -sig(-u);
      dc = beta * du;
      dr = -beta * du;
      rwc = beta * c;
      rwr = beta * r;
    } else {
      let d = c - r;
      loss = nls(d);
      let g = sig(-d);
      dc = -g;
      dr = g;
      rwc = c;
      rwr = r;
    }
    let sft = -Sc / Nc;
    var dC = dc / nc;
    if (params.mode != 5u) {
      loss += params.ftx * sft;
      dC -= params.ftx / Nc;
    }
    coef[p] = params.sign * dC * params.scale;
    coef[P + p] = params.sign * (dr / nr) * params.scale;
    acc[0] += loss;
    acc[1] += rwc;
    acc[2] += rwr;
    acc[3] += select(0.0, 1.0, rwc > rwr);
    acc[4] += c;
    acc[5] += r;
    acc[6] += sft;
    acc[7] += orl;
  }
  var total: array<f32, 8>;
  for (var m = 0u; m < NM; m++) {
    if (m > 0u) {
      workgroupBarrier();
    }
    total[m] = workgroupSum(lid.x, acc[m]);
  }
  if (lid.x == 0u) {
    stats[params.lossSlot] += total[0];
    for (var m = 1u; m < NM; m++) {
      stats[params.metricSlot + m - 1u] += total[m];
    }
  }
}
