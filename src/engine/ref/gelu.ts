// Float64 reference for GELU with the tanh approximation, written exactly as PyTorch's formula:
//   gelu(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).

const K = Math.sqrt(2 / Math.PI);
const C = 0.044715;

export function geluForwardRef(x: Float64Array): Float64Array {
  return x.map((v) => 0.5 * v * (1 + Math.tanh(K * (v + C * v * v * v))));
}

/** dx = gelu'(x) · dOut, gelu'(x) = 0.5·(1 + t) + 0.5·x·(1 − t²)·K·(1 + 3C·x²), t = tanh(u). */
export function geluBackwardRef(dOut: Float64Array, x: Float64Array): Float64Array {
  return x.map((v, i) => {
    const t = Math.tanh(K * (v + C * v * v * v));
    const d = 0.5 * (1 + t) + (t === 1 || t === -1 ? 0 : 0.5 * v * (1 - t * t) * K * (1 + 3 * C * v * v));
    return d * dOut[i]!;
  });
}
