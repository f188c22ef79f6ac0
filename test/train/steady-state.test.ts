// A steady-state training step stays on the GPU: after the first steps have filled the buffer pool and the
// bind-group cache, a step creates no GPU buffers and no bind groups, and reads back one small tensor.
import { describe, expect, it } from 'vitest';
import type { ContextStats } from '../../src/engine/context';
import { Trainer } from '../../src/train/trainer';
import { alpacaExamples, fixtureModel, initAdapter, settings } from './helpers';

describe('steady-state training step', () => {
  it('LoRA: no buffer or bind-group creations and one readback per step after warm-up', async () => {
    const { lm } = await fixtureModel();
    const ctx = lm.model.ctx;
    const train = alpacaExamples(lm, 4);
    const trainer = Trainer.create({
      model: lm.model,
      settings: settings({ per_device_train_batch_size: 4, max_steps: 5, max_grad_norm: 1.0 }),
      train,
      padTokenId: 0,
      startingAdapter: await initAdapter(lm),
    });
    const snapshots: ContextStats[] = [];
    await trainer.run({ onStep: () => void snapshots.push({ ...ctx.stats }) });
    trainer.dispose();
    expect(snapshots).toHaveLength(5);
    const delta = (k: keyof ContextStats, i: number) => snapshots[i]![k] - snapshots[i - 1]![k];
    for (const i of [3, 4]) {
      expect(delta('buffersCreated', i), `buffers created in step ${i + 1}`).toBe(0);
      expect(delta('bindGroupsCreated', i), `bind groups created in step ${i + 1}`).toBe(0);
      expect(delta('readbacks', i), `readbacks in step ${i + 1}`).toBe(1);
      expect(delta('dispatches', i)).toBeGreaterThan(50);
    }
    // Submits per step are reported, not asserted: uploads of a batch's ids flush recorded work first.
    console.log(`per step: ${delta('dispatches', 4)} dispatches, ${delta('submits', 4)} submits, ${delta('readbacks', 4)} readback`);
  });
});
