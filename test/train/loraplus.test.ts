// LoRA+ (loraplus_lr_ratio): its parameter groups, its setting's rules, and the exported LLaMA-Factory train.yaml.
// Its trajectory against PyTorch is in trajectory.test.ts (which has the fixture model loaded anyway).
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { exportLlamaFactoryJob } from '../../src/export/llamafactory-job';
import { loraPlusLrScale } from '../../src/train/methods';
import { parseJobYaml, parseSettingsWithNotes } from '../../src/train/settings';
import { BROWSER_DEFAULTS, settingsInput } from '../../src/ui/settings-form';
import { settings } from './helpers';

const RECORDS = [{ messages: [{ role: 'user' as const, content: 'a' }, { role: 'assistant' as const, content: 'b' }] }];
describe('LoRA+ (loraplus_lr_ratio)', () => {
  it('groups as LLaMA-Factory: lora_B and 1-D parameters × ratio, lora_A and the rest × 1', () => {
    expect(loraPlusLrScale('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', [64, 4], 16)).toBe(16);
    expect(loraPlusLrScale('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', [4, 64], 16)).toBe(1);
    expect(loraPlusLrScale('v_head.summary.bias', [1], 16)).toBe(16);
    expect(loraPlusLrScale('score.weight', [1, 64], 16)).toBe(1);
  });

  it('is LoRA\'s only, must be > 0, and loraplus_lr_embedding is accepted with a note', () => {
    const base = { model_name_or_path: 'm', dataset: 'd' };
    const problems = (input: Record<string, unknown>) => {
      try {
        parseSettingsWithNotes(input, 'job');
        return '';
      } catch (e) {
        return String(e);
      }
    };
    expect(problems({ ...base, finetuning_type: 'full', loraplus_lr_ratio: 16 })).toMatch(/loraplus_lr_ratio: is only valid with finetuning_type "lora"/);
    expect(problems({ ...base, loraplus_lr_ratio: 0 })).toMatch(/loraplus_lr_ratio: must be greater than 0/);
    const { settings: s, notes } = parseSettingsWithNotes({ ...base, loraplus_lr_ratio: '8', loraplus_lr_embedding: 1e-6 }, 'job');
    expect(s.loraplus_lr_ratio).toBe(8);
    expect(notes.join('\n')).toMatch(/loraplus_lr_embedding: .*linear layers only/);
    expect(parseSettingsWithNotes({ ...base, loraplus_lr_ratio: null }, 'job').settings.loraplus_lr_ratio).toBeUndefined();
  });

  it('the LLaMA-Factory job keeps loraplus_lr_ratio (as a float) and reads back to the same setting', () => {
    const s = settings({ loraplus_lr_ratio: 16 });
    const job = exportLlamaFactoryJob({ settings: s, datasetName: 'data.json', records: RECORDS, format: 'alpaca' });
    const yaml = new TextDecoder().decode(job.files.get('train.yaml')!);
    expect(yaml).toMatch(/^loraplus_lr_ratio: 16\.0$/m);
    expect(parseYaml(yaml).loraplus_lr_ratio).toBe(16);
    expect(parseJobYaml(yaml, 'train.yaml').settings.loraplus_lr_ratio).toBe(16);
    expect(settings({}).loraplus_lr_ratio).toBeUndefined();
    const plain = new TextDecoder().decode(exportLlamaFactoryJob({ settings: settings({}), datasetName: 'data.json', records: RECORDS, format: 'alpaca' }).files.get('train.yaml')!);
    expect(plain).not.toMatch(/loraplus/);
  });

  it('the Method screen sends it only when chosen, and only for LoRA', () => {
    expect(settingsInput(BROWSER_DEFAULTS, 'm', 'd')).not.toHaveProperty('loraplus_lr_ratio');
    const input = settingsInput({ ...BROWSER_DEFAULTS, loraplus_lr_ratio: '16' }, 'm', 'd');
    expect(parseSettingsWithNotes(input, 'the form').settings.loraplus_lr_ratio).toBe(16);
    expect(settingsInput({ ...BROWSER_DEFAULTS, finetuning_type: 'full', loraplus_lr_ratio: '16' }, 'm', 'd')).not.toHaveProperty('loraplus_lr_ratio');
  });
});
