// The reward model (stage rm): the pairwise loss and the head's gradient against float64 (and its finite
// differences), the gradient into the model against finite differences of the loss, training that separates a
// toy preference set, and the sequence-classification export read back (files, tensors, config) and loaded again
// to the live model's rewards.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeJobResult } from '../../src/cli/folder-sink';
import { buildResult } from '../../src/job/results';
import { folderSource } from '../../src/cli/folder-source';
import { parsePreferenceText, preparePreferenceData, type EncodedPair, type PreferenceRecord } from '../../src/data/preference';
import { releaseBatch, uploadBatch } from '../../src/model/batch';
import { initScoreWeight, lastTokenRows, loadRewardModel, SCORE_WEIGHT } from '../../src/model/reward-head';
import { SafetensorsFile } from '../../src/model/safetensors';
import { rewardPairLoss } from '../../src/engine/ref/preference-pair';
import { pairBatch, type RewardObjective } from '../../src/train/objectives';
import { writeJoined } from '../../src/train/optimizer';
import { Trainer } from '../../src/train/trainer';
import { Rng } from '../helpers/rng';
import { expectRel, FIXTURE, fixtureModel, initAdapter, settings, stopAndResume } from './helpers';

const scratch = mkdtempSync(join(tmpdir(), 'graft-rm-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const DPO_JSON = readFileSync(new URL('../fixtures/data/dpo.json', import.meta.url), 'utf8');

async function fixturePairs(n: number, cutoffLen: number): Promise<EncodedPair[]> {
  const { lm } = await fixtureModel();
  return preparePreferenceData(parsePreferenceText(DPO_JSON, 'dpo.json').records.slice(0, n), lm.tokenizer, lm.template, { cutoffLen, shuffle: false }).train;
}

/** The pairwise loss of rewards h·w over the pairs (chosen rows first), float64. */
function lossOf(h: Float64Array[], w: Float64Array, P: number): number {
  const r = h.map((row) => row.reduce((s, x, k) => s + x * w[k]!, 0));
  let sum = 0;
  for (let p = 0; p < P; p++) sum += rewardPairLoss(r[p]!, r[P + p]!).loss;
  return sum / P;
}

describe('the reward head', () => {
  it('loss, rewards and the head gradient equal float64 (checked by finite differences); the model gradient matches finite differences of the loss', async () => {
    const { ctx, lm } = await fixtureModel();
    const train = await fixturePairs(3, 40);
    const pad = lm.tokenizer.padTokenId ?? 0;
    const s = settings({ stage: 'rm', per_device_train_batch_size: 3, max_steps: 1, learning_rate: 1e-12, dataset: 'dpo.json', seed: 3 });
    const trainer = Trainer.create({ model: lm.model, settings: s, train, val: train, padTokenId: pad, startingAdapter: await initAdapter(lm), initializerRange: 0.5 });
    expect(trainer.params.at(-1)).toMatchObject({ name: SCORE_WEIGHT, shape: [1, 64], decay: true });
    const theta = await trainer.trainableWeights();
    const w = Float64Array.from(theta.get(SCORE_WEIGHT)!);
    // The head starts as Hugging Face's normal(0, initializer_range).
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    expect(std).toBeGreaterThan(0.35);
    expect(std).toBeLessThan(0.65);

    // The final hidden states of each sequence's last token, read back.
    const pb = pairBatch(train, pad);
    const batch = uploadBatch(ctx, pb.padded.inputIds, pb.padded.attentionMask);
    const acts = lm.model.forward(batch, { logits: 'none', saveForBackward: false });
    expect(acts.logitChunks).toEqual([]);
    const hidden = await ctx.readF32(acts.hidden);
    acts.release();
    releaseBatch(batch);
    const rows = lastTokenRows(pb.lengths, pb.T);
    const h = [...rows].map((r) => Float64Array.from(hidden.subarray(r * 64, (r + 1) * 64)));
    const P = train.length;
    const r = h.map((row) => row.reduce((a, x, k) => a + x * w[k]!, 0));

    // float64: dL/dw = Σ_p (dC·h_c + dR·h_r) / P, against central differences of the loss.
    const dW = new Float64Array(64);
    for (let p = 0; p < P; p++) {
      const { dChosen, dRejected } = rewardPairLoss(r[p]!, r[P + p]!);
      for (let k = 0; k < 64; k++) dW[k]! += (dChosen * h[p]![k]! + dRejected * h[P + p]![k]!) / P;
    }
    for (let k = 0; k < 64; k += 7) {
      const e = 1e-5;
      const plus = Float64Array.from(w);
      const minus = Float64Array.from(w);
      plus[k]! += e;
      minus[k]! -= e;
      const fd = (lossOf(h, plus, P) - lossOf(h, minus, P)) / (2 * e);
      expect(Math.abs(fd - dW[k]!)).toBeLessThan(1e-8 + 1e-6 * Math.abs(fd));
    }

    // The live rewards, then one step: its loss, metrics and the head's gradient.
    const live = await (trainer.objective as RewardObjective).score([...train.map((p) => p.chosen.inputIds), ...train.map((p) => p.rejected.inputIds)]);
    live.forEach((x, i) => expect(Math.abs(x - r[i]!)).toBeLessThan(1e-4 + 1e-4 * Math.abs(r[i]!)));
    const result = await trainer.run();
    const m = result.metrics[0]! as unknown as Record<string, number>;
    expectRel('loss', m.loss!, lossOf(h, w, P), 1e-4);
    expectRel('rewards/chosen', m['rewards/chosen']!, r.slice(0, P).reduce((a, b) => a + b, 0) / P, 1e-4);
    expect(m['rewards/accuracies']).toBe(r.slice(0, P).filter((x, p) => x > r[P + p]!).length / P);
    expect(m.pairs).toBe(3);
    const g = await trainer.gradients();
    const gw = g.get(SCORE_WEIGHT)!;
    for (let k = 0; k < 64; k++) expect(Math.abs(gw[k]! - dW[k]!), `score.weight[${k}]`).toBeLessThan(1e-5 + 1e-3 * Math.abs(dW[k]!));

    // Through the model (dHidden → LoRA): the directional derivative along the whole gradient.
    let n2 = 0;
    for (const v of g.values()) for (const x of v) n2 += x * x;
    const gnorm = Math.sqrt(n2);
    const eps = 1e-2 / gnorm;
    const lossAt = async (step: number) => {
      for (const p of trainer.params) {
        const d = g.get(p.name)!;
        writeJoined(ctx, p.parts, theta.get(p.name)!.map((x, i) => x + step * eps * (d[i]! / gnorm)), p.name);
      }
      return (await trainer.evaluate())!.eval_loss;
    };
    const fd = ((await lossAt(1)) - (await lossAt(-1))) / (2 * eps);
    expect(Math.abs(fd - gnorm) / gnorm, `finite difference ${fd} vs |g| ${gnorm}`).toBeLessThan(2e-2);
    // Without the LoRA part the head alone would not explain the norm: the model's gradient is really there.
    expect(gnorm).toBeGreaterThan(Math.hypot(...dW) * 1.01);
    trainer.dispose();
    expect(lm.model.adapter).toBeNull();
  });

  it('initScoreWeight draws normal(0, std) from the given uniform stream', () => {
    const rng = new Rng(1);
    const v = initScoreWeight(20001, 0.02, () => rng.next());
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    expect(Math.abs(mean)).toBeLessThan(0.001);
    expect(Math.abs(std - 0.02)).toBeLessThan(0.001);
    expect(() => lastTokenRows([0], 4)).toThrow(/length 0/);
  });
});

describe('training a reward model', () => {
  it('a few steps separate a toy preference set; the export reads back and loads to the live rewards', async () => {
    const { ctx, lm } = await fixtureModel();
    const pad = lm.tokenizer.padTokenId ?? 0;
    const topics = ['rain', 'tea', 'maps', 'cats', 'bread', 'boats', 'glue', 'stars'];
    const records: PreferenceRecord[] = topics.map((t, i) => ({
      prompt: [{ role: 'user', content: `Tell me about ${t}.` }],
      chosen: i % 2 ? `Sure: ${t} are fine.` : `Sure: ${t} is fine.`,
      rejected: 'No!!',
    }));
    const data = preparePreferenceData(records, lm.tokenizer, lm.template, { cutoffLen: 32, shuffle: false });
    const s = settings({ stage: 'rm', per_device_train_batch_size: 8, max_steps: 6, learning_rate: 3e-2, lora_rank: 4, dataset: 'toy.json', seed: 5 });
    const trainer = Trainer.create({ model: lm.model, settings: s, train: data.train, val: data.train, padTokenId: pad, initializerRange: 0.08 });
    const before = (await trainer.evaluate())! as unknown as Record<string, number>;
    const result = await trainer.run();
    const after = (await trainer.evaluate())! as unknown as Record<string, number>;
    const acc = result.metrics.map((m) => (m as unknown as Record<string, number>)['rewards/accuracies']!);
    expect(before['eval_rewards/accuracies']).toBeLessThan(1);
    expect(after['eval_rewards/accuracies']).toBe(1);
    expect(after.eval_loss).toBeLessThan(before.eval_loss! / 2);
    expect(acc.at(-1)).toBe(1);

    // Export: the sequence-classification folder (LoRA merged) and the adapter.
    const dir = join(scratch, 'rm');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir, { recursive: true });
    const written = await writeJobResult(dir, await buildResult(trainer, lm, await folderSource(FIXTURE), 'tiny-llama', trainer.settings));
    expect(written).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json', 'adapter/adapter_config.json', 'adapter/adapter_model.safetensors']));
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ architectures: ['LlamaForSequenceClassification'], num_labels: 1, pad_token_id: pad, id2label: { '0': 'LABEL_0' }, hidden_size: 64 });
    const file = new SafetensorsFile(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), 'model.safetensors');
    const base = lm.model.parameters().map((p) => p.name);
    expect(file.names.sort()).toEqual([...base, SCORE_WEIGHT].sort());
    expect(file.info(SCORE_WEIGHT).shape).toEqual([1, 64]);
    const trained = await trainer.trainableWeights();
    expect(file.float32(SCORE_WEIGHT)).toEqual(trained.get(SCORE_WEIGHT));
    // q_proj of layer 0 is merged: base + (alpha/r)·B·A.
    const q = 'model.layers.0.self_attn.q_proj';
    const A = trained.get(`base_model.model.${q}.lora_A.weight`)!;
    const B = trained.get(`base_model.model.${q}.lora_B.weight`)!;
    const W = new SafetensorsFile(new Uint8Array(readFileSync(join(FIXTURE, 'model.safetensors'))), 'base').float32(`${q}.weight`);
    const merged = file.float32(`${q}.weight`);
    const scale = trainer.method.lora!.alpha / trainer.method.lora!.r;
    let worst = 0;
    for (let o = 0; o < 64; o++) {
      for (let i = 0; i < 64; i++) {
        let d = 0;
        for (let k = 0; k < 4; k++) d += B[o * 4 + k]! * A[k * 64 + i]!;
        worst = Math.max(worst, Math.abs(merged[o * 64 + i]! - (W[o * 64 + i]! + scale * d)));
      }
    }
    expect(worst).toBeLessThan(1e-6);
    const adapterConfig = JSON.parse(readFileSync(join(dir, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(adapterConfig).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['score'], r: 4, peft_type: 'LORA' });
    const adapter = new SafetensorsFile(new Uint8Array(readFileSync(join(dir, 'adapter', 'adapter_model.safetensors'))), 'adapter');
    expect(adapter.float32(`base_model.model.${SCORE_WEIGHT}`)).toEqual(trained.get(SCORE_WEIGHT));

    // Loaded again (as `graft score` loads it), the rewards are the live model's.
    const seqs = [...data.train.map((p) => p.chosen.inputIds), data.train[0]!.rejected.inputIds];
    const live = await (trainer.objective as RewardObjective).score(seqs);
    const loaded = await loadRewardModel(ctx, await folderSource(dir));
    try {
      const again = await loaded.head.score(loaded.lm.model, seqs, loaded.padTokenId);
      again.forEach((x, i) => expect(Math.abs(x - live[i]!), `sequence ${i}: ${x} vs ${live[i]}`).toBeLessThan(1e-4 + 1e-4 * Math.abs(live[i]!)));
      expect(loaded.lm.config.architecture).toBe('LlamaForCausalLM');
    } finally {
      loaded.dispose();
    }
    trainer.dispose();
    // A causal LM folder is not a reward model.
    await expect(loadRewardModel(ctx, await folderSource(FIXTURE))).rejects.toThrow(/not a reward model/);
  });
});

describe('a reward model run resumes', () => {
  it('3 steps straight equal 2 + stop + resume 1: losses, the head and its moments bit for bit', async () => {
    const { lm } = await fixtureModel();
    const train = await fixturePairs(4, 36);
    const s = settings({ stage: 'rm', per_device_train_batch_size: 2, max_steps: 3, learning_rate: 1e-2, dataset: 'dpo.json', save_strategy: 'steps', save_steps: 100, seed: 4 });
    const { straight, resumed } = await stopAndResume(lm, s, train, 2, { padTokenId: lm.tokenizer.padTokenId ?? 0, checkpointData: true, resumedStore: true });
    expect(resumed.metrics.map((m) => m.loss)).toEqual(straight.metrics.map((m) => m.loss));
    expect(resumed.weights.get(SCORE_WEIGHT)).toEqual(straight.weights.get(SCORE_WEIGHT));
    for (const [name, w] of straight.weights) expect(resumed.weights.get(name), name).toEqual(w);
    expect(resumed.moments!.get(SCORE_WEIGHT)!.expAvgSq).toEqual(straight.moments!.get(SCORE_WEIGHT)!.expAvgSq);
  });
});
