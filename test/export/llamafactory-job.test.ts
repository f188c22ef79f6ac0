import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { exportLlamaFactoryJob, guessLlamaFactoryTemplate, OPENAI_TAGS, SHAREGPT_TAGS } from '../../src/export/llamafactory-job';
import { zipFiles } from '../../src/export/zip';
import { parseDatasetText } from '../../src/data/parse';
import { normaliseRecord } from '../../src/data/normalize';
import { parsePreferenceText, type PreferenceRecord } from '../../src/data/preference';
import { parseJobYaml, parseSettings, SETTINGS_KEYS } from '../../src/train/settings';

const readData = (p: string) => readFileSync(new URL(`../fixtures/data/${p}`, import.meta.url), 'utf8');
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b!);
const settings = parseSettings(
  {
    model_name_or_path: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    dataset: 'my data.json',
    lora_rank: 16,
    lora_target: 'q_proj,v_proj',
    learning_rate: 2e-4,
    per_device_train_batch_size: 4,
    gradient_accumulation_steps: 2,
    num_train_epochs: 2,
    lr_scheduler_type: 'cosine',
    warmup_ratio: 0.1,
    cutoff_len: 512,
    logging_steps: 5,
    save_steps: 100,
    output_dir: 'saves/smol-lora',
    resume_from_checkpoint: 'graft-checkpoints/step-40',
  },
  'job',
);

describe('exportLlamaFactoryJob: train.yaml', () => {
  const alpaca = parseDatasetText(readData('sft_alpaca.json'), 'sft_alpaca.json');
  const job = exportLlamaFactoryJob({ settings, datasetName: 'my data.json', records: alpaca.records, format: 'alpaca' });

  it('parses back with yaml to the LLaMA-Factory keys of the job', () => {
    expect([...job.files.keys()]).toEqual(['train.yaml', 'dataset_info.json', 'my_data.json']);
    const y = parseYaml(text(job.files.get('train.yaml')), { version: '1.1' }) as Record<string, unknown>;
    expect(y).toEqual({
      model_name_or_path: 'HuggingFaceTB/SmolLM2-135M-Instruct',
      stage: 'sft',
      do_train: true,
      finetuning_type: 'lora',
      lora_rank: 16,
      lora_target: 'q_proj,v_proj',
      dataset: 'my_data',
      dataset_dir: '.',
      cutoff_len: 512,
      output_dir: 'llamafactory_output', // not Graft's run folder, whose checkpoint-N/ LLaMA-Factory would resume from
      logging_steps: 5,
      save_steps: 100,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 2,
      learning_rate: 2e-4,
      num_train_epochs: 2,
      lr_scheduler_type: 'cosine',
      warmup_ratio: 0.1,
      seed: 42,
      disable_gradient_checkpointing: true, // Graft's run kept its activations; LLaMA-Factory's default recomputes them
    });
    for (const k of Object.keys(y)) expect([...SETTINGS_KEYS, 'do_train', 'disable_gradient_checkpointing']).toContain(k);
  });

  it('gradient_checkpointing: a run that checkpointed writes it (LLaMA-Factory\'s TrainingArguments key) and no disable_gradient_checkpointing', () => {
    const j = exportLlamaFactoryJob({ settings: { ...settings, gradient_checkpointing: true }, datasetName: 'd', records: alpaca.records, format: 'alpaca' });
    const yaml = text(j.files.get('train.yaml'));
    const y = parseYaml(yaml, { version: '1.1' }) as Record<string, unknown>;
    expect(y.gradient_checkpointing).toBe(true);
    expect('disable_gradient_checkpointing' in y).toBe(false);
    expect(parseJobYaml(yaml, 'train.yaml').settings.gradient_checkpointing).toBe(true);
    // and a run without it: LLaMA-Factory is told to keep activations; Graft reads that back as its default, with a note
    const back = parseJobYaml(text(job.files.get('train.yaml')), 'train.yaml');
    expect(back.settings.gradient_checkpointing).toBe(false);
    expect(back.notes.some((n) => n.startsWith('disable_gradient_checkpointing:'))).toBe(true);
  });

  it('leaves template out (LLaMA-Factory then uses the tokenizer\'s chat template, as Graft did), hints at bf16 and explains the checkpoint it left out', () => {
    const yaml = text(job.files.get('train.yaml'));
    expect(job.template).toBeUndefined();
    expect(yaml).not.toMatch(/^template:/m);
    expect(yaml).toMatch(/^# bf16: true {2}# Graft trained in float32/m);
    expect(yaml).toMatch(/^# resume_from_checkpoint: left out/m);
    expect(yaml).toMatch(/^# Run from this folder: llamafactory-cli train train\.yaml$/m);
    expect(yaml).toMatch(/^output_dir: llamafactory_output {2}# not Graft's run folder/m);
    // the shuffle differs: said loudly
    expect(job.warnings.some((w) => /batches are drawn in another order/.test(w))).toBe(true);
    expect(yaml).toMatch(/^# WARNING: the batches are drawn in another order/m);
    // Graft reads its own export back to the same job (dataset, output folder and checkpoint aside)
    const back = parseJobYaml(yaml, 'train.yaml').settings;
    expect(back).toEqual({ ...settings, dataset: 'my_data', dataset_dir: '.', output_dir: 'llamafactory_output', resume_from_checkpoint: undefined });
  });

  it('a template that was set is left out with a note; a model without a chat template gets chatml (Graft\'s ChatML default)', () => {
    const j = exportLlamaFactoryJob({ settings: { ...settings, template: 'qwen' }, datasetName: 'd', records: alpaca.records, format: 'alpaca' });
    expect(text(j.files.get('train.yaml'))).not.toMatch(/^template:/m);
    expect(j.notes).toEqual([expect.stringMatching(/^template "qwen" is left out: Graft rendered with the model's own chat template/)]);
    const d = exportLlamaFactoryJob({ settings, datasetName: 'd', records: alpaca.records, format: 'alpaca', chatTemplate: 'graft-default' });
    expect(text(d.files.get('train.yaml'))).toMatch(/^template: chatml {2}# the model has no chat template/m);
  });
});

describe('exportLlamaFactoryJob: dataset_info.json as LLaMA-Factory documents it', () => {
  it('alpaca: columns prompt/query/response (+ system, history when present)', () => {
    const alpaca = parseDatasetText(readData('sft_alpaca.json'), 'sft_alpaca.json');
    const job = exportLlamaFactoryJob({ settings, datasetName: 'alpaca_zh', records: alpaca.records, format: 'alpaca' });
    expect(JSON.parse(text(job.files.get('dataset_info.json')))).toEqual({
      alpaca_zh: { file_name: 'alpaca_zh.json', formatting: 'alpaca', columns: { prompt: 'instruction', query: 'input', response: 'output' } },
    });
    const data = JSON.parse(text(job.files.get('alpaca_zh.json'))) as Record<string, unknown>[];
    expect(data).toHaveLength(16);
    // instruction + "\n" + input became one user message in Graft; LLaMA-Factory builds the same prompt from it
    const first = JSON.parse(readData('sft_alpaca.json'))[0];
    expect(data[0]).toEqual({ instruction: `${first.instruction}\n${first.input}`, input: '', output: first.output });
    // the written records read back in Graft as the same conversations
    expect(parseDatasetText(text(job.files.get('alpaca_zh.json')), 'x').records.map((c) => c.messages)).toEqual(alpaca.records.map((c) => c.messages));
  });

  it('alpaca with a system prompt and history', () => {
    const c = { system: 'Be brief.', messages: [
      { role: 'user' as const, content: 'Hi' }, { role: 'assistant' as const, content: 'Hello' },
      { role: 'user' as const, content: 'Bye' }, { role: 'assistant' as const, content: 'Goodbye' },
    ] };
    const job = exportLlamaFactoryJob({ settings, datasetName: 'd', records: [c], format: 'alpaca' });
    expect(JSON.parse(text(job.files.get('dataset_info.json'))).d.columns).toEqual({ prompt: 'instruction', query: 'input', response: 'output', system: 'system', history: 'history' });
    expect(JSON.parse(text(job.files.get('d.json')))).toEqual([{ instruction: 'Bye', input: '', output: 'Goodbye', system: 'Be brief.', history: [['Hi', 'Hello']] }]);
  });

  it('sharegpt: formatting sharegpt, messages column "conversations", from/value tags', () => {
    const sharegpt = parseDatasetText(readData('sft_sharegpt.json'), 'sft_sharegpt.json');
    const job = exportLlamaFactoryJob({ settings, datasetName: 'chat', records: sharegpt.records, format: 'sharegpt' });
    expect(JSON.parse(text(job.files.get('dataset_info.json')))).toEqual({
      chat: {
        file_name: 'chat.json',
        formatting: 'sharegpt',
        columns: { messages: 'conversations', system: 'system' },
        tags: { role_tag: 'from', content_tag: 'value', user_tag: 'human', assistant_tag: 'gpt', system_tag: 'system' },
      },
    });
    expect(SHAREGPT_TAGS.user_tag).toBe('human');
    const data = JSON.parse(text(job.files.get('chat.json'))) as { conversations: { from: string }[] }[];
    for (const r of data) for (const t of r.conversations) expect(['human', 'gpt']).toContain(t.from);
    expect(parseDatasetText(text(job.files.get('chat.json')), 'x').records.map(({ source: _s, ...c }) => c)).toEqual(sharegpt.records.map(({ source: _s, ...c }) => c));
  });

  it('OpenAI messages: formatting sharegpt with role/content/user/assistant/system tags, system as the first message', () => {
    const sharegpt = parseDatasetText(readData('sft_sharegpt.json'), 'sft_sharegpt.json');
    const job = exportLlamaFactoryJob({ settings, datasetName: 'oa', records: sharegpt.records, format: 'openai' });
    expect(JSON.parse(text(job.files.get('dataset_info.json')))).toEqual({
      oa: { file_name: 'oa.json', formatting: 'sharegpt', columns: { messages: 'messages' }, tags: { ...OPENAI_TAGS } },
    });
    expect(OPENAI_TAGS).toEqual({ role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system' });
    const data = JSON.parse(text(job.files.get('oa.json'))) as { messages: { role: string; content: string }[] }[];
    const withSystem = sharegpt.records.findIndex((c) => c.system !== undefined);
    expect(data[withSystem]!.messages[0]).toEqual({ role: 'system', content: sharegpt.records[withSystem]!.system });
  });

  it('original rows: keeps their fields, respells ShareGPT roles, joins OpenAI content parts, reports rows it leaves out', () => {
    const rows = [
      { conversations: [{ from: 'user', value: 'Q' }, { from: 'assistant', value: 'A' }], system: 'S', id: 7 },
      { conversations: [{ from: 'human', value: 'Q2' }] }, // ends with the user: Graft could not train on it
      { conversations: [{ from: 'human', value: 'Q3' }, { from: 'gpt', value: 'A3' }] },
    ];
    const job = exportLlamaFactoryJob({ settings, datasetName: 'rows', rows, format: 'sharegpt' });
    expect(JSON.parse(text(job.files.get('rows.json')))).toEqual([
      { conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }], system: 'S', id: 7 },
      { conversations: [{ from: 'human', value: 'Q3' }, { from: 'gpt', value: 'A3' }] },
    ]);
    expect(job.skipped).toEqual([{ index: 1, reason: expect.stringMatching(/ends with a user turn/) }]);

    const oa = exportLlamaFactoryJob({
      settings,
      datasetName: 'oa',
      rows: [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'Hel' }, { type: 'text', text: 'lo' }] }, { role: 'assistant', content: 'Hi' }] }],
      format: 'openai',
    });
    const written = JSON.parse(text(oa.files.get('oa.json')));
    expect(written).toEqual([{ messages: [{ role: 'user', content: 'Hello' }, { role: 'assistant', content: 'Hi' }] }]);
    expect(normaliseRecord(written[0], 'openai').ok).toBe(true);

    const al = exportLlamaFactoryJob({ settings, datasetName: 'al', rows: JSON.parse(readData('sft_alpaca.json')), format: 'alpaca' });
    expect(JSON.parse(text(al.files.get('al.json')))).toEqual(JSON.parse(readData('sft_alpaca.json')));
  });

  it('refuses a job with no record to write, and records and rows together', () => {
    expect(() => exportLlamaFactoryJob({ settings, datasetName: 'x', rows: [{ foo: 1 }], format: 'alpaca' })).toThrow(/no record .* \(1 could not be read\)/);
    expect(() => exportLlamaFactoryJob({ settings, datasetName: 'x', rows: [], records: [], format: 'alpaca' })).toThrow(/either records or rows/);
    expect(() => exportLlamaFactoryJob({ settings: { ...settings, stage: 'dpo' }, datasetName: 'x', records: [], format: 'alpaca' })).toThrow(/a "dpo" job is written from its preference pairs/);
    expect(() => exportLlamaFactoryJob({ settings, datasetName: 'x', pairs: [] })).toThrow(/an "sft" job is written from records or rows/);
  });
});

describe('guessLlamaFactoryTemplate', () => {
  it('maps model families to template names, "default" otherwise', () => {
    expect(guessLlamaFactoryTemplate('Qwen/Qwen2.5-0.5B-Instruct').template).toBe('qwen');
    expect(guessLlamaFactoryTemplate('Qwen/Qwen3-0.6B').template).toBe('qwen3');
    expect(guessLlamaFactoryTemplate('meta-llama/Llama-3.2-1B-Instruct').template).toBe('llama3');
    expect(guessLlamaFactoryTemplate('TinyLlama/TinyLlama-1.1B-Chat-v1.0').template).toBe('zephyr');
    expect(guessLlamaFactoryTemplate('openai-community/gpt2')).toEqual({ template: 'default', guessed: false });
  });
});

describe('zipFiles', () => {
  it('round-trips through unzipSync, folders included', () => {
    const alpaca = parseDatasetText(readData('sft_alpaca.json'), 'sft_alpaca.json');
    const job = exportLlamaFactoryJob({ settings, datasetName: 'd', records: alpaca.records, format: 'alpaca' });
    const files = new Map(job.files);
    files.set('adapter/adapter_model.safetensors', new Uint8Array(4096).map((_, i) => (i * 7919) & 255));
    files.set('empty.txt', new Uint8Array(0));
    const zip = zipFiles(files, { mtime: new Date('2025-01-02T03:04:06Z') });
    expect([zip[0], zip[1], zip[2], zip[3]]).toEqual([0x50, 0x4b, 0x03, 0x04]);
    const back = unzipSync(zip);
    expect(Object.keys(back).sort()).toEqual([...files.keys()].sort());
    for (const [name, bytes] of files) expect(Buffer.from(back[name]!).equals(Buffer.from(bytes)), name).toBe(true);
    // text is deflated, weights are stored
    expect(zip.length).toBeLessThan([...files.values()].reduce((s, b) => s + b.length, 0));
  });

  it('refuses paths that would escape the archive root', () => {
    expect(() => zipFiles(new Map([['../x', new Uint8Array(1)]]))).toThrow(/relative file path/);
    expect(() => zipFiles(new Map([['/abs', new Uint8Array(1)]]))).toThrow(/relative file path/);
  });
});

describe('exportLlamaFactoryJob: preference jobs (stage dpo and rm)', () => {
  const pairs: PreferenceRecord[] = [
    { prompt: [{ role: 'user', content: 'Capital of France?' }], chosen: 'Paris.', rejected: 'Lyon.' },
    {
      system: 'Be brief.',
      prompt: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: '2 + 2?' },
      ],
      chosen: '4',
      rejected: '5',
    },
  ];
  const dpo = parseSettings({ model_name_or_path: 'HuggingFaceTB/SmolLM2-135M-Instruct', dataset: 'prefs.jsonl', stage: 'dpo', pref_beta: 0.2, pref_ftx: 0.5 }, 'job');

  it('dpo: a ShareGPT ranking dataset as LLaMA-Factory\'s data/README documents it, pref_beta and pref_loss in train.yaml', () => {
    const job = exportLlamaFactoryJob({ settings: dpo, datasetName: 'prefs.jsonl', pairs });
    expect([...job.files.keys()]).toEqual(['train.yaml', 'dataset_info.json', 'prefs.json']);
    expect(JSON.parse(text(job.files.get('dataset_info.json')))).toEqual({
      prefs: {
        file_name: 'prefs.json',
        formatting: 'sharegpt',
        ranking: true,
        columns: { messages: 'conversations', chosen: 'chosen', rejected: 'rejected', system: 'system' },
        tags: SHAREGPT_TAGS,
      },
    });
    const rows = JSON.parse(text(job.files.get('prefs.json'))) as unknown[];
    expect(rows[0]).toEqual({ conversations: [{ from: 'human', value: 'Capital of France?' }], chosen: { from: 'gpt', value: 'Paris.' }, rejected: { from: 'gpt', value: 'Lyon.' } });
    expect(rows[1]).toMatchObject({ system: 'Be brief.', conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello!' }, { from: 'human', value: '2 + 2?' }] });
    // Graft reads the written rows back as the same pairs (its ranking format is LLaMA-Factory's).
    const back = parsePreferenceText(JSON.stringify(rows), 'prefs.json');
    expect(back.problems).toEqual([]);
    expect(back.records.map(({ source: _s, ...r }) => r)).toEqual(pairs);
    const y = parseYaml(text(job.files.get('train.yaml')), { version: '1.1' }) as Record<string, unknown>;
    expect(y).toMatchObject({ stage: 'dpo', dataset: 'prefs', pref_beta: 0.2, pref_loss: 'sigmoid', pref_ftx: 0.5 });
    expect(parseJobYaml(text(job.files.get('train.yaml')), 'train.yaml').settings).toMatchObject({ stage: 'dpo', pref_beta: 0.2, pref_loss: 'sigmoid', pref_ftx: 0.5 });
    // a new LoRA adapter: its first draw is each trainer's own, said loudly
    expect(job.warnings).toEqual([expect.stringMatching(/^the new LoRA adapter's A matrices are drawn by each trainer's own generator/)]);
  });

  it('rm: the same ranking dataset, no preference-loss keys', () => {
    const rm = parseSettings({ model_name_or_path: 'HuggingFaceTB/SmolLM2-135M-Instruct', dataset: 'prefs.jsonl', stage: 'rm' }, 'job');
    const job = exportLlamaFactoryJob({ settings: rm, datasetName: 'prefs', pairs: pairs.slice(0, 1) });
    expect(JSON.parse(text(job.files.get('dataset_info.json'))).prefs).toMatchObject({ ranking: true, columns: { messages: 'conversations', chosen: 'chosen', rejected: 'rejected' } });
    const y = parseYaml(text(job.files.get('train.yaml')), { version: '1.1' }) as Record<string, unknown>;
    expect(y.stage).toBe('rm');
    expect(Object.keys(y).filter((k) => k.startsWith('pref_'))).toEqual([]);
  });
});

describe('exportLlamaFactoryJob: multi-task records', () => {
  it('writes the job with a warning that LLaMA-Factory has no task weighting (in the result and atop train.yaml)', () => {
    const mt = parseSettings({ model_name_or_path: 'HuggingFaceTB/SmolLM2-135M-Instruct', dataset: 'qa.json,sum.json', task_weights: 'qa:2', task_sampling: 'balanced' }, 'job');
    const records = parseDatasetText(readData('sft_alpaca.json'), 'sft_alpaca.json').records.slice(0, 4).map((r, i) => ({ ...r, task: i < 2 ? 'qa' : 'sum' }));
    const job = exportLlamaFactoryJob({ settings: mt, datasetName: 'qa+sum', records, format: 'alpaca' });
    expect(job.warnings[0]).toMatch(/^LLaMA-Factory has no task weighting: it trains on the records of the 2 tasks \(qa, sum\) mixed, .*task_weighting static, task_weights qa:2, task_sampling balanced are not in this job/);
    const yaml = text(job.files.get('train.yaml'));
    expect(yaml).toMatch(/^# WARNING: LLaMA-Factory has no task weighting/m);
    expect(yaml).not.toMatch(/^task_/m);
    expect((JSON.parse(text(job.files.get('qa_sum.json'))) as { task: string }[]).map((r) => r.task)).toEqual(['qa', 'qa', 'sum', 'sum']);
    // Without tasks there is no warning.
    expect(exportLlamaFactoryJob({ settings, datasetName: 'd', records: records.map(({ task: _t, ...r }) => r), format: 'alpaca' }).warnings.filter((w) => /task weighting/.test(w))).toEqual([]);
  });
});
