// graft info --budget: the longest training sequence (batch 1) that the memory planner fits in a budget, for
// LoRA and full fine-tuning, in the text and the JSON report; a budget that is not a size fails in one line.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseByteSize } from '../../src/cli/info';
import { planShapeFromNumbers, shapeNumbers } from '../../src/model/info';
import { planTrainingStep } from '../../src/model/memory-plan';
import { runGraft } from './run';

const FIXTURE = 'test/fixtures/tiny-llama';

describe('graft info --budget', () => {
  it('reports the longest sequence that fits: it fits the budget and 64 tokens more do not', async () => {
    const budget = 5 * 2 ** 20;
    const r = await runGraft(['info', '--model', FIXTURE, '--budget', '5MiB', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { model: { parameters: number }; fit: { budgetBytes: number; maxPositions: number; loraMaxSeqLen: number; fullMaxSeqLen: number; loraRank: number } };
    const cfg = JSON.parse(readFileSync(`${FIXTURE}/config.json`, 'utf8')) as Record<string, unknown>;
    expect(report.fit.budgetBytes).toBe(budget);
    expect(report.fit.maxPositions).toBe(256); // the fixture's max_position_embeddings
    const shape = planShapeFromNumbers(shapeNumbers(cfg), report.model.parameters);
    const peak = (method: 'lora' | 'full', T: number) => planTrainingStep(shape, { method, batch: 1, seqLen: T, loraRank: report.fit.loraRank, maxPositions: 256 }).total;
    for (const [method, T] of [['lora', report.fit.loraMaxSeqLen], ['full', report.fit.fullMaxSeqLen]] as const) {
      expect(T % 64, `${method}: a multiple of 64`).toBe(0);
      expect(T, `${method}: something fits in 5 MiB`).toBeGreaterThan(0);
      expect(peak(method, T)).toBeLessThanOrEqual(budget);
      if (T < 256) expect(peak(method, T + 64)).toBeGreaterThan(budget);
    }
    expect(report.fit.fullMaxSeqLen).toBeLessThan(report.fit.loraMaxSeqLen); // full fine-tuning needs more

    const text = await runGraft(['info', '--model', FIXTURE, '--budget', '5MiB']);
    expect(text.stdout).toMatch(new RegExp(`LoRA \\(r=8\\)\\s+${report.fit.loraMaxSeqLen} tokens`));
    const tiny = await runGraft(['info', '--model', FIXTURE, '--budget', '1MB']);
    expect(tiny.stdout).toMatch(/full fine-tuning\s+does not fit/);
  });

  it('reads sizes with units and refuses what is not one', async () => {
    expect(parseByteSize('4GB')).toBe(4e9);
    expect(parseByteSize('4 GiB')).toBe(4 * 2 ** 30);
    expect(parseByteSize('512mib')).toBe(512 * 2 ** 20);
    expect(parseByteSize('2e9')).toBe(2e9);
    expect(() => parseByteSize('lots')).toThrow(/--budget "lots" is not a memory size; write it like 4GB/);
    const r = await runGraft(['info', '--model', FIXTURE, '--budget', '-3GB']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('graft')).length).toBe(1);
  });
});
