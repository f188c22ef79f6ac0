// Float64 reference for softmax over the last dim of a [rows, C] array.

export function softmaxForwardRef(x: Float64Array, rows: number, C: number): Float64Array {
  const out = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, x[r * C + c]!);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(x[r * C + c]! - max);
    for (let c = 0; c < C; c++) out[r * C + c] = Math.exp(x[r * C + c]! - max) / sum;
  }
  return out;
}

/** dx = out ⊙ (dOut − Σ_c dOut ⊙ out), row by row. */
export function softmaxBackwardRef(dOut: Float64Array, out: Float64Array, rows: number, C: number): Float64Array {
  const dx = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dOut[r * C + c]! * out[r * C + c]!;
    for (let c = 0; c < C; c++) dx[r * C + c] = out[r * C + c]! * (dOut[r * C + c]! - dot);
  }
  return dx;
}
