// The Method screen's settings form: what it sends for each finetuning_type (only the visible fields) is a job
// src/train/settings.ts accepts with the method's own settings — the form's defaults and each "Use these
// settings" of the method guide lead to a runnable job — and hidden fields never make a job invalid.
import { describe, expect, it } from 'vitest';
import { parseSettingsWithNotes, SettingsError } from '../../src/train/settings';
import { METHODS } from '../../src/ui/method-guide';
import { dataApi } from '../../src/worker/data-api';
import { BROWSER_DEFAULTS, FIELD_GROUPS, settingsInput, withDefaults, type SettingsValues } from '../../src/ui/settings-form';

const parse = (values: SettingsValues) => parseSettingsWithNotes(settingsInput(values, 'graft/demo-tiny-llama', 'demo_qa.json'), 'the settings').settings;

describe('settings form', () => {
  it('offers the five methods', () => {
    const field = FIELD_GROUPS.flatMap((g) => g.fields).find((f) => f.key === 'finetuning_type')!;
    expect(field.options!.map((o) => o.value).sort()).toEqual(['adapter', 'freeze', 'full', 'lora', 'prompt']);
  });

  it('sends the bottleneck settings for adapter, and no LoRA or prompt ones', () => {
    const input = settingsInput({ ...BROWSER_DEFAULTS, finetuning_type: 'adapter', adapter_placement: 'houlsby', reduction_factor: '8', adapter_non_linearity: 'gelu' }, 'm', 'd');
    expect(Object.keys(input).filter((k) => k.startsWith('lora_') || k.includes('virtual') || k.startsWith('prompt_'))).toEqual([]);
    const s = parse({ ...BROWSER_DEFAULTS, finetuning_type: 'adapter', adapter_placement: 'houlsby', reduction_factor: '8', adapter_non_linearity: 'gelu' });
    expect([s.finetuning_type, s.adapter_placement, s.reduction_factor, s.adapter_non_linearity]).toEqual(['adapter', 'houlsby', 8, 'gelu']);
  });

  it('sends the prompt-tuning settings for prompt; the start text only with the text start', () => {
    const random = parse({ ...BROWSER_DEFAULTS, finetuning_type: 'prompt', num_virtual_tokens: '8', prompt_tuning_init_text: 'left over' });
    expect([random.finetuning_type, random.num_virtual_tokens, random.prompt_tuning_init, random.prompt_tuning_init_text]).toEqual(['prompt', 8, 'random', undefined]);
    const text = parse({ ...BROWSER_DEFAULTS, finetuning_type: 'prompt', prompt_tuning_init: 'text', prompt_tuning_init_text: 'Answer briefly:' });
    expect([text.num_virtual_tokens, text.prompt_tuning_init, text.prompt_tuning_init_text]).toEqual([20, 'text', 'Answer briefly:']);
    // The text start without a text: the settings say what is missing, at the field.
    let problem: unknown;
    try {
      parse({ ...BROWSER_DEFAULTS, finetuning_type: 'prompt', prompt_tuning_init: 'text', prompt_tuning_init_text: '' });
    } catch (e) {
      problem = e;
    }
    expect(problem).toBeInstanceOf(SettingsError);
    expect((problem as SettingsError).problems.map((p) => p.key)).toContain('prompt_tuning_init_text');
  });

  it('turns every method the guide can apply into a valid job of that method', () => {
    for (const [id, m] of Object.entries(METHODS)) {
      if (!m.settings) continue;
      const values = withDefaults(Object.fromEntries(Object.entries(m.settings).map(([k, v]) => [k, typeof v === 'number' ? String(v) : v])));
      const s = parse(values);
      expect(s.finetuning_type, id).toBe(m.settings.finetuning_type);
      expect(s.learning_rate, id).toBe(Number(m.settings.learning_rate));
    }
  });

  it('says in the job YAML where adapter and prompt jobs run (Graft, not LLaMA-Factory)', async () => {
    const yaml = async (values: SettingsValues) => {
      const c = await dataApi.checkSettings(settingsInput(values, 'graft/demo-tiny-llama', 'demo_qa.json'));
      expect(c.ok).toBe(true);
      return c.yaml.split('\n')[0];
    };
    expect(await yaml(BROWSER_DEFAULTS)).toBe('# Written by Graft. Runs in Graft and in LLaMA-Factory: llamafactory-cli train train.yaml');
    expect(await yaml({ ...BROWSER_DEFAULTS, finetuning_type: 'adapter' })).toMatch(/^# Written by Graft\. Runs in Graft .*not in LLaMA-Factory, which has no bottleneck adapters\.$/);
    expect(await yaml({ ...BROWSER_DEFAULTS, finetuning_type: 'prompt' })).toMatch(/not in LLaMA-Factory, which has no prompt tuning\.$/);
  });

  it('refuses a reward model with bottleneck adapters, at the finetuning_type field', async () => {
    const c = await dataApi.checkSettings(settingsInput({ ...BROWSER_DEFAULTS, stage: 'rm', finetuning_type: 'adapter' }, 'graft/demo-tiny-llama', 'pairs.json'));
    expect(c.ok).toBe(false);
    expect(c.problems).toEqual([{ key: 'finetuning_type', message: expect.stringMatching(/^"adapter" cannot train a reward model \(/) }]);
    expect((await dataApi.checkSettings(settingsInput({ ...BROWSER_DEFAULTS, stage: 'rm', finetuning_type: 'lora' }, 'graft/demo-tiny-llama', 'pairs.json'))).ok).toBe(true);
  });
});
