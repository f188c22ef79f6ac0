// Float64 references for RMSNorm and LayerNorm over the last dim of a [rows, C] array.

export function rmsnormForwardRef(
  x: Float64Array,
  weight: Float64Array,
  rows: number,
  C: number,
  eps: number,
): { out: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(rows * C);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sumSq = 0;
    for (let c = 0; c < C; c++) sumSq += x[r * C + c]! ** 2;
    rstd[r] = 1 / Math.sqrt(sumSq / C + eps);
    for (let c = 0; c < C; c++) out[r * C + c] = x[r * C + c]! * rstd[r]! * weight[c]!;
  }
  return { out, rstd };
}

/**
 * With g = dOut · weight: dx = rstd · (g − x · rstd² · mean(g · x)), dWeight = Σ_rows dOut · x · rstd.
 */
export function rmsnormBackwardRef(
  dOut: Float64Array,
  x: Float64Array,
  weight: Float64Array,
  rows: number,
  C: number,
  eps: number,
): { dx: Float64Array; dWeight: Float64Array } {
  const { rstd } = rmsnormForwardRef(x, weight, rows, C, eps);
  const dx = new Float64Array(rows * C);
  const dWeight = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const s = rstd[r]!;
    let meanGx = 0;
    for (let c = 0; c < C; c++) meanGx += (dOut[r * C + c]! * weight[c]! * x[r * C + c]!) / C;
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      dx[i] = s * (dOut[i]! * weight[c]! - x[i]! * s * s * meanGx);
      dWeight[c] = dWeight[c]! + dOut[i]! * x[i]! * s;
    }
  }
  return { dx, dWeight };
}

export function layernormForwardRef(
  x: Float64Array,
  weight: Float64Array,
  bias: Float64Array,
  rows: number,
  C: number,
  eps: number,
): { out: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(rows * C);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < C; c++) sum += x[r * C + c]!;
    const m = sum / C;
    let sumSq = 0;
    for (let c = 0; c < C; c++) sumSq += (x[r * C + c]! - m) ** 2;
    const s = 1 / Math.sqrt(sumSq / C + eps);
    mean[r] = m;
    rstd[r] = s;
    for (let c = 0; c < C; c++) out[r * C + c] = (x[r * C + c]! - m) * s * weight[c]! + bias[c]!;
  }
  return { out, mean, rstd };
}

/**
 * With g = dOut · weight and x̂ = (x − mean) · rstd: dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)),
 * dWeight = Σ_rows dOut · x̂, dBias = Σ_rows dOut.
 */
export function layernormBackwardRef(
  dOut: Float64Array,
  x: Float64Array,
  weight: Float64Array,
  rows: number,
  C: number,
  eps: number,
): { dx: Float64Array; dWeight: Float64Array; dBias: Float64Array } {
  const { mean, rstd } = layernormForwardRef(x, weight, new Float64Array(C), rows, C, eps);
  const dx = new Float64Array(rows * C);
  const dWeight = new Float64Array(C);
  const dBias = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const m = mean[r]!;
    const s = rstd[r]!;
    const xhat = (i: number): number => (x[i]! - m) * s;
    let meanG = 0;
    let meanGx = 0;
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      meanG += (dOut[i]! * weight[c]!) / C;
      meanGx += (dOut[i]! * weight[c]! * xhat(i)) / C;
    }
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      dx[i] = s * (dOut[i]! * weight[c]! - meanG - xhat(i) * meanGx);
      dWeight[c] = dWeight[c]! + dOut[i]! * xhat(i);
      dBias[c] = dBias[c]! + dOut[i]!;
    }
  }
  return { dx, dWeight, dBias };
}
