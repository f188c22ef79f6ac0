// Float64 reference for GeGLU with GELU's tanh approximation (Gemma): out = gelu_tanh(gate) · up.
import { geluBackwardRef, geluForwardRef } from './gelu';

export function gegluForwardRef(gate: Float64Array, up: Float64Array): Float64Array {
  const g = geluForwardRef(gate);
  return g.map((v, i) => v * up[i]!);
}

export function gegluBackwardRef(dOut: Float64Array, gate: Float64Array, up: Float64Array): { dGate: Float64Array; dUp: Float64Array } {
  const dGate = geluBackwardRef(dOut.map((d, i) => d * up[i]!), gate);
  const g = geluForwardRef(gate);
  return { dGate, dUp: dOut.map((d, i) => d * g[i]!) };
}
