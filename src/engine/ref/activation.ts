// Float64 references for the element-wise activations ReLU and SiLU (what bottleneck adapters apply between
// their down- and up-projection; GELU has its own file, gelu.ts).
//   relu(x) = max(x, 0),          relu'(x) = 1 for x > 0, else 0 (PyTorch's choice at 0)
//   silu(x) = x·σ(x),             silu'(x) = σ(x)·(1 + x·(1 − σ(x))),  σ(x) = 1 / (1 + e^−x)

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export function reluForwardRef(x: Float64Array): Float64Array {
  return x.map((v) => (v > 0 ? v : 0));
}

/** dx = relu'(x) · dOut. */
export function reluBackwardRef(dOut: Float64Array, x: Float64Array): Float64Array {
  return x.map((v, i) => (v > 0 ? dOut[i]! : 0));
}

export function siluForwardRef(x: Float64Array): Float64Array {
  return x.map((v) => v * sigmoid(v));
}

/** dx = silu'(x) · dOut. */
export function siluBackwardRef(dOut: Float64Array, x: Float64Array): Float64Array {
  return x.map((v, i) => {
    const s = sigmoid(v);
    return s * (1 + v * (1 - s)) * dOut[i]!;
  });
}
