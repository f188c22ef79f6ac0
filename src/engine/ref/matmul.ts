// Float64 references for the matmul layouts. Matrices are row-major; `batch` independent products are
// stored one after another. A `b` shared by the whole batch is passed with bBatched = false.

/** out[z, m, n] = Σ_k A(z, m, k) · B(z, k, n), k in order, with the operands read through aAt and bAt. */
function product(
  batch: number,
  M: number,
  N: number,
  K: number,
  aAt: (z: number, m: number, k: number) => number,
  bAt: (z: number, k: number, n: number) => number,
): Float64Array {
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += aAt(z, m, k) * bAt(z, k, n);
        out[z * M * N + m * N + n] = s;
      }
    }
  }
  return out;
}

/** out[z, m, n] = Σ_k a[z, m, k] · b[z, n, k]   (a [M, K], b [N, K]) */
export function matmulNTRef(a: Float64Array, b: Float64Array, batch: number, M: number, N: number, K: number, bBatched = false): Float64Array {
  const bo = (z: number) => (bBatched ? z * N * K : 0);
  return product(batch, M, N, K, (z, m, k) => a[z * M * K + m * K + k]!, (z, k, n) => b[bo(z) + n * K + k]!);
}

/** out[z, m, n] = Σ_k a[z, m, k] · b[z, k, n]   (a [M, K], b [K, N]) */
export function matmulNNRef(a: Float64Array, b: Float64Array, batch: number, M: number, N: number, K: number, bBatched = false): Float64Array {
  const bo = (z: number) => (bBatched ? z * K * N : 0);
  return product(batch, M, N, K, (z, m, k) => a[z * M * K + m * K + k]!, (z, k, n) => b[bo(z) + k * N + n]!);
}

/** out[m, n] = Σ_k a[k, m] · b[k, n]   (a [K, M], b [K, N]) */
export function matmulTNRef(a: Float64Array, b: Float64Array, M: number, N: number, K: number): Float64Array {
  return product(1, M, N, K, (_z, m, k) => a[k * M + m]!, (_z, k, n) => b[k * N + n]!);
}
