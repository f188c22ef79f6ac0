// Float64 reference for SwiGLU.

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export function swigluForwardRef(gate: Float64Array, up: Float64Array): Float64Array {
  return gate.map((g, i) => g * sigmoid(g) * up[i]!);
}

export function swigluBackwardRef(
  dOut: Float64Array,
  gate: Float64Array,
  up: Float64Array,
): { dGate: Float64Array; dUp: Float64Array } {
  const dGate = new Float64Array(gate.length);
  const dUp = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i]!;
    const s = sigmoid(g);
    dGate[i] = dOut[i]! * up[i]! * s * (1 + g * (1 - s));
    dUp[i] = dOut[i]! * g * s;
  }
  return { dGate, dUp };
}
