// DPO and its variants.
// - The PyTorch reference (sigmoid DPO, beta 0.1, dpo.json[0:2], policy = base + init_adapter, reference = the
//   adapter switched off, log-probs summed over the answer tokens, each sequence cut to cutoff_len 64): the four
//   log-prob vectors, the loss and the LoRA gradients, through the trainer API and through `graft train`.
// - Each pref_loss (sigmoid, hinge, ipo, orpo, simpo, with pref_ftx): the float64 formulas of preference-loss.ts
//   against TRL/LLaMA-Factory's expressions, their per-sequence coefficients against central finite differences,
//   the GPU kernel against them, and one trainer step on the fixture whose loss is the formula of the model's
//   log-probs and whose gradient's directional derivative matches finite differences of the loss.
// - Full fine-tuning with a frozen copy as the reference.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { folderSource } from '../../src/cli/folder-source';
import { parsePreferenceText, preparePreferenceData, type EncodedPair } from '../../src/data/preference';
import { loadModel } from '../../src/model/load';
import { writeJoined } from '../../src/train/optimizer';
import { negLogSigmoid, preferencePairLoss, rewardPairLoss, sigmoid, type PairLogps } from '../../src/engine/ref/preference-pair';
import { PAIR_METRICS, preferenceLoss, usesReference, type DpoObjective, type PreferenceLossParams, type PrefLoss } from '../../src/train/objectives';
import { SettingsError } from '../../src/train/settings';
import { Trainer } from '../../src/train/trainer';
import { lines } from '../cli/run';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { Rng } from '../helpers/rng';
import { expectRel, FIXTURE, FIXTURE_DIR, fixtureModel, initAdapter, restoreBase, safetensors, settings, stopAndResume } from './helpers';

// `graft train` runs in this process on the file's one GPU device (test/helpers/graft-in-process.ts).

interface DpoReference {
  beta: number;
  loss: number;
  policy_chosen_logps: number[];
  policy_rejected_logps: number[];
  reference_chosen_logps: number[];
  reference_rejected_logps: number[];
}
const dpoRef = (JSON.parse(readFileSync(new URL('reference/reference.json', FIXTURE_DIR), 'utf8')) as { dpo: DpoReference }).dpo;
const DPO_JSON = readFileSync(new URL('../fixtures/data/dpo.json', import.meta.url), 'utf8');
const DPO_PATH = 'test/fixtures/data/dpo.json';

const scratch = mkdtempSync(join(tmpdir(), 'graft-dpo-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function fixturePairs(n: number, cutoffLen: number): Promise<EncodedPair[]> {
  const { lm } = await fixtureModel();
  const parsed = parsePreferenceText(DPO_JSON, 'dpo.json');
  return preparePreferenceData(parsed.records.slice(0, n), lm.tokenizer, lm.template, { cutoffLen, shuffle: false }).train;
}

// ---- the formulas, float64 ---------------------------------------------------------------------------------

/** The losses as TRL's DPOTrainer.dpo_loss and LLaMA-Factory's CustomDPOTrainer write them (per pair). */
function trlLoss(p: PreferenceLossParams, x: PairLogps): number {
  const logsig = (v: number) => Math.log(1 / (1 + Math.exp(-v)));
  const norm = p.loss === 'ipo' || p.loss === 'orpo' || p.loss === 'simpo';
  const [c, r] = norm ? [x.chosen / x.chosenTokens, x.rejected / x.rejectedTokens] : [x.chosen, x.rejected];
  const [rc, rr] = norm ? [x.refChosen! / x.chosenTokens, x.refRejected! / x.rejectedTokens] : [x.refChosen!, x.refRejected!];
  const logits = c - r - (rc - rr);
  let loss: number;
  switch (p.loss) {
    case 'sigmoid':
      loss = -logsig(p.beta * logits);
      break;
    case 'hinge':
      loss = Math.max(0, 1 - p.beta * logits);
      break;
    case 'ipo':
      loss = (logits - 1 / (2 * p.beta)) ** 2;
      break;
    case 'orpo': {
      const logOdds = c - r - (Math.log1p(-Math.exp(c)) - Math.log1p(-Math.exp(r)));
      loss = -c + p.beta * -logsig(logOdds);
      break;
    }
    case 'simpo':
      loss = -logsig(p.beta * (c - r - p.gamma / p.beta));
      break;
  }
  return loss + p.ftx * -(x.chosen / x.chosenTokens);
}

const rngFn = (seed: number) => {
  const r = new Rng(seed);
  return () => r.next();
};

function randomPair(rng: () => number): PairLogps {
  const chosenTokens = 3 + Math.floor(rng() * 40);
  const rejectedTokens = 3 + Math.floor(rng() * 40);
  const chosen = -chosenTokens * (0.2 + 3 * rng());
  const rejected = -rejectedTokens * (0.2 + 3 * rng());
  return { chosen, rejected, chosenTokens, rejectedTokens, refChosen: chosen + 8 * (rng() - 0.5), refRejected: rejected + 8 * (rng() - 0.5) };
}

const VARIANTS: PreferenceLossParams[] = [
  { loss: 'sigmoid', beta: 0.1, gamma: 0.5, ftx: 0 },
  { loss: 'sigmoid', beta: 0.5, gamma: 0.5, ftx: 0.3 },
  { loss: 'hinge', beta: 0.1, gamma: 0.5, ftx: 0 },
  { loss: 'ipo', beta: 0.1, gamma: 0.5, ftx: 0 },
  { loss: 'orpo', beta: 0.1, gamma: 0.5, ftx: 0 },
  { loss: 'simpo', beta: 2, gamma: 0.5, ftx: 0.2 },
];

describe('the preference losses in float64', () => {
  it("equal TRL's / LLaMA-Factory's expressions, and give the reference's DPO loss from its log-probs", () => {
    const rng = rngFn(11);
    for (const v of VARIANTS) {
      for (let k = 0; k < 50; k++) {
        const x = randomPair(rng);
        const want = trlLoss(v, x);
        expect(Math.abs(preferencePairLoss(v, x).loss - want), `${v.loss}`).toBeLessThan(1e-10 * Math.max(1, Math.abs(want)));
      }
    }
    const r = dpoRef;
    const losses = [0, 1].map(
      (i) =>
        preferencePairLoss(
          { loss: 'sigmoid', beta: r.beta, gamma: 0, ftx: 0 },
          {
            chosen: r.policy_chosen_logps[i]!,
            rejected: r.policy_rejected_logps[i]!,
            chosenTokens: 1,
            rejectedTokens: 1,
            refChosen: r.reference_chosen_logps[i]!,
            refRejected: r.reference_rejected_logps[i]!,
          },
        ).loss,
    );
    expect(Math.abs((losses[0]! + losses[1]!) / 2 - r.loss)).toBeLessThan(1e-9);
    expect(negLogSigmoid(800)).toBe(0);
    expect(negLogSigmoid(-800)).toBe(800);
    expect(usesReference('orpo') || usesReference('simpo')).toBe(false);
  });

  it('the per-sequence coefficients dL/dS_c, dL/dS_r equal central finite differences of the loss', () => {
    const rng = rngFn(5);
    for (const v of VARIANTS) {
      for (let k = 0; k < 40; k++) {
        const x = randomPair(rng);
        const res = preferencePairLoss(v, x);
        if (v.loss === 'hinge' && Math.abs(res.loss) < 1e-3) continue; // the kink: no derivative
        for (const which of ['chosen', 'rejected'] as const) {
          const h = 1e-4;
          const at = (d: number) => preferencePairLoss(v, { ...x, [which]: x[which] + d }).loss;
          const fd = (at(h) - at(-h)) / (2 * h);
          const got = which === 'chosen' ? res.dChosen : res.dRejected;
          expect(Math.abs(got - fd), `${v.loss} ${which}: ${got} vs ${fd}`).toBeLessThan(1e-7 + 1e-6 * Math.abs(fd));
        }
      }
    }
    // The reward model's pairwise loss.
    for (const [a, b] of [
      [0.3, -1.2],
      [-2, 5],
      [40, -40],
    ] as const) {
      const res = rewardPairLoss(a, b);
      const h = 1e-5;
      expect(Math.abs(res.dChosen - (rewardPairLoss(a + h, b).loss - rewardPairLoss(a - h, b).loss) / (2 * h))).toBeLessThan(1e-8);
      expect(Math.abs(res.dRejected - (rewardPairLoss(a, b + h).loss - rewardPairLoss(a, b - h).loss) / (2 * h))).toBeLessThan(1e-8);
      expect(Math.abs(res.loss - Math.log1p(Math.exp(-(a - b))))).toBeLessThan(1e-12);
    }
    expect(sigmoid(-800)).toBe(0);
  });
});

// ---- the GPU ------------------------------------------------------------------------------------------------

describe('the pair loss kernel', () => {
  it('coefficients and metric sums equal the float64 formulas, for every loss and the reward model', async () => {
    const { ctx } = await fixtureModel();
    const rng = rngFn(3);
    const P = 37; // fewer pairs than the kernel's 64 lanes, and (130) more
    for (const v of [...VARIANTS, { loss: 'reward' as const, beta: 1, gamma: 0, ftx: 0 }]) {
      for (const pairs of [P, 130]) {
        const xs = Array.from({ length: pairs }, () => randomPair(rng));
        const sign = v.loss === 'reward' ? 1 : -1;
        const scale = 1 / pairs;
        const values = new Float32Array(2 * pairs);
        const ref = new Float32Array(2 * pairs);
        const lens = new Float32Array(2 * pairs);
        xs.forEach((x, p) => {
          values[p] = sign * x.chosen;
          values[pairs + p] = sign * x.rejected;
          ref[p] = x.refChosen!;
          ref[pairs + p] = x.refRejected!;
          lens[p] = x.chosenTokens;
          lens[pairs + p] = x.rejectedTokens;
        });
        const xs32 = xs.map((x, p) => ({ ...x, chosen: sign * values[p]!, rejected: sign * values[pairs + p]!, refChosen: ref[p]!, refRejected: ref[pairs + p]! }));
        const coefT = ctx.empty([2 * pairs]);
        const stats = ctx.zeros([2 + PAIR_METRICS.length]);
        const up = (a: Float32Array) => ctx.upload([a.length], a);
        const [vT, rT, lT] = [up(values), up(ref), up(lens)];
        preferenceLoss(ctx, coefT, stats, vT, rT, lT, { ...v, sign, scale, lossSlot: 0, metricSlot: 2 });
        const coef = await ctx.readF32(coefT);
        const s = await ctx.readF32(stats);
        for (const t of [coefT, stats, vT, rT, lT]) t.release();
        let lossSum = 0;
        let correct = 0;
        xs32.forEach((x, p) => {
          let dC: number, dR: number, loss: number, rc: number, rr: number;
          if (v.loss === 'reward') {
            ({ loss, dChosen: dC, dRejected: dR } = rewardPairLoss(x.chosen, x.rejected));
            [rc, rr] = [x.chosen, x.rejected];
          } else {
            const res = preferencePairLoss(v as PreferenceLossParams, x);
            ({ loss, dChosen: dC, dRejected: dR } = res);
            [rc, rr] = [res.rewardChosen, res.rewardRejected];
          }
          lossSum += loss;
          correct += rc > rr ? 1 : 0;
          const tol = (w: number) => 2e-6 + 2e-4 * Math.abs(w);
          expect(Math.abs(coef[p]! - sign * dC * scale), `${v.loss} chosen ${p}`).toBeLessThan(tol(dC * scale));
          expect(Math.abs(coef[pairs + p]! - sign * dR * scale), `${v.loss} rejected ${p}`).toBeLessThan(tol(dR * scale));
        });
        expect(Math.abs(s[0]! - lossSum), `${v.loss} loss sum`).toBeLessThan(1e-4 * Math.max(1, Math.abs(lossSum)));
        expect(s[1]).toBe(0); // the gradient norm's slot is the trainer's
        expect(s[2 + 2]).toBe(correct);
      }
    }
  });
});

describe('DPO against the PyTorch reference', () => {
  it('reference and policy log-probs, the loss and the LoRA gradients of init_adapter on dpo.json[0:2]', async () => {
    const { lm } = await fixtureModel();
    const train = await fixturePairs(2, 64);
    const s = settings({ stage: 'dpo', pref_beta: dpoRef.beta, per_device_train_batch_size: 2, max_steps: 1, dataset: 'dpo.json' });
    const trainer = Trainer.create({ model: lm.model, settings: s, train, padTokenId: lm.tokenizer.padTokenId ?? 0, startingAdapter: await initAdapter(lm) });
    const readbacks = lm.model.ctx.stats.readbacks;
    await trainer.prepare();
    expect(lm.model.ctx.stats.readbacks - readbacks).toBe(1); // one batch of reference log-probs, computed once
    await trainer.prepare();
    const dpo = trainer.objective as DpoObjective;
    const ref = dpo.referenceLogps!;
    const policy = await dpo.sequenceLogps('policy');
    for (let i = 0; i < 2; i++) {
      expectRel(`reference chosen ${i}`, ref.chosen[i]!, dpoRef.reference_chosen_logps[i]!, 1e-4);
      expectRel(`reference rejected ${i}`, ref.rejected[i]!, dpoRef.reference_rejected_logps[i]!, 1e-4);
      expectRel(`policy chosen ${i}`, policy.chosen[i]!, dpoRef.policy_chosen_logps[i]!, 1e-4);
      expectRel(`policy rejected ${i}`, policy.rejected[i]!, dpoRef.policy_rejected_logps[i]!, 1e-4);
    }
    const before = lm.model.ctx.stats.readbacks;
    const result = await trainer.run();
    expect(lm.model.ctx.stats.readbacks - before).toBe(1); // one readback per step, as SFT
    const m = result.metrics[0]! as unknown as Record<string, number>;
    expectRel('loss', m.loss!, dpoRef.loss, 1e-4);
    // TRL's metrics from the reference numbers.
    const rc = [0, 1].map((i) => dpoRef.beta * (dpoRef.policy_chosen_logps[i]! - dpoRef.reference_chosen_logps[i]!));
    const rr = [0, 1].map((i) => dpoRef.beta * (dpoRef.policy_rejected_logps[i]! - dpoRef.reference_rejected_logps[i]!));
    expectRel('rewards/chosen', m['rewards/chosen']!, (rc[0]! + rc[1]!) / 2, 1e-3);
    expectRel('rewards/rejected', m['rewards/rejected']!, (rr[0]! + rr[1]!) / 2, 1e-3);
    expectRel('rewards/margins', m['rewards/margins']!, (rc[0]! + rc[1]! - rr[0]! - rr[1]!) / 2, 1e-3);
    expect(m['rewards/accuracies']).toBe(1);
    expectRel('logps/chosen', m['logps/chosen']!, (dpoRef.policy_chosen_logps[0]! + dpoRef.policy_chosen_logps[1]!) / 2, 1e-4);
    expect(m.pairs).toBe(2);
    const grads = await trainer.gradients();
    const want = safetensors('reference/dpo_grads.safetensors');
    expect([...grads.keys()].sort()).toEqual(want.names.sort());
    let worst = 0;
    for (const name of want.names) {
      const g = grads.get(name)!;
      const w = want.float32(name);
      for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(g[i]! - w[i]!) - 1e-3 * Math.abs(w[i]!));
    }
    expect(worst).toBeLessThan(1e-4);
    trainer.dispose();
    expect(lm.model.adapter).toBeNull();
  });
});

describe('every pref_loss through the trainer', () => {
  const cases: { loss: PrefLoss; extra?: Record<string, unknown> }[] = [
    { loss: 'sigmoid', extra: { pref_ftx: 0.5 } },
    { loss: 'hinge' },
    { loss: 'ipo' },
    { loss: 'orpo' },
    { loss: 'simpo', extra: { simpo_gamma: 0.3, pref_beta: 2 } },
  ];
  it.each(cases)('$loss: the step loss is the formula of the log-probs; the gradient matches finite differences of the loss', async ({ loss, extra }) => {
    const { lm } = await fixtureModel();
    const train = await fixturePairs(2, 40);
    const s = settings({ stage: 'dpo', pref_loss: loss, per_device_train_batch_size: 2, max_steps: 1, learning_rate: 1e-12, dataset: 'dpo.json', ...extra });
    const trainer = Trainer.create({ model: lm.model, settings: s, train, val: train, padTokenId: lm.tokenizer.padTokenId ?? 0, startingAdapter: await initAdapter(lm) });
    const dpo = trainer.objective as DpoObjective;
    await trainer.prepare();
    const policy = await dpo.sequenceLogps('policy');
    const ref = usesReference(loss) ? dpo.referenceLogps! : policy;
    const expected = train.map((p, i) =>
      preferencePairLoss(dpo.loss, {
        chosen: policy.chosen[i]!,
        rejected: policy.rejected[i]!,
        chosenTokens: p.chosen.labels.filter((l) => l !== -100).length,
        rejectedTokens: p.rejected.labels.filter((l) => l !== -100).length,
        refChosen: ref.chosen[i]!,
        refRejected: ref.rejected[i]!,
      }),
    );
    const theta = await trainer.trainableWeights();
    const result = await trainer.run();
    const m = result.metrics[0]! as unknown as Record<string, number>;
    const mean = (f: (r: (typeof expected)[number]) => number) => expected.reduce((a, r) => a + f(r), 0) / expected.length;
    expectRel(`${loss} loss`, m.loss!, mean((r) => r.loss), 1e-4);
    expectRel(`${loss} rewards/chosen`, m['rewards/chosen']!, mean((r) => r.rewardChosen), 1e-3);
    if (loss === 'orpo') expectRel('odds_ratio_loss', m.odds_ratio_loss!, mean((r) => r.oddsRatioLoss), 1e-3);

    // Directional derivative along the gradient: (L(θ + εd) − L(θ − εd)) / 2ε = |g| for d = g/|g|.
    const g = await trainer.gradients();
    let norm2 = 0;
    for (const v of g.values()) for (const x of v) norm2 += x * x;
    const gnorm = Math.sqrt(norm2);
    expectRel('grad_norm', m.grad_norm!, gnorm, 1e-4);
    const eps = 1e-2 / gnorm;
    const lossAt = async (step: number) => {
      for (const p of trainer.params) {
        const t = theta.get(p.name)!;
        const d = g.get(p.name)!;
        writeJoined(lm.model.ctx, p.parts, t.map((x, i) => x + step * eps * (d[i]! / gnorm)), p.name);
      }
      return (await trainer.evaluate())!.eval_loss;
    };
    const fd = ((await lossAt(1)) - (await lossAt(-1))) / (2 * eps);
    expect(Math.abs(fd - gnorm) / gnorm, `${loss}: finite difference ${fd} vs |g| ${gnorm}`).toBeLessThan(2e-2);
    trainer.dispose();
  });
});

describe('DPO with full fine-tuning', () => {
  it('a frozen copy is the reference: step 1 has policy = reference (loss ln 2), the update then wins', async () => {
    const { ctx, lm } = await fixtureModel();
    const train = await fixturePairs(2, 40);
    const s = settings({ stage: 'dpo', finetuning_type: 'full', per_device_train_batch_size: 2, max_steps: 2, learning_rate: 1e-3, dataset: 'dpo.json' });
    const pad = lm.tokenizer.padTokenId ?? 0;
    const missing = (() => {
      try {
        Trainer.create({ model: lm.model, settings: s, train, padTokenId: pad });
      } catch (e) {
        return e;
      }
    })();
    expect(missing).toBeInstanceOf(SettingsError);
    expect(String((missing as Error).message)).toMatch(/frozen copy of the model.*reference/);
    // Reference-free losses need no copy.
    Trainer.create({ model: lm.model, settings: { ...s, pref_loss: 'simpo' }, train, padTokenId: pad }).dispose();

    const reference = await loadModel(ctx, await folderSource(FIXTURE));
    const trainer = Trainer.create({ model: lm.model, settings: s, train, padTokenId: pad, reference: reference.model });
    expect(trainer.notes.join('\n')).toMatch(/frozen copy of the model: .* more GPU memory/);
    await trainer.prepare();
    reference.dispose(); // no longer needed: the reference log-probs are cached
    const result = await trainer.run();
    const [m1, m2] = result.metrics as unknown as Record<string, number>[];
    expect(Math.abs(m1!.loss! - Math.LN2)).toBeLessThan(1e-5);
    expect(Math.abs(m1!['rewards/margins']!)).toBeLessThan(1e-5);
    expect(m2!.loss).toBeLessThan(Math.LN2);
    expect(m2!['rewards/margins']).toBeGreaterThan(0);
    trainer.dispose();
    await restoreBase(lm);
  });
});

describe('DPO with gradient accumulation', () => {
  it('2 micro-batches of 1 pair equal one batch of 2: the loss is the mean over the pairs of the whole step', async () => {
    const { lm } = await fixtureModel();
    const train = await fixturePairs(2, 40);
    const start = await initAdapter(lm);
    const step = async (bs: number, accum: number) => {
      const s = settings({ stage: 'dpo', per_device_train_batch_size: bs, gradient_accumulation_steps: accum, max_steps: 1, learning_rate: 1e-12, dataset: 'dpo.json' });
      const trainer = Trainer.create({ model: lm.model, settings: s, train, padTokenId: lm.tokenizer.padTokenId ?? 0, startingAdapter: start });
      const result = await trainer.run();
      const grads = await trainer.gradients();
      trainer.dispose();
      return { m: result.metrics[0]! as unknown as Record<string, number>, grads };
    };
    const one = await step(2, 1);
    const two = await step(1, 2);
    expectRel('loss', two.m.loss!, one.m.loss!, 1e-5);
    expectRel('rewards/margins', two.m['rewards/margins']!, one.m['rewards/margins']!, 1e-4);
    expect(two.m.pairs).toBe(2);
    let worst = 0;
    for (const [name, g] of one.grads) {
      const h = two.grads.get(name)!;
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i]! - h[i]!) - 1e-4 * Math.abs(g[i]!));
    }
    expect(worst).toBeLessThan(1e-6);
  });
});

describe('a DPO run resumes', () => {
  it('3 steps straight equal 2 + stop + resume 1 (the reference log-probs are computed again, with the adapter off)', async () => {
    const { lm } = await fixtureModel();
    const train = await fixturePairs(4, 36);
    const s = settings({ stage: 'dpo', pref_ftx: 0.1, per_device_train_batch_size: 2, max_steps: 3, learning_rate: 1e-2, dataset: 'dpo.json', save_strategy: 'steps', save_steps: 100 });
    const start = await initAdapter(lm);
    const { straight, resumed } = await stopAndResume(lm, s, train, 2, { padTokenId: lm.tokenizer.padTokenId ?? 0, startingAdapter: start, checkpointData: true, resumedStore: true });
    expect(resumed.metrics).toHaveLength(3);
    resumed.metrics.forEach((m, i) => {
      const { elapsed_s: _e, tokens_per_second: _t, ...rest } = m;
      const { elapsed_s: _e2, tokens_per_second: _t2, ...want } = straight.metrics[i]!;
      expect(rest).toEqual(want);
    });
    for (const [name, w] of straight.weights) expect(resumed.weights.get(name), name).toEqual(w);
  });
});

describe('graft train --stage dpo', () => {
  it("runs on the fixture; metrics.jsonl's first step holds the reference loss and the DPO metrics", async () => {
    const out = join(scratch, 'cli');
    const r = await graft([
      'train',
      '--stage', 'dpo',
      '--model', FIXTURE,
      '--dataset', DPO_PATH,
      '--max_samples', '2',
      '--adapter_name_or_path', `${FIXTURE}/reference/init_adapter`,
      '--per_device_train_batch_size', '2',
      '--cutoff_len', '64',
      '--pref_beta', '0.1',
      '--learning_rate', '1e-3',
      '--max_steps', '2',
      '--shuffle', 'false',
      '--save_strategy', 'no',
      '--output_dir', out,
    ]);
    expect(r.code, r.graftStderr).toBe(0);
    expect(r.graftStderr).toMatch(/dpo \(sigmoid, beta 0\.1\) with lora .* 2 training pairs, 2 steps/);
    const metrics = lines(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).map((l) => JSON.parse(l) as Record<string, number>);
    expect(metrics.map((m) => m.step)).toEqual([1, 2]);
    expectRel('first-step loss', metrics[0]!.loss!, dpoRef.loss, 1e-4);
    for (const k of ['loss', 'grad_norm', 'learning_rate', 'tokens', 'pairs', 'rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected']) {
      expect(metrics[1], k).toHaveProperty([k]);
    }
    expect(metrics[1]!.loss).toBeLessThan(metrics[0]!.loss!);
    expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'))).toMatchObject({ r: 4, lora_alpha: 8 });
  });
});
