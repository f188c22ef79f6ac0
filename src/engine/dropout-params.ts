// The values the dropout kernels take (shaders/dropout_*.wgsl with lib/philox.wgsl), from the probability p,
// the seed and the element offset, checked: the threshold the first Philox word is compared with
// (floor(p·2³²); p = 1 drops everything), the scale of the kept values, and the seed and offset as 32-bit halves.
// Used by the ops (ops/dropout.ts), by the model to check a LoRA dropout's settings early, and by the CPU
// reference (ref/dropout.ts), so all three read p, seed and offset the same way.

/** Checks p, seed and offset and returns the values the kernels take. */
export function dropoutParams(
  op: string,
  p: number,
  seed: number,
  offset: number,
): { threshold: number; keepScale: number; seedLo: number; seedHi: number; offsetLo: number; offsetHi: number } {
  if (!(p >= 0 && p <= 1)) throw new Error(`${op}: the dropout probability p = ${p} must be in [0, 1]`);
  for (const [name, v] of [
    ['seed', seed],
    ['offset', offset],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${op}: ${name} ${v} must be an integer in [0, 2^53)`);
  }
  const split = (v: number): [number, number] => [v % 2 ** 32, Math.floor(v / 2 ** 32)];
  const [seedLo, seedHi] = split(seed);
  const [offsetLo, offsetHi] = split(offset);
  return {
    threshold: p >= 1 ? 0xffffffff : Math.floor(p * 2 ** 32),
    keepScale: p >= 1 ? 0 : 1 / (1 - p),
    seedLo,
    seedHi,
    offsetLo,
    offsetHi,
  };
}
