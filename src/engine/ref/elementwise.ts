// Float64 references for the element-wise ops.

export function addRef(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v + b[i]!);
}

export function scaleRef(x: Float64Array, alpha: number): Float64Array {
  return x.map((v) => alpha * v);
}
