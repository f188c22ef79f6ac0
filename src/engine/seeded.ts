// Seeded uniform values in [-1, 1) from a small LCG: inputs for timing runs (the autotuner, the benchmarks), which
// need to be reproducible and finite, not random.

export function seededValues(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}
