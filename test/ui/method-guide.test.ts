// The Method screen's guide: every rule of recommendMethod, the memory fall-back, and the memory formula per method.
import { describe, expect, it } from 'vitest';
import { DEFAULT_ANSWERS, METHODS, methodMemory, recommendMethod, type GuideAnswers, type MemoryFigures } from '../../src/ui/method-guide';

const ask = (over: Partial<GuideAnswers>) => recommendMethod({ ...DEFAULT_ANSWERS, ...over });

// Round numbers: 100M parameters, 10 layers.
const MEM: MemoryFigures = { parameters: 100e6, layers: 10, inferenceBytes: 0.5e9, loraTrainBytes: 1e9, fullTrainBytes: 2.2e9 };
const GiB = 1024 ** 3;

describe('recommendMethod', () => {
  it('recommends retrieval when the facts change daily, whatever else is true', () => {
    const r = ask({ changesDaily: true, dataSize: 'many', domain: 'far' });
    expect(r).toMatchObject({ primary: 'rag', rule: 'changes-daily', stage: null, settings: {} });
    expect(r.alternatives).toEqual(['prompting']);
    expect(r.why.join(' ')).toMatch(/out of date/);
  });

  it('adds LoRA for the format when facts change daily but a strict format has labelled examples', () => {
    const r = ask({ changesDaily: true, strictFormat: true, labels: 'pairs', dataSize: 'hundreds' });
    expect(r.primary).toBe('rag');
    expect(r.alternatives).toEqual(['lora', 'prompting']);
    expect(r.why.join(' ')).toMatch(/combine retrieval/);
  });

  it('recommends prompting when there are no labels or no data', () => {
    for (const over of [{ labels: 'none' as const }, { dataSize: 'none' as const }]) {
      const r = ask(over);
      expect(r).toMatchObject({ primary: 'prompting', rule: 'no-labels', stage: null, alternatives: ['rag'] });
      expect(r.settings).toEqual({});
    }
  });

  it('recommends LoRA with DPO for preference pairs, and warns when there are few', () => {
    const r = ask({ labels: 'preferences', dataSize: 'hundreds' });
    expect(r).toMatchObject({ primary: 'lora', rule: 'preferences', stage: 'dpo' });
    expect(r.settings).toMatchObject({ finetuning_type: 'lora', stage: 'dpo' });
    expect(r.why.join(' ')).not.toMatch(/few hundred pairs/);
    expect(ask({ labels: 'preferences', dataSize: 'few' }).why.join(' ')).toMatch(/few hundred pairs/);
  });

  it('recommends prompt tuning for few examples and a strict format, prompting for few examples otherwise', () => {
    const strict = ask({ dataSize: 'few', strictFormat: true });
    expect(strict).toMatchObject({ primary: 'prompt-tuning', rule: 'few-strict', alternatives: ['prompting', 'lora'], stage: 'sft' });
    const loose = ask({ dataSize: 'few' });
    expect(loose).toMatchObject({ primary: 'prompting', rule: 'few', alternatives: ['prompt-tuning', 'lora'] });
    // "Use these settings" leads to a runnable prompt-tuning job (see the settings-form test).
    expect(strict.settings).toEqual({ finetuning_type: 'prompt', num_virtual_tokens: '20', prompt_tuning_init: 'random', learning_rate: '3e-2', stage: 'sft' });
  });

  it('recommends adapters for several tasks on one base', () => {
    const r = ask({ severalTasks: true, dataSize: 'many', domain: 'far' });
    expect(r).toMatchObject({ primary: 'adapter', rule: 'several-tasks', alternatives: ['lora'] });
    expect(r.settings).toEqual({ finetuning_type: 'adapter', adapter_placement: 'pfeiffer', reduction_factor: '16', adapter_non_linearity: 'relu', learning_rate: '1e-4', stage: 'sft' });
  });

  it('recommends full fine-tuning for much data far from the model', () => {
    const r = ask({ dataSize: 'many', domain: 'far' });
    expect(r).toMatchObject({ primary: 'full', rule: 'many-far', alternatives: ['lora', 'freeze'] });
    expect(r.settings).toEqual({ finetuning_type: 'full', learning_rate: '1e-5', stage: 'sft' });
  });

  it('falls back to LoRA with a higher rank when full fine-tuning does not fit the memory budget', () => {
    const fits = recommendMethod({ ...DEFAULT_ANSWERS, dataSize: 'many', domain: 'far' }, MEM, 4 * GiB);
    expect(fits.primary).toBe('full');
    const tight = recommendMethod({ ...DEFAULT_ANSWERS, dataSize: 'many', domain: 'far' }, MEM, 2e9);
    expect(tight).toMatchObject({ primary: 'lora', rule: 'many-far+memory' });
    expect(tight.alternatives[0]).toBe('full');
    expect(tight.settings).toMatchObject({ finetuning_type: 'lora', lora_rank: '32', lora_alpha: '64' });
    expect(tight.why.at(-1)).toMatch(/more than the 1\.9 GiB/);
  });

  it('recommends freeze tuning for much data close to the model', () => {
    const r = ask({ dataSize: 'many', domain: 'close' });
    expect(r).toMatchObject({ primary: 'freeze', rule: 'many-close', alternatives: ['lora', 'full'] });
    expect(r.settings).toMatchObject({ finetuning_type: 'freeze', freeze_trainable_layers: '2' });
  });

  it('recommends LoRA for hundreds of examples, with a higher rank for a far domain', () => {
    const r = ask({ dataSize: 'hundreds', domain: 'close' });
    expect(r).toMatchObject({ primary: 'lora', rule: 'lora', stage: 'sft' });
    expect(r.settings).toEqual({ finetuning_type: 'lora', learning_rate: '1e-4', stage: 'sft' });
    const far = ask({ dataSize: 'hundreds', domain: 'far' });
    expect(far).toMatchObject({ primary: 'lora', rule: 'lora-far' });
    expect(far.settings).toMatchObject({ lora_rank: '16', lora_alpha: '32' });
    // Many examples of a somewhat specialised domain land here too.
    expect(ask({ dataSize: 'many', domain: 'some' }).rule).toBe('lora');
    expect(ask({ strictFormat: true }).why.join(' ')).toMatch(/train_on_prompt off/);
  });

  it('lists every method once, primary first, with memory and fit when the figures are known', () => {
    const r = recommendMethod(DEFAULT_ANSWERS, MEM, 1.5e9);
    expect(r.options.map((o) => o.id)).toEqual(['lora', 'full', 'freeze', 'adapter', 'prompt-tuning', 'rag', 'prompting']);
    expect(new Set(r.options.map((o) => o.id)).size).toBe(Object.keys(METHODS).length);
    const by = Object.fromEntries(r.options.map((o) => [o.id, o]));
    expect(by.lora).toMatchObject({ memoryBytes: 1e9, fits: true });
    expect(by.full).toMatchObject({ memoryBytes: 2.2e9, fits: false });
    expect(ask({}).options.every((o) => o.memoryBytes === undefined && o.fits === undefined)).toBe(true);
  });
});

describe('methodMemory', () => {
  it('derives each method from the three estimates', () => {
    const W = 4 * MEM.parameters;
    const A = MEM.fullTrainBytes - 16 * MEM.parameters;
    expect(methodMemory('full', MEM)).toBe(MEM.fullTrainBytes);
    expect(methodMemory('lora', MEM)).toBe(MEM.loraTrainBytes);
    // W + A + 16·P·sites/(6·reduction_factor): 4e8 + 6e8 + 16e8/96.
    expect(methodMemory('adapter', MEM)).toBeCloseTo(1e9 + 16e8 / 96, 0);
    expect(methodMemory('adapter', MEM, { placement: 'houlsby', reductionFactor: 8 })).toBeCloseTo(1e9 + (16e8 * 2) / 48, 0);
    expect(methodMemory('freeze', MEM, 2)).toBeCloseTo(W + 12 * MEM.parameters * 0.2 + A);
    expect(methodMemory('freeze', MEM, -3)).toBeCloseTo(W + 12 * MEM.parameters * 0.3 + A);
    expect(methodMemory('freeze', MEM, 99)).toBeCloseTo(MEM.fullTrainBytes);
    // W + A·(T + n)/T: 20 virtual tokens on 512 by default; 10 on 100 → A·1.1.
    expect(methodMemory('prompt-tuning', MEM)).toBeCloseTo(4e8 + (6e8 * 532) / 512, 0);
    expect(methodMemory('prompt-tuning', MEM, { seqLen: 100, virtualTokens: 10 })).toBeCloseTo(4e8 + 6.6e8, 0);
    expect(W + A).toBe(1e9);
    expect(methodMemory('rag', MEM)).toBe(MEM.inferenceBytes);
    expect(methodMemory('prompting', MEM)).toBe(MEM.inferenceBytes);
    // Ordered as expected: generating < LoRA < prompt tuning ≈ < freeze < full.
    expect(methodMemory('prompting', MEM)).toBeLessThan(methodMemory('lora', MEM));
    expect(methodMemory('freeze', MEM)).toBeLessThan(methodMemory('full', MEM));
  });
});
