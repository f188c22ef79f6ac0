// The Model screen's static list, the fit verdict and the settings form's helpers.
import { describe, expect, it } from 'vitest';
import { BUILT_IN_MODELS, DEFAULT_BUDGET_BYTES, fitVerdict, formatDownload, formatMemory, formatParameters, memoryBudget } from '../../src/ui/model-list';
import { ALL_FIELDS, BROWSER_DEFAULTS, problemsByField, settingsInput, withDefaults } from '../../src/ui/settings-form';
import { dataApi } from '../../src/worker/data-api';

const GiB = 1024 ** 3;

/** Parameters from the config numbers, as the comment in model-list.ts says they were counted. */
function count(m: (typeof BUILT_IN_MODELS)[number]): number {
  const { layers: L, hidden: H, intermediate: I, heads, kvHeads, headDim, vocab: V, gatedMlp } = m.shape;
  const q = heads * headDim;
  const kv = kvHeads * headDim;
  if (!gatedMlp) {
    // GPT-2: c_attn, c_proj, c_fc, mlp c_proj with biases, two layer norms (weight + bias); wte, wpe (1024), ln_f.
    const layer = H * 3 * H + 3 * H + H * H + H + H * I + I + I * H + H + 4 * H;
    return V * H + 1024 * H + L * layer + 2 * H;
  }
  const bias = m.architecture === 'Qwen2ForCausalLM' ? q + 2 * kv : 0;
  const norms = (m.shape.sandwichNorms ? 4 : 2) * H + (m.shape.qkNorm ? 2 * headDim : 0); // Gemma 3: four; Qwen3, Gemma 3: q/k norms
  const layer = H * q + 2 * H * kv + q * H + 3 * H * I + norms + bias;
  return V * H + L * layer + H; // tied embeddings, final norm
}

describe('the built-in model list', () => {
  it('has the browser-suited models, smallest first, with parameters that follow from their config numbers', () => {
    expect(BUILT_IN_MODELS.map((m) => m.repo)).toEqual([
      'HuggingFaceTB/SmolLM2-135M-Instruct',
      'HuggingFaceTB/SmolLM2-360M-Instruct',
      'Qwen/Qwen2.5-0.5B-Instruct',
      'google/gemma-3-270m-it',
      'Qwen/Qwen3-0.6B',
      'google/gemma-3-1b-it',
      'meta-llama/Llama-3.2-1B-Instruct',
      'Qwen/Qwen2.5-1.5B-Instruct',
      'openai-community/gpt2',
    ]);
    // The parameter counts published with the models (their model cards and hub listings).
    const published: Record<string, number> = {
      'google/gemma-3-270m-it': 268_098_176,
      'google/gemma-3-1b-it': 999_885_952,
      'meta-llama/Llama-3.2-1B-Instruct': 1_235_814_400,
      'Qwen/Qwen2.5-1.5B-Instruct': 1_543_714_304,
    };
    for (const [repo, n] of Object.entries(published)) expect(BUILT_IN_MODELS.find((m) => m.repo === repo)!.parameters, repo).toBe(n);
    for (const m of BUILT_IN_MODELS) {
      expect(count(m), m.repo).toBe(m.parameters);
      // The download is the weights as stored (2 or 4 bytes a parameter) plus a few MB of tokenizer.
      // (GPT-2's file also stores each layer's causal mask, attn.bias: 1024 × 1024 floats, 12 of them.)
      const weights = m.parameters * (m.dtype === 'F32' ? 4 : 2) + (m.shape.gatedMlp ? 0 : 12 * 4 * 1024 * 1024);
      expect(m.downloadBytes, m.repo).toBeGreaterThan(weights);
      // Gemma 3's tokenizer.json is about 33 MB (its 262k-token vocabulary).
      expect(m.downloadBytes - weights, m.repo).toBeLessThan(m.architecture === 'Gemma3ForCausalLM' ? 40e6 : 12e6);
      expect(m.largestTensor.bytes).toBe(4 * m.shape.hidden * m.shape.intermediate);
    }
  });

  it('estimates memory through the worker API the same way as src/model/info.ts', async () => {
    const smol = BUILT_IN_MODELS[0]!;
    const e = await dataApi.estimateModelMemory(smol.parameters, smol.shape, 512, 8);
    expect(e.loraTrainBytes).toBeGreaterThan(4 * smol.parameters);
    expect(e.fullTrainBytes).toBeGreaterThan(16 * smol.parameters);
    expect(e.inferenceBytes).toBeLessThan(e.loraTrainBytes);
    const longer = await dataApi.estimateModelMemory(smol.parameters, smol.shape, 1024, 8);
    expect(longer.loraTrainBytes).toBeGreaterThan(e.loraTrainBytes);
  });
});

describe('fit', () => {
  const adapter = { limits: { maxBufferSize: 2 * GiB, maxStorageBufferBindingSize: 128 * 1024 ** 2 } } as const;

  it('budgets half the reported device memory, at least 2 GiB, 4 GiB when unknown', () => {
    expect(memoryBudget(undefined)).toBe(DEFAULT_BUDGET_BYTES);
    expect(memoryBudget(8)).toBe(4 * GiB);
    expect(memoryBudget(2)).toBe(2 * GiB);
    expect(memoryBudget(0)).toBe(DEFAULT_BUDGET_BYTES);
  });

  it('will not fit when a weight is larger than one binding; may not fit above the budget; fits otherwise', () => {
    expect(fitVerdict({ needBytes: GiB, largestTensorBytes: 200 * 1024 ** 2, adapter, budgetBytes: 4 * GiB })).toMatchObject({ level: 'no', label: 'will not fit' });
    expect(fitVerdict({ needBytes: GiB, largestTensorBytes: 200 * 1024 ** 2, adapter, budgetBytes: 4 * GiB }).reason).toMatch(/200 MiB.*128 MiB/);
    expect(fitVerdict({ needBytes: 5 * GiB, largestTensorBytes: 1e6, adapter, budgetBytes: 4 * GiB })).toMatchObject({ level: 'tight', label: 'may not fit' });
    expect(fitVerdict({ needBytes: 3 * GiB, largestTensorBytes: 1e6, adapter, budgetBytes: 4 * GiB })).toMatchObject({ level: 'fits', label: 'fits' });
    // Without an adapter only the budget counts.
    expect(fitVerdict({ needBytes: 3 * GiB, largestTensorBytes: 1e12, adapter: undefined, budgetBytes: 4 * GiB }).level).toBe('fits');
  });

  it('formats sizes as people read them', () => {
    expect(formatParameters(134_515_008)).toBe('135M');
    expect(formatParameters(1.24e9)).toBe('1.2B');
    expect(formatDownload(271.2e6)).toBe('271 MB');
    expect(formatDownload(995.2e6)).toBe('995 MB');
    expect(formatDownload(1.2e9)).toBe('1.2 GB');
    expect(formatMemory(1.23 * GiB)).toBe('1.2 GiB');
    expect(formatMemory(0.99 * GiB)).toBe('1.0 GiB');
    expect(formatMemory(300 * 1024 ** 2)).toBe('300 MiB');
  });
});

describe('the settings form', () => {
  it('has a field, a default and a help line for each setting, under LLaMA-Factory names the parser accepts', async () => {
    for (const f of ALL_FIELDS) {
      expect(BROWSER_DEFAULTS[f.key], f.key).toBeDefined();
      expect(f.help.length, f.key).toBeGreaterThan(10);
    }
    const check = await dataApi.checkSettings(settingsInput(BROWSER_DEFAULTS, 'm/x', 'd.json'));
    expect(check.problems).toEqual([]);
    expect(check.settings).toMatchObject({ per_device_train_batch_size: 2, cutoff_len: 512, lora_rank: 8, lora_alpha: 16, finetuning_type: 'lora' });
  });

  it('sends only the fields of the chosen method, and sorts problems by field', () => {
    const full = settingsInput({ ...BROWSER_DEFAULTS, finetuning_type: 'full', use_rslora: true }, 'm/x', undefined);
    expect(full).not.toHaveProperty('lora_rank');
    expect(full).not.toHaveProperty('use_rslora');
    expect(full).not.toHaveProperty('freeze_trainable_layers');
    expect(full).not.toHaveProperty('dataset');
    expect(settingsInput({ ...BROWSER_DEFAULTS, finetuning_type: 'freeze' }, 'm', 'd')).toHaveProperty('freeze_trainable_layers', '2');
    expect(problemsByField([{ key: 'learning_rate', message: 'must be a number' }, { key: 'dataset', message: 'is missing' }, { message: 'bad file' }])).toEqual({
      learning_rate: ['must be a number'],
      '': ['dataset is missing', 'bad file'],
    });
    expect(withDefaults({ cutoff_len: '256', nonsense: 'x' } as never)).toEqual({ ...BROWSER_DEFAULTS, cutoff_len: '256' });
  });
});
