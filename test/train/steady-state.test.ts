// A steady-state training step stays on the GPU: after the first steps have filled the buffer pool and the
// bind-group cache, a step records everything into one command buffer — the batch's ids, positions and loss
// targets go in as staged copies, not as writes that submit the work recorded before them — creates no GPU
// buffers and no bind groups, reads back one small tensor, and needs the same memory as the step before
// (LoRA, bottleneck adapters, prompt tuning and full fine-tuning).
import { describe, expect, it } from 'vitest';
import type { ContextStats } from '../../src/engine/context';
import { Trainer } from '../../src/train/trainer';
import { alpacaExamples, fixtureModel, initAdapter, settings } from './helpers';
import { f32Parts } from '../../src/model/params';

type Snapshot = ContextStats;

async function stepStats(finetuning: 'lora' | 'full' | 'adapter' | 'prompt', extra: Record<string, unknown> = {}): Promise<Snapshot[]> {
  const { lm } = await fixtureModel();
  const ctx = lm.model.ctx;
  const train = alpacaExamples(lm, 4);
  const trainer = Trainer.create({
    model: lm.model,
    settings: settings({ finetuning_type: finetuning, per_device_train_batch_size: 4, max_steps: 6, max_grad_norm: 1.0, ...extra }),
    train,
    padTokenId: 0,
    ...(finetuning === 'lora' ? { startingAdapter: await initAdapter(lm) } : {}),
  });
  const snapshots: Snapshot[] = [];
  // The peaks are per step: each window opens where the previous step's record was made.
  await ctx.sync();
  ctx.resetPeaks();
  try {
    await trainer.run({
      onStep: () => {
        snapshots.push({ ...ctx.stats });
        ctx.resetPeaks();
      },
    });
  } finally {
    trainer.dispose();
  }
  return snapshots;
}

function expectSteadyState(snapshots: Snapshot[], what: string): void {
  // Six steps: with overlapped steps (the default) the window between two records holds the recording of the
  // step after next, and the last step's window records nothing; the windows of steps 4 and 5 are full ones.
  expect(snapshots).toHaveLength(6);
  const delta = (k: keyof ContextStats, i: number) => snapshots[i]![k] - snapshots[i - 1]![k];
  for (const i of [3, 4]) {
    const step = `${what} step ${i + 1}`;
    expect(delta('buffersCreated', i), `buffers created in ${step}`).toBe(0);
    expect(delta('bindGroupsCreated', i), `bind groups created in ${step}`).toBe(0);
    expect(delta('readbacks', i), `readbacks in ${step}`).toBe(1);
    expect(delta('submits', i), `submits in ${step}`).toBe(1);
    expect(delta('stagedWrites', i), `batch uploads staged in ${step}`).toBeGreaterThanOrEqual(3);
    expect(delta('dispatches', i)).toBeGreaterThan(50);
    expect(delta('bytesAllocated', i), `GPU bytes allocated in ${step}`).toBe(0);
  }
  expect(delta('dispatches', 4), 'the same dispatches every step').toBe(delta('dispatches', 3));
  expect(snapshots[4]!.peakBytesInUse, 'the same peak memory every step').toBe(snapshots[3]!.peakBytesInUse);
  console.log(
    `${what} per step: ${delta('dispatches', 4)} dispatches, ${delta('submits', 4)} submit, ${delta('readbacks', 4)} readback, ` +
      `${delta('stagedWrites', 4)} staged writes, peak in use ${(snapshots[4]!.peakBytesInUse / 2 ** 20).toFixed(2)} MiB`,
  );
}

describe('steady-state training step', () => {
  it('LoRA: one submit, one readback, no buffer or bind-group creations per step after warm-up', async () => {
    expectSteadyState(await stepStats('lora'), 'LoRA');
  });

  it('bottleneck adapters (houlsby): the same', async () => {
    expectSteadyState(await stepStats('adapter', { adapter_placement: 'houlsby', reduction_factor: 8 }), 'bottleneck adapter');
  });

  it('prompt tuning: the same (the widened batch goes in as staged copies too)', async () => {
    expectSteadyState(await stepStats('prompt', { num_virtual_tokens: 8 }), 'prompt tuning');
  });

  it('full fine-tuning: the same', async () => {
    const { lm } = await fixtureModel();
    // Full fine-tuning updates the shared fixture's base weights: keep a copy and put it back afterwards.
    const saved = await Promise.all(lm.model.parameters().map(async (p) => ({ p, data: await Promise.all(f32Parts(p).map((t) => lm.model.ctx.readF32(t))) })));
    try {
      expectSteadyState(await stepStats('full'), 'full');
    } finally {
      for (const { p, data } of saved) f32Parts(p).forEach((t, i) => lm.model.ctx.write(t, data[i]!));
    }
  });
});
