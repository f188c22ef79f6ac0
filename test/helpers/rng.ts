// Seeded random numbers for tests: reproducible inputs, with outliers on request.

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform in [0, 1). mulberry32. */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hiExclusive: number): number {
    return lo + Math.floor(this.next() * (hiExclusive - lo));
  }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  /**
   * n values ~ N(0, scale²), with a few outliers (×outlierScale) so kernels meet large magnitudes too.
   * Values are rounded to float32 so that the CPU reference sees exactly what the GPU sees.
   */
  tensor(n: number, scale = 1, outlierFraction = 0.02, outlierScale = 8): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = this.normal() * scale;
      out[i] = Math.fround(this.next() < outlierFraction ? v * outlierScale : v);
    }
    return out;
  }
}
