// How the app shows and picks the frozen base's precision: the Model screen's figures per precision (through the
// worker's estimateModelMemory, with the built-in list's BF16 models held 16-bit by default), the method
// guide's memory at the job's quantization_bit, and the settings form's "Frozen base weights" field.
import { describe, expect, it } from 'vitest';
import { methodMemory } from '../../src/ui/method-guide';
import { memoryFigures, precisionOfSetting, type ModelFigures } from '../../src/ui/model-figures';
import { builtInModel } from '../../src/ui/model-list';
import { ALL_FIELDS, BROWSER_DEFAULTS, settingsInput } from '../../src/ui/settings-form';
import { dataApi } from '../../src/worker/data-api';

const GiB = 1024 ** 3;

async function figures(repo: string): Promise<ModelFigures> {
  const m = builtInModel(repo)!;
  const estimates = await dataApi.estimateModelMemory(m.parameters, m.shape, 512, 16, m.dtype === 'BF16' ? '16-bit' : 'f32');
  return { repo, revision: 'main', from: 'list', architecture: m.architecture, supported: true, parameters: m.parameters, layers: m.shape.layers, downloadBytes: m.downloadBytes, largestTensorBytes: m.largestTensor.bytes, estimates };
}

describe('the frozen base precision in the app', () => {
  it('a BF16 model is held 16-bit by default; 8-bit and 4-bit need less; the guide reads the job\'s choice', async () => {
    const f = await figures('meta-llama/Llama-3.2-1B-Instruct');
    const e = f.estimates;
    expect(e.defaultPrecision).toBe('16-bit');
    expect(e.loraTrainByPrecision.f32).toBeGreaterThan(e.loraTrainByPrecision['16-bit']);
    expect(e.loraTrainByPrecision['16-bit']).toBeGreaterThan(e.loraTrainByPrecision['8-bit']);
    expect(e.loraTrainByPrecision['8-bit']).toBeGreaterThan(e.loraTrainByPrecision['4-bit']);
    expect(e.inferenceByPrecision['4-bit']).toBeLessThan(e.inferenceByPrecision['16-bit']);
    expect(precisionOfSetting('', e.defaultPrecision)).toBe('16-bit');
    expect(precisionOfSetting('4', e.defaultPrecision)).toBe('4-bit');
    expect(precisionOfSetting(' 8 ', e.defaultPrecision)).toBe('8-bit');
    const asStored = memoryFigures(f);
    const four = memoryFigures(f, '4-bit');
    expect(methodMemory('lora', asStored)).toBe(e.loraTrainByPrecision['16-bit']);
    expect(methodMemory('lora', four)).toBe(e.loraTrainByPrecision['4-bit']);
    // Bottleneck adapters and prompt tuning keep the base frozen too: the same saving applies.
    expect(methodMemory('adapter', four)).toBeLessThan(methodMemory('adapter', asStored));
    expect(methodMemory('prompt-tuning', four)).toBeLessThan(methodMemory('prompt-tuning', asStored));
    // Full fine-tuning trains every weight in f32 whatever the setting.
    expect(methodMemory('full', four)).toBe(methodMemory('full', asStored));
    // Llama-3.2-1B-Instruct with QLoRA, r 16, 512 tokens (no checkpointing): under 3 GiB.
    expect(e.loraTrainByPrecision['4-bit']).toBeLessThan(3 * GiB);
  });

  it('the settings form offers the frozen base for lora, adapter and prompt only; "as stored" sends nothing', () => {
    const field = ALL_FIELDS.find((f) => f.key === 'quantization_bit')!;
    for (const m of ['lora', 'adapter', 'prompt']) expect(field.when!({ ...BROWSER_DEFAULTS, finetuning_type: m })).toBe(true);
    for (const m of ['full', 'freeze']) expect(field.when!({ ...BROWSER_DEFAULTS, finetuning_type: m })).toBe(false);
    expect(settingsInput(BROWSER_DEFAULTS, 'm', 'd')).not.toHaveProperty('quantization_bit');
    const q = settingsInput({ ...BROWSER_DEFAULTS, quantization_bit: '4' }, 'm', 'd');
    expect(q).toMatchObject({ quantization_bit: '4', quantization_type: 'nf4', double_quantization: true });
    expect(settingsInput({ ...BROWSER_DEFAULTS, finetuning_type: 'full', quantization_bit: '4' }, 'm', 'd')).not.toHaveProperty('quantization_bit');
  });
});
