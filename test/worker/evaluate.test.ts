// The Evaluate screen's service (src/worker/evaluate.ts, through createTrainServices as the page calls it) in Node:
// fake-indexeddb for its IndexedDB, a folder store for the tiny fixture model, the process's one GPU device, and
// the command line's jieba (src/eval/jieba-node.ts) as its segmenter:
//   - `graft train --do_predict` (in process) trains a LoRA step on an alpaca file with val_size 3 and writes its
//     adapter and generated_predictions.jsonl / predict_results.json; the adapter, imported into the worker, and
//     the base answer the same val_size split through the service: the tuned side's generated_predictions.jsonl
//     is the CLI's byte for byte, its predict_results.json the CLI's once the timings are the CLI's, and each
//     side's BLEU-4 / ROUGE equal src/eval/metrics.ts on the service's own answers;
//   - pasted pairs are answered as they are; a split of val_size 0 and a stopped evaluation get a sentence.
import 'fake-indexeddb/auto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jiebaCut } from '../../src/eval/jieba-node';
import { exampleScores, meanScores } from '../../src/eval/metrics';
import { NodeFolderStore } from '../../src/hub/store-node';
import { putModelFiles } from '../../src/worker/library';
import { datasets } from '../../src/worker/datasets';
import { evaluateFiles } from '../../src/worker/evaluate';
import type { EvaluateEvent, EvaluateResult, EvaluateSide, TunedEntry } from '../../src/worker/protocol';
import { createTrainServices, type TrainServices } from '../../src/worker/train-api';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { testContext } from '../helpers/gpu';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURE = join(ROOT, 'test/fixtures/tiny-llama');
const ALPACA = join(ROOT, 'test/fixtures/data/sft_alpaca.json');
const REPO = 'test/tiny-llama';
const JOB = { cutoff_len: 128, val_size: 3, seed: 42 };
const MAX_NEW = 6;
const decoder = new TextDecoder();

let dir: string;
let service: TrainServices;
let datasetId: string;
let cli: Map<string, Uint8Array>;
let adapter: TunedEntry;
let result: EvaluateResult;
const events: EvaluateEvent[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'graft-evaluate-'));
  const models = new NodeFolderStore({ dir: join(dir, 'models') });
  const files = new Map(readdirSync(FIXTURE, { withFileTypes: true }).filter((f) => f.isFile()).map((f) => [f.name, new Uint8Array(readFileSync(join(FIXTURE, f.name)))]));
  await putModelFiles(models, REPO, 'main', files);
  service = createTrainServices({ gpu: testContext, unloadChatModel: async () => undefined, models, tunedModels: new NodeFolderStore({ dir: join(dir, 'tuned') }), segmenter: async () => jiebaCut });
  datasetId = (await datasets.openBytes(readFileSync(ALPACA), 'sft_alpaca.json')).id;

  const out = join(dir, 'cli');
  const r = await graft([
    'train', '--model', FIXTURE, '--dataset', ALPACA, '--finetuning_type', 'lora', '--lora_rank', '2', '--learning_rate', '1e-2', '--max_steps', '1', '--save_strategy', 'no',
    '--cutoff_len', String(JOB.cutoff_len), '--val_size', String(JOB.val_size), '--seed', String(JOB.seed),
    '--do_predict', '--predict_with_generate', '--do_sample', 'false', '--max_new_tokens', String(MAX_NEW), '--output_dir', out,
  ]);
  expect(r.code, r.graftStderr).toBe(0);
  cli = new Map(readdirSync(out).filter((f) => /^(adapter_|generated_predictions|predict_results)/.test(f)).map((f) => [f, new Uint8Array(readFileSync(join(out, f)))]));
  adapter = await service.importAdapter(
    ['adapter_config.json', 'adapter_model.safetensors'].map((name) => ({ name, bytes: cli.get(name)!, mime: 'application/octet-stream' })),
    REPO,
    'main',
    'cli adapter',
  );
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const file = (side: EvaluateSide, name: string) => side.files.find((f) => f.name === name)!.bytes;

/** The service's metrics are src/eval/metrics.ts's on the service's own answers. */
function expectMetricsOf(side: EvaluateSide, answers: { predict: string; label: string }[]): void {
  const want = meanScores(answers.map((a) => exampleScores(a.predict, a.label, jiebaCut)));
  for (const k of ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const) expect(side.metrics[`predict_${k}`], k).toBe(want[k]);
  expect(side.metrics.predict_tokens_per_second).toBeGreaterThan(0);
}

describe('evaluating the val_size split of a dataset in the worker', () => {
  it('answers with the base and the imported adapter, with progress', async () => {
    result = await service.evaluate({ baseRepo: REPO, tuned: adapter.ref, set: { kind: 'dataset', datasetId }, input: { ...JOB }, maxNewTokens: MAX_NEW }, (e) => events.push(e));
    expect(result.setName).toMatch(/^the val_size split of sft_alpaca\.json \(3 of \d+ records\)$/);
    expect(result.examples).toHaveLength(3);
    expect(result.base.label).toBe(REPO);
    expect(result.tuned?.label).toBe('cli adapter');
    for (const e of result.examples) {
      expect(e.prompt).toMatch(/^<\|im_start\|>user\n/); // cut to cutoff_len as LLaMA-Factory's infer_seqlen cuts it
      expect(e.reference.length).toBeGreaterThan(0);
      expect(typeof e.tuned).toBe('string');
    }
    const progress = events.filter((e) => e.kind === 'progress');
    expect(progress.filter((e) => e.side === 'base').map((e) => e.done)).toEqual([1, 2, 3]);
    expect(progress.filter((e) => e.side === 'tuned').map((e) => e.done)).toEqual([1, 2, 3]);
  }, 300_000);

  it('scores each side as src/eval/metrics.ts does', () => {
    expectMetricsOf(result.base, result.examples.map((e) => ({ predict: e.base, label: e.reference })));
    expectMetricsOf(result.tuned!, result.examples.map((e) => ({ predict: e.tuned!, label: e.reference })));
    for (const e of result.examples) {
      expect(e.baseScores).toEqual(exampleScores(e.base, e.reference, jiebaCut));
      expect(e.tunedScores).toEqual(exampleScores(e.tuned!, e.reference, jiebaCut));
    }
  });

  it('gives the files `graft train --do_predict` writes for the same adapter and split', () => {
    const tuned = result.tuned!;
    expect(decoder.decode(file(tuned, 'generated_predictions.jsonl'))).toBe(decoder.decode(cli.get('generated_predictions.jsonl')!));
    const cliMetrics = JSON.parse(decoder.decode(cli.get('predict_results.json')!)) as Record<string, number>;
    expect(Object.keys(tuned.metrics).sort()).toEqual(Object.keys(cliMetrics).sort());
    for (const k of ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l']) expect(tuned.metrics[`predict_${k}`]).toBe(cliMetrics[`predict_${k}`]);
    // The timings are this run's; with the CLI's timings the file is the CLI's byte for byte.
    const lines = decoder.decode(file(tuned, 'generated_predictions.jsonl')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { prompt: string; predict: string; label: string });
    const again = evaluateFiles({ predictions: lines, metrics: cliMetrics });
    expect(decoder.decode(again.find((f) => f.name === 'predict_results.json')!.bytes)).toBe(decoder.decode(cli.get('predict_results.json')!));
    // Both sides' files parse with LLaMA-Factory's fields.
    for (const side of [result.base, tuned]) {
      const rows = decoder.decode(file(side, 'generated_predictions.jsonl')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
      expect(rows.map((r) => Object.keys(r))).toEqual(rows.map(() => ['prompt', 'predict', 'label']));
      expect(decoder.decode(file(side, 'predict_results.json'))).toMatch(/^\{\n {4}"predict_bleu-4": /);
    }
    expect(lines.map((l) => l.predict)).toEqual(result.examples.map((e) => e.tuned));
  });
});

describe('other sets and refusals', () => {
  it('answers pasted pairs with the base alone', async () => {
    const pairs = [{ prompt: 'What is 2 + 2?', answer: '4' }, { prompt: '今天天气怎么样?', answer: '今天天气很好。' }];
    const r = await service.evaluate({ baseRepo: REPO, tuned: null, set: { kind: 'pairs', pairs }, input: { cutoff_len: 64 }, maxNewTokens: 4 });
    expect(r.setName).toBe('2 pasted pairs');
    expect(r.tuned).toBeUndefined();
    expect(r.examples.map((e) => e.reference)).toEqual(['4\n', '今天天气很好。\n']); // the answer's tokens, <|im_end|> skipped, as LLaMA-Factory decodes labels
    expect(r.examples.map((e) => e.prompt)).toEqual(pairs.map((p) => `<|im_start|>user\n${p.prompt}<|im_end|>\n<|im_start|>assistant\n`));
    expectMetricsOf(r.base, r.examples.map((e) => ({ predict: e.base, label: e.reference })));
  }, 120_000);

  it('refuses a split of val_size 0 with a sentence, and stops when asked', async () => {
    await expect(service.evaluate({ baseRepo: REPO, tuned: null, set: { kind: 'dataset', datasetId }, input: { val_size: 0 }, maxNewTokens: 4 })).rejects.toThrow(/val_size is 0, so sft_alpaca\.json has no held-out split/);
    const running = service.evaluate({ baseRepo: REPO, tuned: adapter.ref, set: { kind: 'dataset', datasetId }, input: { ...JOB }, maxNewTokens: MAX_NEW }, (e) => {
      if (e.kind === 'progress') void service.stopEvaluation();
    });
    await expect(running).rejects.toThrow(/The evaluation was stopped/);
    // The next one runs.
    const r = await service.evaluate({ baseRepo: REPO, tuned: null, set: { kind: 'pairs', pairs: [{ prompt: 'Hi', answer: 'Hello' }] }, maxNewTokens: 2 });
    expect(r.examples).toHaveLength(1);
  }, 120_000);
});
