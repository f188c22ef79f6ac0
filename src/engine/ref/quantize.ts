// Float64 references for the weight formats the kernels unpack (shaders/lib/weight_*.wgsl, src/engine/quantize.ts):
// quantize-dequantize by the definitions, written to be read. 4-bit: blocks of 64 values, absmax = max |x|, the
// code is the level nearest to x / absmax (bitsandbytes' NF4 and FP4 levels, which these tables repeat from
// its get_4bit_type), dequantized = level · absmax. The engine's quantizer is bitsandbytes' f32 decision tree;
// the two agree except where x / absmax sits within rounding of a midpoint between two levels.

export const NF4_LEVELS_REF = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

/** FP4 (E2M1 with bitsandbytes' bias): sign bit, then magnitudes 0, 0.0625, 8, 12, 4, 6, 2, 3, divided by 12. */
export const FP4_LEVELS_REF = [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) => v / 12);

const BLOCK = 64;

/** The nearest level's code for each value (ties: the lower level, as bitsandbytes' strict `>` does). */
export function quantize4bitRef(x: Float64Array, levels: readonly number[]): { codes: Uint8Array; absmax: Float64Array } {
  const absmax = new Float64Array(Math.ceil(x.length / BLOCK));
  for (let i = 0; i < x.length; i++) absmax[Math.floor(i / BLOCK)] = Math.max(absmax[Math.floor(i / BLOCK)]!, Math.abs(x[i]!));
  const order = levels.map((v, c) => ({ v, c })).sort((p, q) => p.v - q.v || q.c - p.c);
  const codes = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const am = absmax[Math.floor(i / BLOCK)]!;
    const s = am > 0 ? x[i]! / am : 0;
    let best = order[0]!;
    for (const l of order) if (Math.abs(s - l.v) < Math.abs(s - best.v)) best = l;
    codes[i] = best.c;
  }
  return { codes, absmax };
}

/** level · absmax per value. */
export function dequantize4bitRef(codes: Uint8Array, absmax: ArrayLike<number>, levels: readonly number[]): Float64Array {
  return Float64Array.from(codes, (c, i) => levels[c]! * absmax[Math.floor(i / BLOCK)]!);
}

/** Graft's 8-bit: q = round(x / (absmax / 127)), dequantized = q · absmax / 127. */
export function int8Ref(x: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += BLOCK) {
    let am = 0;
    for (let i = b; i < Math.min(x.length, b + BLOCK); i++) am = Math.max(am, Math.abs(x[i]!));
    const s = am / 127;
    for (let i = b; i < Math.min(x.length, b + BLOCK); i++) out[i] = s > 0 ? Math.round(x[i]! / s) * s : 0;
  }
  return out;
}
