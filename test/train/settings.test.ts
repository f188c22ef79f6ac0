import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { datasetNames, parseJobYaml, parseSettings, parseSettingsWithNotes, settingsWarnings } from '../../src/train/settings';
import { SettingsError } from '../../src/train/settings-error';
import { SETTINGS_KEYS } from '../../src/train/settings-spec';
import { settingsToYaml, yamlScalar } from '../../src/train/settings-yaml';

const base = { model_name_or_path: 'HuggingFaceTB/SmolLM2-135M-Instruct', dataset: 'data/sft.json' };

function problems(input: Record<string, unknown>): string[] {
  try {
    parseSettings(input, 'job');
  } catch (e) {
    expect(e).toBeInstanceOf(SettingsError);
    return (e as SettingsError).problems.map((p) => `${p.key ?? ''}: ${p.message}`);
  }
  throw new Error('expected a SettingsError');
}

describe('parseSettings: defaults', () => {
  it("fills in LLaMA-Factory's and transformers' defaults", () => {
    const s = parseSettings(base, 'job');
    expect(s).toEqual({
      model_name_or_path: base.model_name_or_path,
      model_revision: 'main',
      stage: 'sft',
      finetuning_type: 'lora',
      lora_rank: 8,
      lora_alpha: 16,
      lora_dropout: 0,
      lora_target: ['all'],
      use_rslora: false,
      freeze_trainable_layers: 2,
      freeze_trainable_modules: ['all'],
      adapter_placement: 'pfeiffer',
      reduction_factor: 16,
      adapter_non_linearity: 'relu',
      num_virtual_tokens: 20,
      prompt_tuning_init: 'random',
      pref_beta: 0.1,
      pref_loss: 'sigmoid',
      pref_ftx: 0,
      dataset: 'data/sft.json',
      dataset_dir: 'data',
      cutoff_len: 2048,
      train_on_prompt: false,
      mask_history: false,
      packing: false,
      val_size: 0,
      disable_shuffling: false,
      task_weighting: 'static',
      dwa_temperature: 2,
      dwa_window: 10,
      task_sampling: 'proportional',
      task_template: '{task}: {input}',
      learning_rate: 5e-5,
      lr_scheduler_type: 'linear',
      warmup_steps: 0,
      warmup_ratio: 0,
      per_device_train_batch_size: 8,
      gradient_accumulation_steps: 1,
      max_grad_norm: 1,
      num_train_epochs: 3,
      max_steps: -1,
      weight_decay: 0,
      adam_beta1: 0.9,
      adam_beta2: 0.999,
      adam_epsilon: 1e-8,
      seed: 42,
      gradient_checkpointing: false,
      quantization_type: 'nf4',
      double_quantization: true,
      quantization_method: 'bnb',
      eval_strategy: 'no',
      per_device_eval_batch_size: 8,
      do_predict: false,
      predict_with_generate: false,
      max_new_tokens: 1024,
      do_sample: true,
      temperature: 0.95,
      top_p: 0.7,
      top_k: 50,
      repetition_penalty: 1.0,
      output_dir: 'trainer_output',
      overwrite_output_dir: false,
      resume_allow_changes: false,
      logging_steps: 500,
      save_strategy: 'steps',
      save_steps: 500,
    });
  });

  it('lora_alpha defaults to 2 · lora_rank; an explicit alpha wins', () => {
    expect(parseSettings({ ...base, lora_rank: 16 }, 'j').lora_alpha).toBe(32);
    expect(parseSettings({ ...base, lora_rank: 16, lora_alpha: 8 }, 'j').lora_alpha).toBe(8);
  });

  it('null means the default, as in LLaMA-Factory files (resume_from_checkpoint: null)', () => {
    const s = parseSettings({ ...base, resume_from_checkpoint: null, lora_rank: null }, 'j');
    expect(s.resume_from_checkpoint).toBeUndefined();
    expect(s.lora_rank).toBe(8);
  });
});

describe('parseSettings: values from command-line strings', () => {
  it('converts numbers, booleans and comma lists', () => {
    const s = parseSettings(
      { ...base, learning_rate: '1e-3', lora_rank: '4', use_rslora: 'true', packing: 'False', num_train_epochs: '2.5', lora_target: 'q_proj, v_proj', max_grad_norm: '0' },
      'the command line',
    );
    expect(s.learning_rate).toBe(1e-3);
    expect(s.lora_rank).toBe(4);
    expect(s.use_rslora).toBe(true);
    expect(s.packing).toBe(false);
    expect(s.num_train_epochs).toBe(2.5);
    expect(s.lora_target).toEqual(['q_proj', 'v_proj']);
    expect(s.max_grad_norm).toBe(0);
  });

  it('takes lists for module names', () => {
    expect(parseSettings({ ...base, lora_target: ['q_proj', 'k_proj'] }, 'j').lora_target).toEqual(['q_proj', 'k_proj']);
    expect(parseSettings({ ...base, finetuning_type: 'freeze', freeze_trainable_modules: 'mlp,self_attn', freeze_extra_modules: 'embed_tokens' }, 'j')).toMatchObject({
      freeze_trainable_modules: ['mlp', 'self_attn'],
      freeze_extra_modules: ['embed_tokens'],
    });
  });
});

describe('parseSettings: types and ranges', () => {
  it('reports every bad value at once, naming the key', () => {
    const p = problems({ ...base, lora_rank: 0, learning_rate: 'fast', lora_dropout: 1, per_device_train_batch_size: 2.5, use_rslora: 'maybe' });
    expect(p).toEqual([
      'lora_rank: must be at least 1, not 0',
      'learning_rate: must be a number, not "fast"',
      'lora_dropout: must be less than 1, not 1',
      'per_device_train_batch_size: must be a whole number, not 2.5',
      'use_rslora: must be true or false, not "maybe"',
    ]);
  });

  it('checks enumerations and says what is available', () => {
    expect(problems({ ...base, lr_scheduler_type: 'polynomial' })[0]).toMatch(/"polynomial" schedule is not available in Graft; use one of "constant", "constant_with_warmup", "linear", "cosine"/);
    expect(problems({ ...base, lr_scheduler_type: 'wavy' })[0]).toMatch(/must be one of/);
    expect(problems({ ...base, stage: 'ppo' })[0]).toMatch(/"ppo" training is not available/);
    expect(problems({ ...base, finetuning_type: 'oft' })[0]).toMatch(/OFT is not available/);
    expect(parseSettings({ ...base, stage: 'dpo' }, 'j').stage).toBe('dpo');
    expect(parseSettings({ ...base, stage: 'rm' }, 'j').stage).toBe('rm');
  });

  it('max_steps: -1 or positive; freeze_trainable_layers: not 0; val_size: fraction or count', () => {
    expect(problems({ ...base, max_steps: 0 })[0]).toMatch(/max_steps: must be a positive number of steps, or -1/);
    expect(problems({ ...base, freeze_trainable_layers: 0 })[0]).toMatch(/must not be 0/);
    expect(parseSettings({ ...base, freeze_trainable_layers: -3 }, 'j').freeze_trainable_layers).toBe(-3);
    expect(problems({ ...base, val_size: 1.5 })[0]).toMatch(/fraction in \[0, 1\) or a whole number/);
    expect(parseSettings({ ...base, val_size: 0.1 }, 'j').val_size).toBe(0.1);
    expect(parseSettings({ ...base, val_size: 20 }, 'j').val_size).toBe(20);
  });

  it('requires the model and the dataset', () => {
    expect(problems({})).toEqual([
      expect.stringMatching(/^model_name_or_path: is missing/),
      expect.stringMatching(/^dataset: is missing/),
    ]);
  });

  it('applies LLaMA-Factory rules across keys', () => {
    expect(problems({ ...base, finetuning_type: 'full', use_rslora: true })[0]).toMatch(/use_rslora: is only valid with finetuning_type "lora"/);
    expect(problems({ ...base, finetuning_type: 'freeze', adapter_name_or_path: 'a/b' })[0]).toMatch(/adapter_name_or_path: is only valid/);
    expect(problems({ ...base, train_on_prompt: true, mask_history: true })[0]).toMatch(/mask_history: cannot be combined with train_on_prompt/);
    expect(problems({ ...base, adapter_name_or_path: 'a,b' })[0]).toMatch(/one adapter/);
    expect(problems({ ...base, stage: 'dpo', dataset: 'alpaca_en,identity' })[0]).toMatch(/dataset: stage "dpo" trains on one dataset at a time/);
  });
});

describe('parseSettings: keys Graft does not honour are never dropped in silence', () => {
  it('refuses unknown keys with a did-you-mean for near misses', () => {
    expect(problems({ ...base, lora_rnak: 8 })).toEqual(['lora_rnak: unknown setting; did you mean "lora_rank"? (Graft reads LLaMA-Factory\'s argument names)']);
    expect(problems({ ...base, learning_rte: 1e-4 })[0]).toMatch(/did you mean "learning_rate"/);
    expect(problems({ ...base, lr: 1e-4 })[0]).toMatch(/did you mean "learning_rate"/);
    expect(problems({ ...base, target_modules: 'q_proj' })[0]).toMatch(/did you mean "lora_target"/);
    expect(problems({ ...base, completely_different: 1 })).toEqual(["completely_different: unknown setting (Graft reads LLaMA-Factory's argument names)"]);
  });

  it('refuses LLaMA-Factory keys it cannot honour, saying what Graft does instead', () => {
    expect(problems({ ...base, deepspeed: 'examples/deepspeed/ds_z3_config.json' })[0]).toMatch(/^deepspeed: Graft trains on one GPU in one process/);
    expect(problems({ ...base, bf16: true })[0]).toMatch(/^bf16: Graft computes in float32 on WebGPU.*set it to false/);
    expect(problems({ ...base, fp16: 'true' })[0]).toMatch(/^fp16: Graft computes in float32/);
    expect(problems({ ...base, flash_attn: 'fa2' })[0]).toMatch(/^flash_attn: Graft uses its own WebGPU attention kernel/);
    expect(problems({ ...base, use_dora: true })[0]).toMatch(/DoRA is not available/);
    expect(problems({ ...base, optim: 'adafactor' })[0]).toMatch(/AdamW/);
    expect(problems({ ...base, do_train: false })[0]).toMatch(/do_train/);
    expect(problems({ ...base, hf_hub_token: 'hf_xxx' })[0]).toMatch(/Do not put tokens in job files/);
  });

  it('quantization (QLoRA): bits 4 or 8, nf4/fp4, double quantization on by default, bnb; never with full or freeze', () => {
    const q = parseSettings({ ...base, quantization_bit: 4 }, 'j');
    expect([q.quantization_bit, q.quantization_type, q.double_quantization, q.quantization_method]).toEqual([4, 'nf4', true, 'bnb']);
    expect(parseSettings({ ...base, quantization_bit: '8', quantization_type: 'fp4' }, 'j').quantization_bit).toBe(8);
    expect(parseSettings(base, 'j').quantization_bit).toBeUndefined();
    expect(problems({ ...base, quantization_bit: 3 })[0]).toMatch(/^quantization_bit: must be 4 or 8: 3-bit quantization is HQQ's or EETQ's/);
    expect(problems({ ...base, quantization_bit: 16 })[0]).toMatch(/^quantization_bit: must be 4 \(bitsandbytes' NF4 or FP4\) or 8/);
    expect(problems({ ...base, quantization_bit: 4, finetuning_type: 'full' })[0]).toMatch(/^quantization_bit: cannot be used with finetuning_type "full", which trains the base weights/);
    expect(problems({ ...base, quantization_bit: 8, finetuning_type: 'freeze' })[0]).toMatch(/"freeze"/);
    expect(problems({ ...base, quantization_bit: 4, quantization_method: 'hqq' })[0]).toMatch(/^quantization_method: "hqq" is not available in Graft/);
    expect(problems({ ...base, quantization_bit: 4, quantization_type: 'int4' })[0]).toMatch(/^quantization_type: must be one of "nf4", "fp4"/);
    expect(parseSettingsWithNotes({ ...base, quantization_bit: 8, double_quantization: false }, 'j').notes[0]).toMatch(/^double_quantization: applies to 4-bit/);
    for (const f of ['adapter', 'prompt']) expect(parseSettings({ ...base, quantization_bit: 4, finetuning_type: f }, 'j').quantization_bit).toBe(4);
    // A job file written by Graft carries them in the model section, as LLaMA-Factory's QLoRA examples do.
    expect(settingsToYaml(q)).toMatch(/### model\n(.*\n)*quantization_bit: 4\nquantization_method: bnb\n/);
    expect(settingsToYaml(parseSettings(base, 'j'))).not.toMatch(/quantization/);
  });

  it('passes "no" values of such keys: bf16: false, fp16: false, quantization_bit: null, optim: adamw_torch', () => {
    const { settings, notes } = parseSettingsWithNotes({ ...base, bf16: false, fp16: 'false', quantization_bit: null, deepspeed: null, optim: 'adamw_torch', do_train: true, use_dora: false, flash_attn: null }, 'j');
    expect(parseSettings({ ...base, optim: null, do_train: null, mix_strategy: 'concat', report_to: null }, 'j').stage).toBe('sft');
    expect(settings.model_name_or_path).toBe(base.model_name_or_path);
    expect(notes).toEqual([]);
  });

  it('gradient_checkpointing: a boolean (default false), refused otherwise; LLaMA-Factory\'s disable_gradient_checkpointing is a note', () => {
    expect(parseSettings(base, 'j').gradient_checkpointing).toBe(false);
    expect(parseSettings({ ...base, gradient_checkpointing: true }, 'j').gradient_checkpointing).toBe(true);
    expect(parseSettings({ ...base, gradient_checkpointing: 'true' }, 'j').gradient_checkpointing).toBe(true); // a command-line flag
    expect(parseSettings({ ...base, gradient_checkpointing: 'false' }, 'j').gradient_checkpointing).toBe(false);
    expect(problems({ ...base, gradient_checkpointing: 'sometimes' })[0]).toMatch(/^gradient_checkpointing: /);
    expect(problems({ ...base, gradient_checkpointing: 2 })[0]).toMatch(/^gradient_checkpointing: /);
    expect(problems({ ...base, gradient_checkpointing_kwargs: { use_reentrant: false } })[0]).toMatch(/^gradient_checkpointing_kwargs: .*remove/);
    const { settings, notes } = parseSettingsWithNotes({ ...base, disable_gradient_checkpointing: true }, 'j');
    expect(settings.gradient_checkpointing).toBe(false);
    expect(notes).toEqual([expect.stringMatching(/^disable_gradient_checkpointing: .*gradient_checkpointing: true/)]);
    // written to job files only when on (false is the default), in the train section
    expect(settingsToYaml(parseSettings(base, 'j'))).not.toContain('gradient_checkpointing');
    expect(settingsToYaml(parseSettings({ ...base, gradient_checkpointing: true }, 'j'))).toMatch(/^seed: 42\ngradient_checkpointing: true$/m);
  });

  it('accepts machinery keys with a note on each', () => {
    const { notes } = parseSettingsWithNotes({ ...base, preprocessing_num_workers: 16, report_to: 'none', plot_loss: true, flash_attn: 'auto' }, 'j');
    expect(notes).toEqual([
      'preprocessing_num_workers: Graft tokenizes in one worker',
      expect.stringMatching(/^report_to: /),
      'plot_loss: Graft always charts the loss',
      'flash_attn: Graft uses its own attention kernel',
    ]);
  });
});

describe('parseJobYaml', () => {
  it("reads LLaMA-Factory's example job (with the keys Graft cannot honour taken out)", () => {
    const text = [
      '### model',
      'model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct',
      'trust_remote_code: true',
      '',
      '### method',
      'stage: sft',
      'do_train: true',
      'finetuning_type: lora',
      'lora_rank: 8',
      'lora_target: all',
      '',
      '### dataset',
      'dataset: identity',
      'template: llama3',
      'cutoff_len: 2048',
      'max_samples: 1000',
      'overwrite_cache: true',
      'preprocessing_num_workers: 16',
      '',
      '### output',
      'output_dir: saves/llama3-8b/lora/sft',
      'logging_steps: 10',
      'save_steps: 500',
      'plot_loss: true',
      'overwrite_output_dir: true',
      '',
      '### train',
      'per_device_train_batch_size: 1',
      'gradient_accumulation_steps: 8',
      'learning_rate: 1.0e-4',
      'num_train_epochs: 3.0',
      'lr_scheduler_type: cosine',
      'warmup_ratio: 0.1',
      'bf16: false',
      'ddp_timeout: 180000000',
      'resume_from_checkpoint: null',
    ].join('\n');
    const { settings, notes } = parseJobYaml(text, 'llama3_lora_sft.yaml');
    expect(settings).toMatchObject({
      model_name_or_path: 'meta-llama/Meta-Llama-3-8B-Instruct',
      lora_target: ['all'],
      dataset: 'identity',
      template: 'llama3',
      max_samples: 1000,
      output_dir: 'saves/llama3-8b/lora/sft',
      logging_steps: 10,
      overwrite_output_dir: true,
      per_device_train_batch_size: 1,
      gradient_accumulation_steps: 8,
      learning_rate: 1e-4,
      lr_scheduler_type: 'cosine',
      warmup_ratio: 0.1,
    });
    expect(settings.resume_from_checkpoint).toBeUndefined();
    expect(notes.map((n) => n.split(':')[0])).toEqual(['trust_remote_code', 'overwrite_cache', 'preprocessing_num_workers', 'plot_loss', 'ddp_timeout']);
  });

  it('names the line of a bad value and of an unknown key', () => {
    const text = 'model_name_or_path: m\ndataset: d.json\nlora_rank: -2\n\nbf16: true\nlearning_rat: 1.0e-4\n';
    try {
      parseJobYaml(text, 'train.yaml');
      throw new Error('expected an error');
    } catch (e) {
      expect(e).toBeInstanceOf(SettingsError);
      const err = e as SettingsError;
      expect(err.problems.map((p) => [p.line, p.key])).toEqual([
        [3, 'lora_rank'],
        [5, 'bf16'],
        [6, 'learning_rat'],
      ]);
      expect(err.message).toMatch(/^train\.yaml has 3 problems:\n {2}- line 3, lora_rank: must be at least 1, not -2\n/);
      expect(err.message).toMatch(/line 6, learning_rat: unknown setting; did you mean "learning_rate"\?/);
    }
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    const bad = (text: string) => {
      try {
        parseJobYaml(text, 'job.yaml');
      } catch (e) {
        return (e as SettingsError).problems;
      }
      throw new Error('expected an error');
    };
    expect(bad('model_name_or_path: m\ndataset: [unclosed\nlora_rank: 4\n')[0]!.line).toBeGreaterThanOrEqual(2);
    const dup = bad('model_name_or_path: m\ndataset: d\nlora_rank: 4\nlora_rank: 8\n');
    expect(dup[0]!.line).toBe(4);
    expect(dup[0]!.message).toMatch(/not valid YAML: .*unique/i);
    expect(bad('')[0]!.message).toMatch(/is empty/);
    expect(bad('- a\n- b\n')[0]!.message).toMatch(/mapping/);
  });

  it('reads YAML 1.1 as PyYAML does: 1e-4 without a dot is a string there, converted here', () => {
    const { settings } = parseJobYaml('model_name_or_path: m\ndataset: d\nlearning_rate: 1e-4\nuse_rslora: yes\n', 'j.yaml');
    expect(settings.learning_rate).toBe(1e-4);
    expect(settings.use_rslora).toBe(true);
  });
});

describe('parseSettings: bottleneck adapters (finetuning_type "adapter")', () => {
  it('reads placement, reduction_factor and non-linearity; refuses bad values and the keys with another method', () => {
    const s = parseSettings({ ...base, finetuning_type: 'adapter', adapter_placement: 'houlsby', reduction_factor: '8', adapter_non_linearity: 'silu' }, 'j');
    expect(s).toMatchObject({ finetuning_type: 'adapter', adapter_placement: 'houlsby', reduction_factor: 8, adapter_non_linearity: 'silu' });
    expect(parseSettings({ ...base, finetuning_type: 'adapter' }, 'j')).toMatchObject({ adapter_placement: 'pfeiffer', reduction_factor: 16, adapter_non_linearity: 'relu' });
    expect(problems({ ...base, finetuning_type: 'adapter', adapter_placement: 'parallel', reduction_factor: 0, adapter_non_linearity: 'tanh' })).toEqual([
      'adapter_placement: must be one of "houlsby", "pfeiffer", not "parallel"',
      'reduction_factor: must be at least 1, not 0',
      'adapter_non_linearity: must be one of "relu", "silu", "gelu", not "tanh"',
    ]);
    expect(problems({ ...base, reduction_factor: 8 })).toEqual(['reduction_factor: is only valid with finetuning_type "adapter" (this job has "lora")']);
    expect(problems({ ...base, finetuning_type: 'oft' })[0]).toMatch(/use "lora", "freeze", "full", "adapter" or "prompt"/);
    // A reward model is saved as a sequence-classification folder, which cannot hold a bottleneck adapter.
    expect(problems({ ...base, finetuning_type: 'adapter', stage: 'rm' })).toEqual([
      'finetuning_type: "adapter" cannot train a reward model (it is saved as a sequence-classification model, which has no bottleneck adapters); use "lora", "freeze" or "full"',
    ]);
  });

  it('a job file round-trips its bottleneck keys; LoRA jobs do not carry them', () => {
    const s = parseSettings({ ...base, finetuning_type: 'adapter', adapter_placement: 'houlsby', reduction_factor: 4 }, 'j');
    const text = settingsToYaml(s);
    expect(text).toContain('finetuning_type: adapter\nadapter_placement: houlsby\nreduction_factor: 4\nadapter_non_linearity: relu');
    expect(text).not.toMatch(/lora_/);
    expect(parseJobYaml(text, 'back.yaml').settings).toEqual(s);
    expect(settingsToYaml(parseSettings(base, 'j'))).not.toMatch(/adapter_|reduction_factor/);
  });
});

describe('settingsToYaml', () => {
  it('writes LLaMA-Factory keys only and reads back to the same settings', () => {
    const s = parseSettings(
      {
        ...base,
        lora_rank: 16,
        lora_alpha: 16,
        lora_target: 'q_proj,v_proj',
        use_rslora: true,
        learning_rate: 1e-4,
        adam_epsilon: 1e-7,
        num_train_epochs: 2,
        lr_scheduler_type: 'cosine',
        warmup_ratio: 0.05,
        val_size: 0.1,
        eval_strategy: 'steps',
        eval_steps: 50,
        output_dir: 'saves/smol: lora', // needs quoting
        template: 'smollm2',
        resume_from_checkpoint: 'saves/run/checkpoint-100',
      },
      'j',
    );
    const text = settingsToYaml(s, { header: ['made by Graft'], comments: { template: 'guessed' }, extra: { train: ['bf16: true  # on GPUs with bfloat16'] } });
    expect(text.startsWith('# made by Graft\n')).toBe(true);
    expect(text).toContain('template: smollm2  # guessed');
    expect(text).toContain('# bf16: true  # on GPUs with bfloat16');
    expect(text).toContain('learning_rate: 0.0001');
    expect(text).toContain('adam_epsilon: 1.0e-7');
    expect(text).toContain('num_train_epochs: 2.0');
    expect(text).toContain('do_train: true');
    // freeze and preference keys are not for a LoRA SFT job
    expect(text).not.toMatch(/freeze_|pref_/);
    const js = parseYaml(text, { version: '1.1' }) as Record<string, unknown>;
    for (const k of Object.keys(js)) expect([...SETTINGS_KEYS, 'do_train']).toContain(k);
    expect(js.learning_rate).toBe(1e-4);
    expect(js.lora_target).toBe('q_proj,v_proj');
    expect(parseJobYaml(text, 'back.yaml').settings).toEqual(s);
  });

  it('leaves out defaults that are not part of what defines the run', () => {
    const text = settingsToYaml(parseSettings(base, 'j'));
    expect(text).not.toContain('adam_beta1');
    expect(text).not.toContain('lora_alpha'); // 2 · rank, the default
    expect(text).toContain('lora_rank');
    expect(text).toContain('learning_rate: 0.00005');
    expect(parseJobYaml(text, 'back.yaml').settings).toEqual(parseSettings(base, 'j'));
  });

  it('omits keys on request', () => {
    const s = parseSettings({ ...base, resume_from_checkpoint: 'ckpt' }, 'j');
    expect(settingsToYaml(s, { omit: ['resume_from_checkpoint'] })).not.toContain('resume_from_checkpoint');
  });

  it('quotes strings that YAML would read as something else', () => {
    expect(yamlScalar('all')).toBe('all');
    expect(yamlScalar('org/model-1.5B')).toBe('org/model-1.5B');
    expect(yamlScalar('yes')).toBe('"yes"');
    expect(yamlScalar('null')).toBe('"null"');
    expect(yamlScalar('1e3')).toBe('"1e3"');
    expect(yamlScalar('a: b')).toBe('"a: b"');
    expect(yamlScalar('#x')).toBe('"#x"');
    expect(yamlScalar('.')).toBe('"."');
    expect(yamlScalar('./data')).toBe('./data');
    expect(yamlScalar('.inf')).toBe('".inf"');
    expect(yamlScalar(1e-5)).toBe('0.00001');
    expect(yamlScalar(1.5e-7)).toBe('1.5e-7');
    expect(yamlScalar(1e21)).toBe('1e+21');
  });
});

describe('settingsWarnings', () => {
  it('flags warm-up with the constant schedule and a split that is never evaluated', () => {
    const w = settingsWarnings(parseSettings({ ...base, lr_scheduler_type: 'constant', warmup_steps: 10, val_size: 0.1 }, 'j'));
    expect(w).toEqual([expect.stringMatching(/ignores warm-up/), expect.stringMatching(/never evaluated/)]);
    expect(settingsWarnings(parseSettings(base, 'j'))).toEqual([]);
  });
});

describe('multi-task settings (Graft\'s own)', () => {
  it('task_weights as "task:weight" pairs (a flag) or a YAML mapping; the dwa and sampling settings', () => {
    expect(parseSettings({ ...base, task_weights: 'qa:1, summarise:0.5' }, 'j').task_weights).toEqual({ qa: 1, summarise: 0.5 });
    const y = parseJobYaml('model_name_or_path: m\ndataset: d.json\ntask_weights:\n  qa: 2\n  chat: 0\n', 'job.yaml').settings;
    expect(y.task_weights).toEqual({ qa: 2, chat: 0 });
    const d = parseSettings({ ...base, task_weighting: 'dwa', dwa_temperature: '1.5', dwa_window: '4', task_sampling: 'balanced' }, 'j');
    expect([d.task_weighting, d.dwa_temperature, d.dwa_window, d.task_sampling]).toEqual(['dwa', 1.5, 4, 'balanced']);
  });

  it('bad values and combinations are errors that say what to do', () => {
    expect(problems({ ...base, task_weights: 'qa:-1' })).toEqual(['task_weights: weight of task "qa" must be at least 0, not -1']);
    expect(problems({ ...base, task_weights: 'qa' })).toEqual([expect.stringMatching(/task_weights: must list task:weight pairs such as "qa:1,summarise:0.5", and "qa" is not one/)]);
    expect(problems({ ...base, task_weights: 'qa:0,b:0' })).toEqual(['task_weights: gives every task weight 0: nothing would be learned']);
    expect(problems({ ...base, task_weights: 'qa:1,qa:2' })).toEqual(['task_weights: names task "qa" twice']);
    expect(problems({ ...base, task_weighting: 'gradnorm' })).toEqual(['task_weighting: must be one of "static", "dwa", "uncertainty", not "gradnorm"']);
    expect(problems({ ...base, dwa_temperature: 0 })[0]).toMatch(/dwa_temperature: must be greater than 0/);
    expect(problems({ ...base, task_weighting: 'dwa', task_weights: 'a:1' })).toEqual([expect.stringMatching(/task_weights: gives static weights, but task_weighting is "dwa"/)]);
    expect(problems({ ...base, dwa_temperature: 3 })).toEqual(['dwa_temperature: applies to task_weighting "dwa" (this job has "static")']);
    expect(problems({ ...base, stage: 'dpo', task_weighting: 'uncertainty' })).toEqual(['task_weighting: multi-task training applies to stage "sft" (this job has stage "dpo")']);
    expect(problems({ ...base, task_sampling: 'balanced', disable_shuffling: true })[0]).toMatch(/task_sampling: balanced task sampling draws examples at random/);
  });

  it('several datasets (stage sft) are a comma list, each a task; empty and repeated names are errors', () => {
    const s = parseSettings({ ...base, dataset: ['qa.json', ' summarise.jsonl'] }, 'j');
    expect(s.dataset).toBe('qa.json,summarise.jsonl');
    expect(datasetNames(s)).toEqual(['qa.json', 'summarise.jsonl']);
    expect(datasetNames(parseSettings({ ...base, dataset: 'a, b' }, 'j'))).toEqual(['a', 'b']);
    expect(problems({ ...base, dataset: 'a,,b' })).toEqual(['dataset: names an empty dataset in its list']);
    expect(problems({ ...base, dataset: 'a,b,a' })).toEqual(['dataset: names "a" twice']);
  });

  it('never written into a LLaMA-Factory job (it has no task weighting)', () => {
    const s = parseSettings({ ...base, task_weighting: 'static', task_weights: 'a:2', task_sampling: 'balanced' }, 'j');
    expect(settingsToYaml(s)).not.toMatch(/task_|dwa_/);
  });
});
