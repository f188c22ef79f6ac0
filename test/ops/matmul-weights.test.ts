// Frozen weights read packed by every matmul kernel (operand b of matmulNT and matmulNN: the forward y = x·Wᵀ
// and the input gradient dx = dy·W): bf16 and f16 two a u32 word, NF4/FP4/int8 codes with per-block scales.
// A packed weight must give the very bits its f32 copy gives (the widened 16-bit values, the dequantized
// level·scale values): same kernel, same sums, only the loads differ. Plain, fused (LoRA product + bias) and
// split-K, on every kernel, at sizes whose blocks of 64 straddle rows and whose last word is half full; and the
// dequantized product against the float64 reference of the quantization (src/engine/ref/quantize.ts).
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { f32ToBf16Bits, f32ToF16Bits, bf16BitsToF32, f16BitsToF32 } from '../../src/engine/half';
import { MATMUL_VARIANTS, matmulNN, matmulNT, type MatmulOptions } from '../../src/engine/ops/matmul';
import { dequantizeWeight, quantizeWeight, type QuantFormat } from '../../src/engine/quantize';
import { matmulNTRef } from '../../src/engine/ref/matmul';
import { dequantize4bitRef, FP4_LEVELS_REF, NF4_LEVELS_REF, quantize4bitRef } from '../../src/engine/ref/quantize';
import type { Tensor } from '../../src/engine/tensor';
import { uploadQuantized, type WeightTensor } from '../../src/engine/weight';
import { expectClose } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { Rng } from '../helpers/rng';

type Format = 'bf16' | 'f16' | QuantFormat;
const FORMATS: Format[] = ['bf16', 'f16', 'nf4', 'fp4', 'int8'];

/** The weight as stored and the f32 values the kernels must compute with. */
function packed(ctx: GpuContext, shape: number[], values: Float32Array, format: Format): { w: WeightTensor; f32: Float32Array } {
  if (format === 'bf16' || format === 'f16') {
    const bits = Uint16Array.from(values, (v) => (format === 'bf16' ? f32ToBf16Bits(v) : f32ToF16Bits(v)));
    const f32 = Float32Array.from(bits, (b) => (format === 'bf16' ? bf16BitsToF32(b) : f16BitsToF32(b)));
    return { w: ctx.upload(shape, bits, format), f32 };
  }
  const q = quantizeWeight(values, format, true);
  return { w: uploadQuantized(ctx, shape, q, 'test weight'), f32: dequantizeWeight(q, values.length) };
}

async function same(ctx: GpuContext, what: string, a: Tensor, b: Tensor): Promise<void> {
  const x = await ctx.readF32(a);
  const y = await ctx.readF32(b);
  let diff = 0;
  for (let i = 0; i < x.length; i++) if (Object.is(x[i], y[i]) === false && x[i] !== y[i]) diff++;
  expect(diff, `${what}: elements that differ from the f32 weight's result`).toBe(0);
}

// [M tokens, N out, K in]: blocks of 64 straddle rows (K = 37, 68), an odd element count (last word half full);
// 20 × 68 lets the register and quad kernels read 4 packed values at a time in both layouts (B_QUADS:
// K % 4 = 0 in the forward, N % 4 = 0 in the input gradient), 7 × 37 makes them read one at a time.
const SIZES: [number, number, number][] = [
  [5, 7, 37],
  [12, 20, 68],
];

describe('matmul with packed frozen weights', () => {
  /**
   * A format's reader (wAt) is the same code in every kernel, and each kernel calls it from one load function per
   * layout of b (TRANS_B true: the forward; false: the input gradient); the register and quad kernels share those
   * (lib/matmul_blocks.wgsl). So: every format through the forward and the fused input gradient on the tiled
   * kernel, NF4 through split-K too; NF4 through both layouts on the quad kernel and the forward on the register one. Kernel
   * compiles are what costs here (SwiftShader compiles each on the CPU), so the case list is what covers the
   * paths; the model tests run bf16 weights through the adapter's own kernel everywhere.
   */
  for (const variant of MATMUL_VARIANTS) {
    it(`${variant}: packed weights give the bits of their f32 values`, async () => {
      const ctx = await testContext();
      if (variant === 'subgroup' && !ctx.hasSubgroups) return; // matmul.test.ts checks that this refuses loudly
      const own = variant === 'tiled';
      const rng = new Rng(4242);
      for (const [M, N, K] of SIZES) {
        const x = ctx.upload([M, K], Float32Array.from(rng.tensor(M * K)));
        const dy = ctx.upload([M, N], Float32Array.from(rng.tensor(M * N)));
        const r = 4;
        const xa = ctx.upload([M, r], Float32Array.from(rng.tensor(M * r)));
        const loraB = ctx.upload([N, r], Float32Array.from(rng.tensor(N * r)));
        const t = ctx.upload([M, r], Float32Array.from(rng.tensor(M * r)));
        const loraA = ctx.upload([r, K], Float32Array.from(rng.tensor(r * K)));
        const bias = ctx.upload([N], Float32Array.from(rng.tensor(N)));
        const values = Float32Array.from(rng.tensor(N * K, 0.05));
        // The quad kernel also reads FP4 and int8 four at a time (their wQuad), in the forward.
        // (On the size where it reads four at a time: their one-at-a-time reader is the tiled kernel's.)
        const quads = N % 4 === 0 && K % 4 === 0;
        for (const format of own ? FORMATS : variant === 'subgroup' ? ((quads ? ['nf4', 'fp4', 'int8'] : ['nf4']) as Format[]) : (['nf4'] as Format[])) {
          const { w, f32 } = packed(ctx, [N, K], values, format);
          const w32 = ctx.upload([N, K], f32);
          const run = (weight: WeightTensor, opts: MatmulOptions, nn: boolean) => {
            const out = ctx.zeros(nn ? [M, K] : [M, N]);
            if (nn) matmulNN(ctx, out, dy, weight, { variant, ...opts });
            else matmulNT(ctx, out, x, weight, { variant, ...opts });
            return out;
          };
          const all: [string, MatmulOptions, boolean][] = [
            ['y = x·Wᵀ', {}, false],
            ['y = x·Wᵀ + s·xa·Bᵀ + b (fused)', { addProduct: { a: xa, b: loraB, layout: 'NT', alpha: 0.5 }, bias }, false],
            ['dx = dy·W', {}, true],
            ['dx += dy·W + s·t·A (fused)', { accumulate: true, addProduct: { a: t, b: loraA, layout: 'NN', alpha: 2 } }, true],
            ['dx = dy·W, split-K', { splitK: 2 }, true],
          ];
          // Split-K reads b through the plain kernel in chunks of K: once (NF4, the reader with scales) is enough.
          const cases = own ? [all[0]!, all[3]!, ...(format === 'nf4' ? [all[4]!] : [])] : variant === 'subgroup' && format === 'nf4' ? [all[0]!, all[3]!] : [all[0]!];
          for (const [name, opts, nn] of cases) await same(ctx, `${variant} ${format} ${M}×${N}×${K} ${name}`, run(w, opts, nn), run(w32, opts, nn));
          w.release();
          w32.release();
        }
      }
    });
  }

  it('the dequantized product is the float64 reference of NF4 and FP4 quantization', async () => {
    const ctx = await testContext();
    const rng = new Rng(77);
    const [M, N, K] = [9, 24, 100];
    const values = Float32Array.from(rng.tensor(N * K, 0.05));
    const x = Float32Array.from(rng.tensor(M * K));
    for (const [format, levels] of [['nf4', NF4_LEVELS_REF], ['fp4', FP4_LEVELS_REF]] as const) {
      const q = quantizeWeight(values, format, false);
      const w = uploadQuantized(ctx, [N, K], q, 'test weight');
      const out = ctx.empty([M, N]);
      matmulNT(ctx, out, ctx.upload([M, K], x), w);
      const ref = quantize4bitRef(Float64Array.from(values), levels);
      const want = matmulNTRef(Float64Array.from(x), dequantize4bitRef(ref.codes, ref.absmax, levels), 1, M, N, K);
      expectClose(`${format} x·Wᵀ against float64`, await ctx.readF32(out), want, { atol: 1e-4, rtol: 1e-4 });
    }
  });
});
