// A random model (test/helpers/random-model.ts) on this file's GPU context, and the padded batch the adapter
// tests run through it beside the float64 reference model.
import { CausalLM, uploadBatch } from '../../src/model/transformer';
import { referenceLogits, refWeights } from '../model-ref/transformer';
import { testContext } from './gpu';
import { makeRandomModel, randomIds, type RandomModel, type RandomModelSpec } from './random-model';
import { Rng } from './rng';

/** The model of `spec` on the GPU, with a generator seeded `seed` for what the test draws next. */
export async function randomLM(spec: RandomModelSpec, seed: number) {
  const ctx = await testContext();
  const m = makeRandomModel(spec);
  return { ctx, m, model: CausalLM.create(ctx, m.cfg, m.weights), rng: new Rng(seed) };
}

/**
 * Two random rows of 6 tokens, the second padded after 4, through the model's forward (with its adapter), and
 * the reference's logits for them with the same adapter (`adapter`: what referenceLogits takes besides the mask).
 */
export function paddedForward(lm: { ctx: Awaited<ReturnType<typeof testContext>>; m: RandomModel; model: CausalLM; rng: Rng }, adapter: Omit<Parameters<typeof referenceLogits>[3], 'attentionMask'>) {
  const { ctx, m, model, rng } = lm;
  const ids = randomIds(rng, 2, 6, m.cfg.vocabSize);
  const mask = [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]];
  const batch = uploadBatch(ctx, ids, mask);
  const acts = model.forward(batch);
  const w = refWeights(m.weights);
  return { ids, mask, batch, acts, w, logitsRef: () => referenceLogits(m.cfg, w, ids, { attentionMask: mask, ...adapter }) };
}
