// The Bench screen in headless Chromium with WebGPU (SwiftShader without a GPU), on the built-in demo model: one
// click measures a peak, the matmuls of a training step on the model's linear layers and training tokens/s.
// The test checks the numbers against their own definitions, computed here from the reported fields and from the
// model's config.json: the peak's operations are threads × iterations × chains × 8; each product's M, N, K are the
// demo model's layer shapes at the chosen row count, its operations 2·M·N·K, and every GFLOP/s shown is
// operations × runs / seconds; four outputs of each product matched float64 dot products; training tokens are
// batch × length × timed steps, and tokens/s is tokens / seconds. Cancel stops a second measurement part-way.
// "Tune matmuls for this model" lists the autotuner's plan for each of the demo model's products, kept in
// IndexedDB: after a reload the same list is there without tuning again.
// Screenshots go to test-results/bench-*.png. Never skips.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { useApp } from '../helpers/app-page';
import { expectWebGpuAdapter, REPO_ROOT, type LaunchedBrowser, type StaticServer } from '../helpers/browser';

const CONFIG = JSON.parse(readFileSync(join(REPO_ROOT, 'public/demo/model/config.json'), 'utf8')) as Record<string, number>;

let server: StaticServer;
let browser: LaunchedBrowser;
let page: Page;
const { failWith, waitForAttr, shoot } = useApp('bench', (s) => ({ page, browser, server } = s));
const waitForStatus = (values: string[], timeout: number) => waitForAttr('[data-testid="bench"]', 'data-status', values, timeout);

const num = async (loc: ReturnType<Page['locator']>, attr: string) => Number(await loc.getAttribute(attr));
/** The screen's GFLOP/s format (BenchScreen's gf). */
const gf = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

describe('the Bench screen', () => {
  it('measures the peak, the matmuls on the demo model’s shapes and training tokens/s, with consistent numbers', async () => {
    await page.goto(server.url);
    await expectWebGpuAdapter(page, browser, failWith);
    await page.getByTestId('bench-link').click();
    await page.getByRole('heading', { level: 2, name: 'Benchmark' }).waitFor({ timeout: 10_000 });
    // A fresh profile: the demo model is the one to measure.
    expect(await page.getByTestId('bench-model').inputValue()).toBe('graft/demo-tiny-llama@main');
    const M = 64;
    const [batch, seqLen, steps] = [2, 32, 3];
    await page.getByLabel('Matmul rows (tokens)').fill(String(M));
    await page.getByLabel('Training batch').fill(String(batch));
    await page.getByLabel('Sequence length').fill(String(seqLen));
    await page.getByLabel('Training steps').fill(String(steps));
    await page.getByTestId('bench-run').click();
    // Progress while it runs.
    await expect.poll(() => page.getByTestId('bench-progress').innerText().catch(() => ''), { timeout: 30_000 }).toMatch(/\(\d+ of \d+\)/);
    if ((await waitForStatus(['done', 'error'], 180_000)) === 'error') failWith(`the benchmark failed: ${await page.getByTestId('bench-error').innerText()}`);

    // The measured peak: threads × iterations × 4 fma chains × 4 lanes × 2.
    const peak = page.getByTestId('bench-peak');
    const p = { flops: await num(peak, 'data-flops'), runs: await num(peak, 'data-runs'), seconds: await num(peak, 'data-seconds'), gflops: await num(peak, 'data-gflops') };
    expect(p.flops).toBe((await num(peak, 'data-threads')) * (await num(peak, 'data-iters')) * (await num(peak, 'data-chains')) * 8);
    expect(p.runs).toBeGreaterThanOrEqual(1);
    expect(p.gflops).toBeCloseTo((p.flops * p.runs) / p.seconds / 1e9, 9);
    expect(await peak.locator('.big').innerText()).toBe(gf(p.gflops));

    // The products: three per distinct layer shape of the demo model, at M rows.
    const H = CONFIG.hidden_size!;
    const q = CONFIG.num_attention_heads! * CONFIG.head_dim!;
    const kv = CONFIG.num_key_value_heads! * CONFIG.head_dim!;
    const I = CONFIG.intermediate_size!;
    const layers: [number, number][] = [[H, q], [H, kv], [q, H], [H, I], [I, H]];
    const distinct = [...new Map(layers.map(([i, o]) => [`${i}x${o}`, [i, o] as [number, number]])).values()];
    const expected = distinct.flatMap(([inF, outF]) => [
      { pass: 'forward', m: M, n: outF, k: inF },
      { pass: 'dX', m: M, n: inF, k: outF },
      { pass: 'dW', m: outF, n: inF, k: M },
    ]);
    const rows = page.getByTestId('bench-matmul');
    expect(await rows.count()).toBe(expected.length);
    let flopsRuns = 0;
    let seconds = 0;
    for (let i = 0; i < expected.length; i++) {
      const r = rows.nth(i);
      const got = { pass: await r.getAttribute('data-pass'), m: await num(r, 'data-m'), n: await num(r, 'data-n'), k: await num(r, 'data-k') };
      expect(got).toEqual(expected[i]);
      const flops = await num(r, 'data-flops');
      const runs = await num(r, 'data-runs');
      const s = await num(r, 'data-seconds');
      const g = await num(r, 'data-gflops');
      expect(flops).toBe(2 * got.m * got.n * got.k);
      expect(g).toBeCloseTo((flops * runs) / s / 1e9, 9);
      expect(await r.locator('.gflops').innerText()).toBe(gf(g));
      expect(await num(r, 'data-error')).toBeLessThanOrEqual(1e-4);
      flopsRuns += flops * runs;
      seconds += s;
    }
    const total = await num(page.getByTestId('bench-matmul-total'), 'data-gflops');
    expect(total).toBeCloseTo(flopsRuns / seconds / 1e9, 6);

    // Training: the first step is a warm-up; every token of the synthetic sequences is an input token.
    const train = page.getByTestId('bench-train');
    const t = { tokens: await num(train, 'data-tokens'), seconds: await num(train, 'data-seconds'), tps: await num(train, 'data-tokens-per-second'), steps: await num(train, 'data-steps') };
    expect(t.steps).toBe(steps - 1);
    expect(t.tokens).toBe(batch * seqLen * (steps - 1));
    expect(t.tps).toBeCloseTo(t.tokens / t.seconds, 6);
    expect(t.tps).toBeGreaterThan(0);
    console.log(`bench on SwiftShader: peak ${gf(p.gflops)} GFLOP/s, matmuls ${gf(total)} GFLOP/s, training ${t.tps.toFixed(1)} tokens/s (demo model)`);
    await shoot('done');
    await shoot('done', { dark: true });
  });

  it('cancels a measurement part-way and keeps what finished', async () => {
    await page.getByLabel('Matmul rows (tokens)').fill('256');
    await page.getByTestId('bench-run').click();
    // Cancel once the first product is measured (the peak and at least one matmul are in).
    await expect.poll(() => page.getByTestId('bench-matmul').count(), { timeout: 60_000 }).toBeGreaterThanOrEqual(1);
    await page.getByTestId('bench-cancel').click();
    expect(await waitForStatus(['cancelled', 'done', 'error'], 60_000)).toBe('cancelled');
    expect(await page.getByTestId('bench-matmul').count()).toBeLessThan(12);
    expect(await page.getByTestId('bench-train').count()).toBe(0);
    expect(await page.getByTestId('bench').innerText()).toMatch(/Cancelled/);
    await shoot('cancelled');
  });

  it('tunes the matmuls of the demo model, lists the plan chosen for each product, and the list survives a reload', async () => {
    const M = 32;
    const H = CONFIG.hidden_size!;
    const q = CONFIG.num_attention_heads! * CONFIG.head_dim!;
    const kv = CONFIG.num_key_value_heads! * CONFIG.head_dim!;
    const I = CONFIG.intermediate_size!;
    const distinct = [...new Map(([[H, q], [H, kv], [q, H], [H, I], [I, H]] as const).map(([i, o]) => [`${i}x${o}`, [i, o] as const])).values()];
    const expected = distinct.flatMap(([inF, outF]) => [`NT ${M}x${outF}x${inF} f32`, `NN ${M}x${inF}x${outF} f32`, `TN ${outF}x${inF}x${M} f32`]);
    await page.getByLabel('Matmul rows (tokens)').fill(String(M));
    await page.getByTestId('bench-tune').click();
    await expect.poll(() => page.getByTestId('bench-plan').count(), { timeout: 300_000 }).toBe(expected.length);
    if ((await waitForStatus(['done', 'error'], 60_000)) === 'error') failWith(`tuning failed: ${await page.getByTestId('bench-error').innerText()}`);
    const read = async () => {
      const rows = page.getByTestId('bench-plan');
      const out: Record<string, string | null>[] = [];
      for (let i = 0; i < (await rows.count()); i++) {
        const r = rows.nth(i);
        const a = (k: string) => r.getAttribute(`data-${k}`);
        out.push({ shape: await a('shape'), pass: await a('pass'), label: await a('label'), ns: await a('ns'), timing: await a('timing'), candidates: await a('candidates') });
      }
      return out;
    };
    const tuned = await read();
    expect(tuned.map((p) => p.shape)).toEqual(expected);
    for (const p of tuned) {
      expect(p.label).toBeTruthy();
      expect(Number(p.ns)).toBeGreaterThan(0);
      expect(['timestamps', 'wall']).toContain(p.timing);
      expect(Number(p.candidates)).toBeGreaterThanOrEqual(1);
    }
    await shoot('tuned');

    // A reload: the plans come from IndexedDB (nothing is tuned: no progress shows), the same list.
    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'Benchmark' }).waitFor({ timeout: 30_000 });
    await page.getByLabel('Matmul rows (tokens)').fill(String(M));
    await expect.poll(() => page.getByTestId('bench-plan').count(), { timeout: 60_000 }).toBe(expected.length);
    expect(await page.getByTestId('bench').getAttribute('data-status')).toBe('idle');
    expect(await read()).toEqual(tuned);
    expect(await page.getByTestId('bench-plan').first().getAttribute('data-cached')).toBe('true');
  });
});
