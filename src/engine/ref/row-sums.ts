// Float64 references for per-row sums and their backward (ops/row-sums.ts).

/** out[r] = Σ_t x[r·T + t] for x [R, T]. */
export function rowSumsRef(x: Float64Array, T: number): Float64Array {
  const out = new Float64Array(x.length / T);
  x.forEach((v, i) => (out[Math.floor(i / T)]! += v));
  return out;
}

/** The backward of rowSums: dx[r·T + t] = dOut[r]. */
export function expandRowsRef(dOut: Float64Array, T: number): Float64Array {
  return Float64Array.from({ length: dOut.length * T }, (_, i) => dOut[Math.floor(i / T)]!);
}
