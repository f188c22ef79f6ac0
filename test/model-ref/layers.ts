// Float64 building blocks of the reference models, composed from the op references in src/engine/ref/.
// Activations are row-major [rows, features] Float64Arrays; every function returns a new array.
import { reluForwardRef, siluForwardRef } from '../../src/engine/ref/activation';
import { biasAddRef } from '../../src/engine/ref/bias';
import { geluForwardRef } from '../../src/engine/ref/gelu';
import { dropoutForwardRef, dropoutMaskRef } from '../../src/engine/ref/dropout';
import { matmulNNRef, matmulNTRef } from '../../src/engine/ref/matmul';
import { layernormForwardRef, rmsnormForwardRef } from '../../src/engine/ref/norm';
import type { BottleneckNonLinearity, BottleneckSite } from '../../src/model/bottleneck';
import type { ModelConfig } from '../../src/model/config';

/** Reads a weight by its Hugging Face name as float64. */
export type RefWeights = (name: string) => Float64Array;

/** LoRA modules by module path, with the adapter's scale. */
export interface RefLora {
  scale: number;
  modules: Map<string, { a: Float64Array /* [r, in] */; b: Float64Array /* [out, r] */; r: number }>;
  /**
   * PEFT's lora_dropout: each adapted linear's branch reads dropout(x), with the mask of dropoutMaskRef over
   * x [M, in] from counter `cursor.next`, which then advances by M·in (so modules draw consecutive ranges in
   * the order they run). referenceLogits starts the cursor at `offset`; without a cursor a linearRef call
   * uses `offset` itself.
   */
  dropout?: { p: number; seed: number; offset: number; cursor?: { next: number } };
}

export interface RefLinear {
  module: string;
  inF: number;
  outF: number;
  /** 'out_in': W [out, in] (nn.Linear); 'in_out': W [in, out] (GPT-2's Conv1D). */
  layout: 'out_in' | 'in_out';
  bias: boolean;
}

/** y [M, out] = x·Wᵀ (or x·W) + b + scale·(x·Aᵀ)·Bᵀ, with dropout(x) in the LoRA branch when lora.dropout has p > 0. */
export function linearRef(w: RefWeights, l: RefLinear, x: Float64Array, M: number, lora?: RefLora): Float64Array {
  const W = w(`${l.module}.weight`);
  let y = l.layout === 'out_in' ? matmulNTRef(x, W, 1, M, l.outF, l.inF) : matmulNNRef(x, W, 1, M, l.outF, l.inF);
  if (l.bias) y = biasAddRef(y, w(`${l.module}.bias`), l.outF);
  const m = lora?.modules.get(l.module);
  if (m) {
    const d = lora!.dropout;
    let xin = x;
    if (d && d.p > 0) {
      const n = M * l.inF;
      const start = d.cursor ? d.cursor.next : d.offset;
      if (d.cursor) d.cursor.next += n;
      xin = dropoutForwardRef(x, dropoutMaskRef(n, d.p, d.seed, start), d.p);
    }
    const xa = matmulNTRef(xin, m.a, 1, M, m.r, l.inF);
    const low = matmulNTRef(xa, m.b, 1, M, l.outF, m.r);
    y = y.map((v, i) => v + lora!.scale * low[i]!);
  }
  return y;
}

/** The model's norm (RMSNorm, or LayerNorm with bias) over rows of C values. */
export function normRef(cfg: ModelConfig, w: RefWeights, prefix: string, x: Float64Array, C: number): Float64Array {
  const rows = x.length / C;
  if (cfg.norm === 'rmsnorm') return rmsnormForwardRef(x, w(`${prefix}.weight`), rows, C, cfg.normEps).out;
  return layernormForwardRef(x, w(`${prefix}.weight`), w(`${prefix}.bias`), rows, C, cfg.normEps).out;
}

/** Columns [c0, c0 + width) of x [rows, C]. */
export function columnsRef(x: Float64Array, C: number, c0: number, width: number): Float64Array {
  const rows = x.length / C;
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) out[r * width + c] = x[r * C + c0 + c]!;
  return out;
}

/**
 * Bottleneck adapters by key 'layers.<l>.<attn|mlp>_adapter' (bottleneck.ts's names): down [m, H], downBias [m],
 * up [H, m], upBias [H]. A site without a module is not adapted.
 */
export interface RefBottleneck {
  nonLinearity: BottleneckNonLinearity;
  modules: Map<string, { down: Float64Array; downBias: Float64Array; up: Float64Array; upBias: Float64Array; m: number }>;
}

/** y = h + up(act(down(h))) at `site` of layer l over h [M, H]; h itself when that site has no adapter. */
export function bottleneckRef(b: RefBottleneck | undefined, l: number, site: BottleneckSite, h: Float64Array, H: number): Float64Array {
  const a = b?.modules.get(`layers.${l}.${site}_adapter`);
  if (!a) return h;
  const M = h.length / H;
  const z = biasAddRef(matmulNTRef(h, a.down, 1, M, a.m, H), a.downBias, a.m);
  const act = b!.nonLinearity === 'relu' ? reluForwardRef(z) : b!.nonLinearity === 'silu' ? siluForwardRef(z) : geluForwardRef(z);
  const u = biasAddRef(matmulNTRef(act, a.up, 1, M, H, a.m), a.upBias, H);
  return h.map((v, i) => v + u[i]!);
}
