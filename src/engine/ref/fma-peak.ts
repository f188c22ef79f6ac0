// Float64 reference for the benchmark's FMA-throughput kernel (ops/fma-peak.ts).

/** out[i] = Σ of the lanes of 4 chains a ← a·mul + add after `iters` steps, from the kernel's starting values. */
export function fmaPeakRef(threads: number, iters: number, mul: number, add: number): Float64Array {
  return Float64Array.from({ length: threads }, (_, i) => {
    const x = Math.fround(Math.fround(i & 255) * Math.fround(1e-3));
    let sum = 0;
    for (const chain of [0, 0.125, 0.375, 0.625]) {
      for (const lane of [x, 0.25, 0.5, 0.75]) {
        let a = lane + chain;
        for (let k = 0; k < iters; k++) a = a * mul + add;
        sum += a;
      }
    }
    return sum;
  });
}
