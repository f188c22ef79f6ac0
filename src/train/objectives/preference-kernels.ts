// GPU kernels of the pairwise objectives (DPO and its variants, the reward model), so that a preference step,
// like an SFT step, reads back one small buffer: the per-sequence values, the loss, its per-sequence
// coefficients and the logged metrics never leave the GPU.
//
//   rowSums          out[row] = Σ_t x[row·T + t]: per-sequence sums of the per-token NLL (−Σ log p)
//   preferenceLoss   per pair (rows p and P + p: chosen and rejected): the loss of preference-loss.ts (float64
//                    there, f32 here), coef[row] = sign · dL/dS_row · scale, and the sums of the loss and the
//                    metrics added into stats
//   expandRows       out[row·T + t] = coef[row]: the per-token weight that crossEntropyChunkBackward takes
//
// The values a pair is scored on are `sign · values[row]`: sign −1 for DPO (values are NLL sums, so S = −NLL),
// +1 for the reward model (values are rewards). Only the shapes of kernels are here; what they compute is
// preference-loss.ts's, and the tests hold the two together.
import type { GpuContext } from '../../engine/context';
import { WORKGROUP_SUM_WGSL } from '../../engine/workgroup-sum';
import type { KernelSpec } from '../../engine/kernel';
import type { Tensor } from '../../engine/tensor';
import { grid1d } from '../../engine/grid';
import type { PrefLoss } from './preference-loss';

const WG = 64;

const ROW_SUMS_WGSL = /* wgsl */ `
${WORKGROUP_SUM_WGSL}
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.x;
  var s = 0.0;
  for (var t = lid.x; t < params.T; t += {{WG}}u) {
    s += x[row * params.T + t];
  }
  let total = workgroupSum(lid.x, s);
  if (lid.x == 0u) {
    out[row] = total;
  }
}
`;

const rowSumsSpec: KernelSpec = {
  name: 'pref_row_sums',
  source: ROW_SUMS_WGSL,
  bindings: [
    { name: 'out', access: 'read_write', type: 'f32' },
    { name: 'x', access: 'read', type: 'f32' },
  ],
  params: [['T', 'u32']],
  defines: { WG },
};

/** out[R] = row sums of x [R, T] (one workgroup per row). */
export function rowSums(ctx: GpuContext, out: Tensor, x: Tensor, T: number): void {
  const R = out.size;
  if (x.size !== R * T) throw new Error(`rowSums: x holds ${x.size} values, not ${R} rows of ${T}`);
  if (R === 0) return;
  ctx.dispatch(ctx.kernel(rowSumsSpec), { out, x }, { T }, [R]);
}

const EXPAND_WGSL = /* wgsl */ `
@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  if (i >= params.n) {
    return;
  }
  out[i] = coef[i / params.T];
}
`;

const expandSpec: KernelSpec = {
  name: 'pref_expand_rows',
  source: EXPAND_WGSL,
  bindings: [
    { name: 'out', access: 'read_write', type: 'f32' },
    { name: 'coef', access: 'read', type: 'f32' },
  ],
  params: [
    ['n', 'u32'],
    ['T', 'u32'],
  ],
  defines: { WG },
};

/** out[R·T] = coef[row] at every position of the row. */
export function expandRows(ctx: GpuContext, out: Tensor, coef: Tensor, T: number): void {
  const n = coef.size * T;
  if (out.size !== n) throw new Error(`expandRows: out holds ${out.size} values, not ${coef.size} rows of ${T}`);
  if (n === 0) return;
  ctx.dispatch(ctx.kernel(expandSpec), { out, coef }, { n, T }, grid1d(n, WG, ctx.limits.maxComputeWorkgroupsPerDimension));
}

// Loss modes of the kernel; 'reward' is the reward model's −log σ(r_c − r_r).
const MODES: Record<PrefLoss | 'reward', number> = { sigmoid: 0, hinge: 1, ipo: 2, orpo: 3, simpo: 4, reward: 5 };

/** Metrics the loss kernel adds into stats[metricSlot ..], in this order (sums over the pairs). */
export const PAIR_METRICS = ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'logps/chosen', 'logps/rejected', 'sft_loss', 'odds_ratio_loss'] as const;

const LOSS_WGSL = /* wgsl */ `
const NM = 8u; // loss + 7 metrics
var<workgroup> part: array<array<f32, {{WG}}>, 8>;

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
  for (var m = 0u; m < NM; m++) {
    part[m][lid.x] = acc[m];
  }
  workgroupBarrier();
  for (var k = {{WG}}u / 2u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      for (var m = 0u; m < NM; m++) {
        part[m][lid.x] += part[m][lid.x + k];
      }
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    stats[params.lossSlot] += part[0][0];
    for (var m = 1u; m < NM; m++) {
      stats[params.metricSlot + m - 1u] += part[m][0];
    }
  }
}
`;

const lossSpec: KernelSpec = {
  name: 'pref_loss',
  source: LOSS_WGSL,
  bindings: [
    { name: 'coef', access: 'read_write', type: 'f32' },
    { name: 'stats', access: 'read_write', type: 'f32' },
    { name: 'values', access: 'read', type: 'f32' },
    { name: 'refs', access: 'read', type: 'f32' },
    { name: 'lens', access: 'read', type: 'f32' },
  ],
  params: [
    ['P', 'u32'],
    ['mode', 'u32'],
    ['lossSlot', 'u32'],
    ['metricSlot', 'u32'],
    ['beta', 'f32'],
    ['gamma', 'f32'],
    ['ftx', 'f32'],
    ['sign', 'f32'],
    ['scale', 'f32'],
  ],
  defines: { WG },
};

export interface PairLossKernelParams {
  loss: PrefLoss | 'reward';
  beta: number;
  gamma: number;
  ftx: number;
  /** −1: values are NLL sums (DPO); +1: values are the scores themselves (reward model). */
  sign: 1 | -1;
  /** Multiplies the coefficients: 1 / (pairs of the optimizer step). */
  scale: number;
  /** stats[lossSlot] += Σ loss; stats[metricSlot + i] += Σ PAIR_METRICS[i]. */
  lossSlot: number;
  metricSlot: number;
}

/**
 * The pairwise loss of P pairs: values/ref/lens [2P] (chosen rows first, then rejected; lens are answer token
 * counts as f32; ref is read only by sigmoid/hinge/ipo). Writes coef [2P] and adds into stats. One workgroup.
 */
export function preferenceLoss(ctx: GpuContext, coef: Tensor, stats: Tensor, values: Tensor, ref: Tensor, lens: Tensor, p: PairLossKernelParams): void {
  const rows = values.size;
  if (rows % 2 !== 0 || coef.size !== rows || ref.size !== rows || lens.size !== rows) {
    throw new Error(`preferenceLoss: coef, values, ref and lens must hold 2·P values (got ${coef.size}, ${values.size}, ${ref.size}, ${lens.size})`);
  }
  if (p.lossSlot >= stats.size || p.metricSlot + PAIR_METRICS.length > stats.size) throw new Error('preferenceLoss: the stats slots lie outside stats');
  if (rows === 0) return;
  ctx.dispatch(
    ctx.kernel(lossSpec),
    { coef, stats, values, refs: ref, lens },
    {
      P: rows / 2,
      mode: MODES[p.loss],
      lossSlot: p.lossSlot,
      metricSlot: p.metricSlot,
      beta: p.beta,
      gamma: p.gamma,
      ftx: p.ftx,
      sign: p.sign,
      scale: p.scale,
    },
    [1],
  );
}
