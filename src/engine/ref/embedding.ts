// Float64 reference for the token embedding.

/**
 * out[t, c] = table[ids[t], c] · scale (scale 1 by default); an id outside [0, V) gives a row of zeros (as the
 * kernel does). `round` applies the rounding of a 16-bit model's product (Gemma's scaled embedding).
 */
export function embeddingForwardRef(
  ids: ArrayLike<number>,
  table: Float64Array,
  vocabSize: number,
  C: number,
  scale = 1,
  round: (x: number) => number = (x) => x,
): Float64Array {
  const out = new Float64Array(ids.length * C);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (id < 0 || id >= vocabSize) continue;
    for (let c = 0; c < C; c++) out[t * C + c] = round(table[id * C + c]! * scale);
  }
  return out;
}

/** dTable[v, c] = Σ_{t : ids[t] = v} dOut[t, c]. */
export function embeddingBackwardRef(dOut: Float64Array, ids: ArrayLike<number>, vocabSize: number, C: number): Float64Array {
  const dTable = new Float64Array(vocabSize * C);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (id < 0 || id >= vocabSize) throw new Error(`embeddingBackwardRef: id ${id} outside [0, ${vocabSize})`);
    for (let c = 0; c < C; c++) dTable[id * C + c]! += dOut[t * C + c]!;
  }
  return dTable;
}
