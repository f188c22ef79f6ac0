import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { datasetInfoEntry, mapsRecords, recordMapper } from '../../src/data/dataset-info';
import { parseDatasetText } from '../../src/data/parse';
import { parsePreferenceText } from '../../src/data/preference';
import { exportLlamaFactoryJob } from '../../src/export/llamafactory-job';
import { parseSettings } from '../../src/train/settings';

const readData = (p: string) => readFileSync(new URL(`../fixtures/data/${p}`, import.meta.url), 'utf8');
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b!);
const withInfo = (name: string, entry: unknown) => {
  const info = datasetInfoEntry(name, entry);
  return mapsRecords(info) ? { mapRecord: recordMapper(info) } : {};
};

describe("dataset_info.json as LLaMA-Factory's data README defines it", () => {
  it('columns map {question, answer, context} onto alpaca (no more "unknown record")', () => {
    const file = JSON.stringify([{ question: 'What is 2+2?', context: 'arithmetic', answer: '4', task: 'math' }]);
    expect(parseDatasetText(file, 'qa.json').problems[0]!.reason).toMatch(/^unknown record/);
    const d = parseDatasetText(file, 'qa.json', withInfo('qa', { file_name: 'qa.json', columns: { prompt: 'question', query: 'context', response: 'answer' } }));
    expect(d.problems).toEqual([]);
    expect(d.records[0]).toMatchObject({ messages: [{ role: 'user', content: 'What is 2+2?\narithmetic' }, { role: 'assistant', content: '4' }], task: 'math' });
  });

  it('sharegpt with its own tags and columns; system column', () => {
    const file = JSON.stringify([{ dialog: [{ speaker: 'me', text: 'Hi' }, { speaker: 'bot', text: 'Hello' }], sys: 'Be kind.' }]);
    const d = parseDatasetText(
      file,
      'chat.json',
      withInfo('chat', { file_name: 'chat.json', formatting: 'sharegpt', columns: { messages: 'dialog', system: 'sys' }, tags: { role_tag: 'speaker', content_tag: 'text', user_tag: 'me', assistant_tag: 'bot' } }),
    );
    expect(d.problems).toEqual([]);
    expect(d.records[0]).toMatchObject({ system: 'Be kind.', messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] });
  });

  it('ranking: alpaca chosen/rejected columns and sharegpt ranking rows are preference pairs', () => {
    const alpaca = JSON.stringify([{ q: 'Say hi', good: 'Hi!', worse: 'No.' }]);
    const a = parsePreferenceText(alpaca, 'p.json', withInfo('p', { file_name: 'p.json', ranking: true, columns: { prompt: 'q', chosen: 'good', rejected: 'worse' } }));
    expect(a.problems).toEqual([]);
    expect(a.records[0]).toMatchObject({ prompt: [{ role: 'user', content: 'Say hi' }], chosen: 'Hi!', rejected: 'No.' });
    const share = JSON.stringify([{ c: [{ r: 'u', t: 'Say hi' }], good: { r: 'a', t: 'Hi!' }, bad: { r: 'a', t: 'No.' } }]);
    const s = parsePreferenceText(
      share,
      's.json',
      withInfo('s', { file_name: 's.json', formatting: 'sharegpt', ranking: true, columns: { messages: 'c', chosen: 'good', rejected: 'bad' }, tags: { role_tag: 'r', content_tag: 't', user_tag: 'u', assistant_tag: 'a' } }),
    );
    expect(s.problems).toEqual([]);
    expect(s.records[0]).toMatchObject({ prompt: [{ role: 'user', content: 'Say hi' }], chosen: 'Hi!', rejected: 'No.' });
  });

  it('refuses what LLaMA-Factory does not define, or Graft cannot read, naming the key', () => {
    expect(() => datasetInfoEntry('x', { file_name: 'x.json', columns: { question: 'q' } })).toThrow(/"x" "columns" has "question"; LLaMA-Factory's columns are prompt/);
    expect(() => datasetInfoEntry('x', { file_name: 'x.json', formatting: 'openai' })).toThrow(/"formatting" must be "alpaca" or "sharegpt"/);
    expect(() => datasetInfoEntry('x', { file_name: 'x.json', columns: { images: 'img' } })).toThrow(/Graft trains on text only/);
    expect(() => datasetInfoEntry('x', { ms_hub_url: 'a/b' })).toThrow(/cannot reach; use file_name or hf_hub_url/);
    expect(() => datasetInfoEntry('x', { file_name: 'x.json', colums: {} })).toThrow(/has "colums"/);
    expect(datasetInfoEntry('x', { hf_hub_url: 'a/b', subset: 's', split: 'test', revision: 'v1' })).toMatchObject({ hf_hub_url: 'a/b', subset: 's', split: 'test', revision: 'v1', formatting: 'alpaca', ranking: false });
  });
});

describe('the LLaMA-Factory export writes dataset_info.json entries that read back to the same records', () => {
  const settings = parseSettings({ model_name_or_path: 'm', dataset: 'd' }, 'job');
  const roundTrip = (job: ReturnType<typeof exportLlamaFactoryJob>) => {
    const info = JSON.parse(text(job.files.get('dataset_info.json'))) as Record<string, unknown>;
    const [name] = Object.keys(info);
    const entry = datasetInfoEntry(name!, info[name!]);
    return { entry, data: text(job.files.get(entry.file_name!)), options: mapsRecords(entry) ? { mapRecord: recordMapper(entry) } : {} };
  };
  const strip = <T extends { source?: unknown; inputOnly?: boolean }>(xs: T[]) => xs.map(({ source: _s, inputOnly: _i, ...x }) => x);

  for (const [file, format] of [['sft_alpaca.json', 'alpaca'], ['sft_sharegpt.json', 'sharegpt'], ['sft_sharegpt.json', 'openai'], ['multitask.json', 'alpaca']] as const) {
    it(`${file} written as ${format}`, () => {
      const src = parseDatasetText(readData(file), file).records;
      const { data, options } = roundTrip(exportLlamaFactoryJob({ settings, datasetName: 'd', records: src, format }));
      const back = parseDatasetText(data, 'd.json', options);
      expect(back.problems).toEqual([]);
      expect(strip(back.records)).toEqual(strip(src));
    });
  }

  it('preference pairs as a sharegpt ranking dataset', () => {
    const pairs = parsePreferenceText(readData('dpo.json'), 'dpo.json').records;
    const { entry, data, options } = roundTrip(exportLlamaFactoryJob({ settings: { ...settings, stage: 'dpo' }, datasetName: 'd', pairs }));
    expect(entry).toMatchObject({ ranking: true, formatting: 'sharegpt' });
    const back = parsePreferenceText(data, 'd.json', options);
    expect(back.problems).toEqual([]);
    const key = (r: { prompt: unknown; chosen: string; rejected: string; system?: string }) => ({ prompt: r.prompt, chosen: r.chosen, rejected: r.rejected, system: r.system });
    expect(back.records.map(key)).toEqual(pairs.map(key));
  });
});
