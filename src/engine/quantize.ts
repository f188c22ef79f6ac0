// Quantization of frozen weights, on the CPU, as the model loader applies it (QLoRA: quantization_bit 4 or 8): NF4
// and FP4 exactly as bitsandbytes computes them, double quantization, Graft's 8-bit scheme, and the packed layouts
// the kernels read; docs/kernels.md ("Quantized weights").

export type QuantFormat = 'nf4' | 'fp4' | 'int8';

/** Values per block of absmax (bitsandbytes' blocksize for 4-bit; Graft's for 8-bit). */
export const QUANT_BLOCK = 64;
/** Blocks of absmax per double-quantization block (bitsandbytes' blocksize for the statistics). */
export const DOUBLE_QUANT_BLOCK = 256;

/** bitsandbytes' NF4 levels (get_4bit_type('nf4')), code 0 .. 15, as f32. */
export const NF4_LEVELS = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** bitsandbytes' FP4 levels (get_4bit_type('fp4'): the E2M1 bit patterns divided by 12), code 0 .. 15, as f32. */
export const FP4_LEVELS = Float32Array.from([0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) => v / 12));

/** bitsandbytes' create_dynamic_map(signed=True), the 8-bit code of double quantization: f32 bits, ascending. */
const DYNAMIC_MAP_BITS = Uint32Array.from([
  0xbf7e3333, 0xbf7a999a, 0xbf770000, 0xbf736666, 0xbf6fcccd, 0xbf6c3333, 0xbf68999a, 0xbf650000,
  0xbf616666, 0xbf5dcccd, 0xbf5a3333, 0xbf56999a, 0xbf530000, 0xbf4f6666, 0xbf4bcccd, 0xbf483333,
  0xbf44999a, 0xbf410000, 0xbf3d6666, 0xbf39cccd, 0xbf363334, 0xbf32999a, 0xbf2f0000, 0xbf2b6666,
  0xbf27cccd, 0xbf243334, 0xbf20999a, 0xbf1d0000, 0xbf196666, 0xbf15cccd, 0xbf123334, 0xbf0e999a,
  0xbf0b0000, 0xbf076666, 0xbf03cccc, 0xbf003333, 0xbef93332, 0xbef20000, 0xbeeacccc, 0xbee3999a,
  0xbedc6666, 0xbed53333, 0xbece0000, 0xbec6cccc, 0xbebf999a, 0xbeb86666, 0xbeb13333, 0xbeaa0000,
  0xbea2cccc, 0xbe9b999a, 0xbe946666, 0xbe8d3334, 0xbe860000, 0xbe7d9999, 0xbe6f3333, 0xbe60cccd,
  0xbe526666, 0xbe440000, 0xbe35999a, 0xbe273333, 0xbe18cccd, 0xbe0a6666, 0xbdf80000, 0xbddb3334,
  0xbdc9eb85, 0xbdc428f7, 0xbdbe6667, 0xbdb8a3d7, 0xbdb2e148, 0xbdad1eb8, 0xbda75c2a, 0xbda1999a,
  0xbd9bd70a, 0xbd96147b, 0xbd9051eb, 0xbd8a8f5d, 0xbd84cccd, 0xbd7e147b, 0xbd728f5d, 0xbd670a3d,
  0xbd5b851f, 0xbd500000, 0xbd447ae1, 0xbd38f5c3, 0xbd2d70a3, 0xbd21eb85, 0xbd166667, 0xbd0ae148,
  0xbcfeb852, 0xbce7ae15, 0xbcd0a3d7, 0xbcb9999a, 0xbca28f5d, 0xbc8b851f, 0xbc68f5c3, 0xbc3ae148,
  0xbc1f3b64, 0xbc160418, 0xbc0ccccd, 0xbc039581, 0xbbf4bc6a, 0xbbe24dd3, 0xbbcfdf3b, 0xbbbd70a4,
  0xbbab020d, 0xbb989374, 0xbb8624dd, 0xbb676c8a, 0xbb428f5c, 0xbb1db22d, 0xbaf1a9fc, 0xbaa7ef9d,
  0xba7765ff, 0xba59e83e, 0xba3c6a80, 0xba1eecc1, 0xba016f01, 0xb9c7e283, 0xb98ce705, 0xb923d70b,
  0xb8ba1f4b, 0xb88aefb3, 0xb8378034, 0xb7b24206, 0xb70205ff, 0xb65a1a94, 0xb513a3b7, 0x00000000,
  0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b, 0x3923d70b,
  0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
  0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4,
  0x3bcfdf3b, 0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148,
  0x3c68f5c3, 0x3c8b851f, 0x3ca28f5d, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae15, 0x3cfeb852, 0x3d0ae148,
  0x3d166667, 0x3d21eb85, 0x3d2d70a3, 0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d,
  0x3d728f5d, 0x3d7e147b, 0x3d84cccd, 0x3d8a8f5d, 0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a,
  0x3da75c2a, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667, 0x3dc428f7, 0x3dc9eb85, 0x3ddb3334,
  0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e35999a, 0x3e440000, 0x3e526666, 0x3e60cccd,
  0x3e6f3333, 0x3e7d9999, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc, 0x3eaa0000,
  0x3eb13333, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53333, 0x3edc6666, 0x3ee3999a,
  0x3eeacccc, 0x3ef20000, 0x3ef93332, 0x3f003333, 0x3f03cccc, 0x3f076666, 0x3f0b0000, 0x3f0e999a,
  0x3f123334, 0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243334, 0x3f27cccd, 0x3f2b6666,
  0x3f2f0000, 0x3f32999a, 0x3f363334, 0x3f39cccd, 0x3f3d6666, 0x3f410000, 0x3f44999a, 0x3f483333,
  0x3f4bcccd, 0x3f4f6666, 0x3f530000, 0x3f56999a, 0x3f5a3333, 0x3f5dcccd, 0x3f616666, 0x3f650000,
  0x3f68999a, 0x3f6c3333, 0x3f6fcccd, 0x3f736666, 0x3f770000, 0x3f7a999a, 0x3f7e3333, 0x3f800000,
]);
export const DYNAMIC_MAP = new Float32Array(DYNAMIC_MAP_BITS.buffer);

const f = Math.fround;

// dQuantizeNF4's thresholds (f32 literals in the kernel), ascending: the tree is monotone, so the code is the
// number of thresholds the value is strictly above.
const NF4_THRESHOLDS = Float32Array.from([
  -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544, -0.23460740596055984,
  -0.13791173323988914, -0.045525018125772476, 0.03979014977812767, 0.1202552504837513, 0.2035212516784668,
  0.2920137718319893, 0.3893125355243683, 0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
]);
// dQuantizeFP4's thresholds on |x|, ascending, and the 3-bit magnitude code of each interval.
const FP4_THRESHOLDS = Float32Array.from([0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333]);
const FP4_MAGNITUDE = [0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011];

/** dQuantizeNF4(x) (NaN → 0, as the tree's comparisons all fail). */
export function nf4Code(x: number): number {
  // The kernel's tree, written out: 4 comparisons.
  const t = NF4_THRESHOLDS;
  if (x > t[7]!) {
    if (x > t[11]!) return x > t[13]! ? (x > t[14]! ? 15 : 14) : x > t[12]! ? 13 : 12;
    return x > t[9]! ? (x > t[10]! ? 11 : 10) : x > t[8]! ? 9 : 8;
  }
  if (x > t[3]!) return x > t[5]! ? (x > t[6]! ? 7 : 6) : x > t[4]! ? 5 : 4;
  return x > t[1]! ? (x > t[2]! ? 3 : 2) : x > t[0]! ? 1 : 0;
}

/** dQuantizeFP4(x). */
export function fp4Code(x: number): number {
  const sign = x < 0 ? 8 : 0;
  const a = Math.abs(x);
  let rank = 0;
  while (rank < FP4_THRESHOLDS.length && a > FP4_THRESHOLDS[rank]!) rank++;
  return FP4_MAGNITUDE[rank]! + sign;
}

/** dQuantize<0>: the binary search over the 256 ascending code values, then the midpoint test. */
export function dynamicCode(x: number, code: Float32Array = DYNAMIC_MAP): number {
  let pivot = 127;
  let upperPivot = 255;
  let lowerPivot = 0;
  let lower = -1;
  let upper = 1;
  let val = code[pivot]!;
  for (let i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lowerPivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upperPivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = code[pivot]!;
  }
  if (upperPivot === 255) upper = code[upperPivot]!;
  if (lowerPivot === 0) lower = code[lowerPivot]!;
  if (x > val) return x > f(f(upper + val) * 0.5) ? upperPivot : pivot;
  return x < f(f(lower + val) * 0.5) ? lowerPivot : pivot;
}

/** Blocks of `block` values of n. */
const blocksOf = (n: number, block: number) => Math.ceil(n / block);

/** Per block of QUANT_BLOCK values: max |x| (f32). */
export function blockAbsmax(values: Float32Array, block = QUANT_BLOCK): Float32Array {
  const out = new Float32Array(blocksOf(values.length, block));
  for (let b = 0; b < out.length; b++) {
    let m = 0;
    const end = Math.min(values.length, (b + 1) * block);
    for (let i = b * block; i < end; i++) {
      const a = Math.abs(values[i]!);
      if (a > m) m = a;
    }
    out[b] = m;
  }
  return out;
}

/** bitsandbytes' 4-bit codes (one per value, 0..15) and the f32 absmax of each block of 64. */
export function quantize4bit(values: Float32Array, type: 'nf4' | 'fp4'): { codes: Uint8Array; absmax: Float32Array } {
  const absmax = blockAbsmax(values);
  const codes = new Uint8Array(values.length);
  const code = type === 'nf4' ? nf4Code : fp4Code;
  for (let b = 0; b < absmax.length; b++) {
    const inv = f(1 / Math.max(absmax[b]!, 1e-38));
    const end = Math.min(values.length, (b + 1) * QUANT_BLOCK);
    for (let i = b * QUANT_BLOCK; i < end; i++) codes[i] = code(f(values[i]! * inv));
  }
  return { codes, absmax };
}

export interface DoubleQuantized {
  /** 8-bit codes of absmax − offset (one per block of 64). */
  q8: Uint8Array;
  /** max |absmax − offset| per block of 256 absmax values. */
  absmax2: Float32Array;
  offset: number;
  /** The absmax each block is dequantized with: fround(fround(MAP[q8] · absmax2) + offset). */
  dequantized: Float32Array;
}

/** bitsandbytes' compress_statistics of a 4-bit weight's absmax (docs/kernels.md, "Quantized weights"). */
export function doubleQuantize(absmax: Float32Array): DoubleQuantized {
  let sum = 0;
  for (const a of absmax) sum += a;
  const offset = f(sum / absmax.length);
  const centred = absmax.map((a) => f(a - offset));
  const absmax2 = blockAbsmax(centred, DOUBLE_QUANT_BLOCK);
  const q8 = new Uint8Array(absmax.length);
  const dequantized = new Float32Array(absmax.length);
  for (let b = 0; b < absmax2.length; b++) {
    const inv = f(1 / Math.max(absmax2[b]!, 1e-38));
    const end = Math.min(absmax.length, (b + 1) * DOUBLE_QUANT_BLOCK);
    for (let i = b * DOUBLE_QUANT_BLOCK; i < end; i++) {
      q8[i] = dynamicCode(f(centred[i]! * inv));
      dequantized[i] = f(f(DYNAMIC_MAP[q8[i]!]! * absmax2[b]!) + offset);
    }
  }
  return { q8, absmax2, offset, dequantized };
}

/** Graft's 8-bit codes (int8, one per value) and per block of 64 the scale absmax / 127 (f32). */
export function quantizeInt8(values: Float32Array): { q: Int8Array; scales: Float32Array } {
  const absmax = blockAbsmax(values);
  const scales = absmax.map((a) => f(a / 127));
  const q = new Int8Array(values.length);
  for (let b = 0; b < scales.length; b++) {
    const s = scales[b]!;
    const end = Math.min(values.length, (b + 1) * QUANT_BLOCK);
    for (let i = b * QUANT_BLOCK; i < end; i++) {
      if (s === 0) continue;
      const x = values[i]! / s; // the f64 quotient rounds like the f32 one for |x / s| ≤ 127 (exact halves aside)
      q[i] = Math.max(-127, Math.min(127, roundHalfEven(f(x))));
    }
  }
  return { q, scales };
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** 4-bit codes packed two a byte (the first value in the high nibble), bytes little-endian in u32 words. */
export function packNibbles(codes: Uint8Array): Uint32Array {
  const bytes = new Uint8Array(Math.ceil(codes.length / 8) * 4);
  for (let i = 0; i < codes.length; i += 2) bytes[i >> 1] = (codes[i]! << 4) | (i + 1 < codes.length ? codes[i + 1]! : 0);
  return new Uint32Array(bytes.buffer);
}

/** int8 codes, bytes little-endian in u32 words. */
export function packBytes(q: Int8Array): Uint32Array {
  const bytes = new Uint8Array(Math.ceil(q.length / 4) * 4);
  bytes.set(new Uint8Array(q.buffer, q.byteOffset, q.length));
  return new Uint32Array(bytes.buffer);
}

/** What the GPU holds for a quantized weight: the packed codes and one f32 scale per block of 64. */
export interface QuantizedWeight {
  format: QuantFormat;
  words: Uint32Array;
  /** nf4/fp4: the (double-quantized, then dequantized) absmax; int8: absmax / 127. */
  scales: Float32Array;
}

/** Quantizes a weight (row-major values) for the GPU; `doubleQuant` applies to 4-bit only. */
export function quantizeWeight(values: Float32Array, format: QuantFormat, doubleQuant: boolean): QuantizedWeight {
  if (format === 'int8') {
    const { q, scales } = quantizeInt8(values);
    return { format, words: packBytes(q), scales };
  }
  const { codes, absmax } = quantize4bit(values, format);
  return { format, words: packNibbles(codes), scales: doubleQuant ? doubleQuantize(absmax).dequantized : absmax };
}

/** The f32 values the kernels compute with (level × scale), for the CPU: checks, merged exports. */
export function dequantizeWeight(w: QuantizedWeight, n: number): Float32Array {
  const out = new Float32Array(n);
  const bytes = new Uint8Array(w.words.buffer, w.words.byteOffset, w.words.byteLength);
  const levels = w.format === 'nf4' ? NF4_LEVELS : FP4_LEVELS;
  for (let i = 0; i < n; i++) {
    const s = w.scales[Math.floor(i / QUANT_BLOCK)]!;
    if (w.format === 'int8') out[i] = f(((bytes[i]! << 24) >> 24) * s);
    else out[i] = f(levels[i & 1 ? bytes[i >> 1]! & 15 : bytes[i >> 1]! >> 4]! * s);
  }
  return out;
}
