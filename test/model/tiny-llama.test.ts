// The model-level check that ties the kernels together: the tiny Llama of the fixtures, built from Graft's
// kernels, reproduces PyTorch's logits, loss and the gradient of every parameter.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { parseConfig, type ModelConfig } from '../../src/model/config';
import { CausalLM, uploadBatch, type Activations } from '../../src/model/transformer';
import { SafetensorsFile } from '../../src/model/safetensors';
import { expectClose } from '../harness/checkOp';
import { testContext } from '../helpers/gpu';
import { dLogitsOf, sftLoss } from '../helpers/sft-step';

const dir = new URL('../fixtures/tiny-llama/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, dir)));
const reference = JSON.parse(readFileSync(new URL('reference/reference.json', dir), 'utf8')) as {
  forward: { input_ids: number[][]; loss_mean_all_positions: number };
};

function rms(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s / a.length);
}

describe('tiny-llama built from Graft kernels matches PyTorch', () => {
  let ctx: GpuContext;
  let cfg: ModelConfig;
  let model: CausalLM;
  let acts: Activations;
  const ids = reference.forward.input_ids;
  const B = ids.length;
  const T = ids[0]!.length;

  beforeAll(async () => {
    ctx = await testContext();
    cfg = parseConfig(JSON.parse(new TextDecoder().decode(read('config.json'))));
    model = CausalLM.create(ctx, cfg, new SafetensorsFile(read('model.safetensors'), 'model.safetensors'));
    acts = model.forward(uploadBatch(ctx, ids));
  });

  it('logits equal reference/forward.safetensors (relative 1e-4)', async () => {
    const want = new SafetensorsFile(read('reference/forward.safetensors'), 'forward.safetensors').float32('logits');
    const got = await ctx.readF32(acts.logits);
    expect(got.length).toBe(B * T * cfg.vocabSize);
    // Relative 1e-4 of each logit, with a floor of 1e-4 of the logits' RMS for values near zero.
    expectClose('logits', got, want, { atol: 1e-4 * rms(want), rtol: 1e-4 });
  });

  it('the mean next-token loss equals the reference and every parameter gradient matches full_grads', async () => {
    // Labels: the next token; every position but the last of each row counts.
    const l = await sftLoss(ctx, acts, ids);
    expect(l.count).toBe(B * (T - 1));
    const wantLoss = reference.forward.loss_mean_all_positions;
    expect(Math.abs(l.loss - wantLoss) / wantLoss).toBeLessThan(1e-4);

    const dLogits = dLogitsOf(ctx, acts, l, cfg.vocabSize);
    const grads = model.createGradients('all');
    model.backward(acts, dLogits, grads);

    const ref = new SafetensorsFile(read('reference/full_grads.safetensors'), 'full_grads.safetensors');
    const checked: string[] = [];
    for (const [name, [g]] of grads.entries()) {
      const got = await ctx.readF32(g!);
      expectClose(`grad ${name}`, got, ref.float32(name), { atol: 1e-4, rtol: 1e-3 });
      checked.push(name);
    }
    expect(checked.sort()).toEqual(ref.names.sort());
  });
});
