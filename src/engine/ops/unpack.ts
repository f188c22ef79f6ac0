// Widening of 16-bit weights read from safetensors (F16, BF16) to f32 on the GPU, bit-exact.
import type { GpuContext } from '../context';
import { grid1d } from '../grid';
import { ro, rw, type KernelSpec } from '../kernel';
import { shapeText, type Tensor } from '../tensor';
import f16Src from '../../../shaders/unpack_f16.wgsl?raw';
import bf16Src from '../../../shaders/unpack_bf16.wgsl?raw';

const WG = 256;

function spec(name: string, source: string): KernelSpec {
  return {
    name,
    source,
    bindings: [
      // The f32 output is written as its bits (u32), so NaN payloads and subnormals arrive unchanged.
      rw('out', 'u32'),
      ro('packed', 'u32'),
    ],
    params: [['n', 'u32']],
    defines: { WG },
  };
}

const f16Spec = spec('unpack_f16', f16Src);
const bf16Spec = spec('unpack_bf16', bf16Src);

function unpack(op: string, s: KernelSpec, ctx: GpuContext, out: Tensor, packed: Tensor, half: 'f16' | 'bf16'): void {
  if (out.dtype !== 'f32') throw new Error(`${op}: out must be f32, got ${out.dtype}`);
  const n = out.size;
  if (packed.dtype === half) {
    // A 16-bit tensor is the same bytes, two values a word.
    if (packed.size !== n) throw new Error(`${op}: packed ${shapeText(packed)} ${half} and out ${shapeText(out)} hold different numbers of values`);
    ctx.dispatch(ctx.kernel(s), { out, packed }, { n }, grid1d(n, WG));
    return;
  }
  if (packed.dtype !== 'u32') throw new Error(`${op}: packed must be a u32 tensor of the raw bytes or a ${half} tensor, got ${packed.dtype}`);
  if (packed.size !== Math.ceil(n / 2)) {
    throw new Error(
      `${op}: ${n} values need ${Math.ceil(n / 2)} u32 words (2 per word), packed is ${shapeText(packed)}; out ${shapeText(out)}`,
    );
  }
  ctx.dispatch(ctx.kernel(s), { out, packed }, { n }, grid1d(n, WG));
}

/** out[n] (f32) = the IEEE halves in packed[ceil(n/2)] (u32 words of raw little-endian bytes, or an f16 tensor [n]), exactly. */
export function unpackF16(ctx: GpuContext, out: Tensor, packed: Tensor): void {
  unpack('unpackF16', f16Spec, ctx, out, packed, 'f16');
}

/** out[n] (f32) = the bfloat16 values in packed[ceil(n/2)] (u32 words of raw little-endian bytes, or a bf16 tensor [n]), exactly. */
export function unpackBf16(ctx: GpuContext, out: Tensor, packed: Tensor): void {
  unpack('unpackBf16', bf16Spec, ctx, out, packed, 'bf16');
}
