// Float64 references for the matmul layouts. Matrices are row-major; `batch` independent products are
// stored one after another. A `b` shared by the whole batch is passed with bBatched = false.

/** out[z, m, n] = Σ_k a[z, m, k] · b[z, n, k]   (a [M, K], b [N, K]) */
export function matmulNTRef(
  a: Float64Array,
  b: Float64Array,
  batch: number,
  M: number,
  N: number,
  K: number,
  bBatched = false,
): Float64Array {
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ao = z * M * K;
    const bo = bBatched ? z * N * K : 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ao + m * K + k]! * b[bo + n * K + k]!;
        out[z * M * N + m * N + n] = s;
      }
    }
  }
  return out;
}

/** out[z, m, n] = Σ_k a[z, m, k] · b[z, k, n]   (a [M, K], b [K, N]) */
export function matmulNNRef(
  a: Float64Array,
  b: Float64Array,
  batch: number,
  M: number,
  N: number,
  K: number,
  bBatched = false,
): Float64Array {
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ao = z * M * K;
    const bo = bBatched ? z * K * N : 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ao + m * K + k]! * b[bo + k * N + n]!;
        out[z * M * N + m * N + n] = s;
      }
    }
  }
  return out;
}

/** out[m, n] = Σ_k a[k, m] · b[k, n]   (a [K, M], b [K, N]) */
export function matmulTNRef(a: Float64Array, b: Float64Array, M: number, N: number, K: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[k * M + m]! * b[k * N + n]!;
      out[m * N + n] = s;
    }
  }
  return out;
}
