// The benchmarks' pure figures (bench/figures.ts): MFU, matmul efficiency, the FMA peak's FLOP count, the
// per-step counts and time-weighted totals, the target verdict and kernel families. Numbers only: no timing.
import { describe, expect, it } from 'vitest';
import { familyTimes, fmaGflops, kernelFamily, matmulEfficiency, mfu, speedup, stepCount, stepTotals, targetVerdict } from '../../bench/figures';

describe('bench figures', () => {
  it('MFU and matmul efficiency are ratios to the peak and to the best matmul', () => {
    expect(mfu(25, 100)).toBe(0.25);
    expect(matmulEfficiency(25, 50)).toBe(0.5);
    expect(mfu(1, 0)).toBeNaN();
    expect(matmulEfficiency(1, 0)).toBeNaN();
  });

  it('the FMA kernel counts threads · iters · chains · 4 lanes · 2 flops per run', () => {
    // 65536 threads, 256 iterations, 4 chains: 536870912 flops a run; 10 runs in 0.5 s.
    expect(fmaGflops(65536, 256, 4, 10, 0.5)).toBeCloseTo((65536 * 256 * 4 * 8 * 10) / 0.5 / 1e9, 9);
    expect(fmaGflops(65536, 256, 4, 10, 0.5)).toBeCloseTo(10.73741824, 8);
  });

  it('counts a product per layer and shared projection, and scales the lm head slice to the vocabulary', () => {
    expect(stepCount('q_proj/o_proj', 30)).toBe(60);
    expect(stepCount('gate_proj/up_proj LoRA r16 x·Aᵀ', 30)).toBe(60);
    expect(stepCount('down_proj', 30)).toBe(30);
    expect(stepCount('lm_head[2048 of 49152]', 30, 2048, 49152)).toBe(24);
  });

  it('weights by time, keeps wrong results in the total and says so', () => {
    const products = [
      { count: 60, flops: 1e9, times: { graft: { ms: 1, check: 'ok' }, tfjs: { ms: 3, check: 'ok' } } },
      { count: 1, flops: 1e8, times: { graft: { ms: 10, check: 'ok' }, tfjs: { ms: 5, check: 'WRONG (3.0× tolerance)' } } },
    ];
    const [g, t] = stepTotals(products);
    expect(g).toEqual({ library: 'graft', ms: 70, gflops: (60e9 + 1e8) / 0.07 / 1e9, products: 2, wrong: 0, missing: 0 });
    expect(t!.ms).toBe(185);
    expect(t!.wrong).toBe(1);
    expect(speedup(g!, t!)).toBeCloseTo(185 / 70, 12);
    // An unweighted geometric mean of the two ratios (3 and 0.5) would say 1.22×.
    expect(Math.sqrt(3 * 0.5)).toBeCloseTo(1.2247, 4);
  });

  it('a library that misses a product is not compared', () => {
    const [g, t] = stepTotals([
      { count: 1, flops: 1, times: { graft: { ms: 1, check: 'ok' }, tfjs: { ms: 2, check: 'ok' } } },
      { count: 1, flops: 1, times: { graft: { ms: 1, check: 'ok' } } },
    ]);
    expect(t!.missing).toBe(1);
    expect(speedup(g!, t!)).toBeNull();
  });

  it('states the target as met or missed by how much', () => {
    expect(targetVerdict(2.5, 2)).toBe('met (2.50× ≥ 2×)');
    expect(targetVerdict(1.5, 2)).toBe('missed: 1.50× < 2× (25% short)');
    expect(targetVerdict(0.5, 2)).toBe('missed: Graft is 2.00× SLOWER (0.50× < 2×)');
    expect(targetVerdict(null, 2)).toMatch(/not comparable/);
  });

  it('groups kernels by family and sums their GPU time', () => {
    expect(kernelFamily('matmul_splitk_reduce')).toBe('matmul');
    expect(kernelFamily('flash_attention_register_forward')).toBe('attention');
    expect(kernelFamily('cross_entropy_chunk')).toBe('cross-entropy');
    expect(kernelFamily('adamw_scaled')).toBe('optimizer');
    expect(kernelFamily('rmsnorm_dweight_reduce')).toBe('norm');
    expect(kernelFamily('swiglu_backward')).toBe('activation');
    expect(kernelFamily('copy_block')).toBe('other');
    expect(familyTimes([{ kernel: 'matmul_quad', ns: 2e6 }, { kernel: 'rope_forward', ns: 5e5 }, { kernel: 'matmul_splitk_reduce', ns: 1e6 }])).toEqual([
      { family: 'matmul', ms: 3, dispatches: 2 },
      { family: 'rope', ms: 0.5, dispatches: 1 },
    ]);
  });
});
