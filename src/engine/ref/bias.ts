// Float64 reference for the bias of a linear layer, on rows of N values.

/** out[row, c] = x[row, c] + bias[c] */
export function biasAddRef(x: Float64Array, bias: Float64Array, N: number): Float64Array {
  return x.map((v, i) => v + bias[i % N]!);
}

/** dBias[c] = Σ_row dOut[row, c] */
export function biasBackwardRef(dOut: Float64Array, N: number): Float64Array {
  const dBias = new Float64Array(N);
  for (let i = 0; i < dOut.length; i++) dBias[i % N] = dBias[i % N]! + dOut[i]!;
  return dBias;
}
