// The built-in sample datasets in public/samples/ (served next to the app). The first two were written for
// Graft (and for the built-in demo); the sft_* files are copies of the test fixtures in test/fixtures/data/.
// dpo.json and multitask.json are there for the DPO and multi-task trainers: the Data screen reads the SFT
// formats (alpaca, ShareGPT, OpenAI messages), so it lists them as downloads only.

export interface Sample {
  file: string;
  title: string;
  description: string;
  /** Whether the Data screen can open it (an SFT format). */
  sft: boolean;
}

export const SAMPLES: Sample[] = [
  {
    file: 'graft_alpaca.json',
    title: 'Graft Q&A (alpaca)',
    description: '24 short questions and answers about Graft and fine-tuning: instruction, input, output.',
    sft: true,
  },
  {
    file: 'graft_sharegpt.json',
    title: 'Graft chats (ShareGPT)',
    description: '6 conversations, some with several turns and a system prompt.',
    sft: true,
  },
  {
    file: 'sft_alpaca.json',
    title: 'Mixed tasks (alpaca)',
    description: '16 records in English and Chinese: translation, summaries, sentiment, a haiku.',
    sft: true,
  },
  {
    file: 'sft_sharegpt.json',
    title: 'ShareGPT and OpenAI messages',
    description: '4 conversations in two formats in one file (shown as "mixed").',
    sft: true,
  },
  { file: 'dpo.json', title: 'Preference pairs (DPO)', description: 'prompt, chosen, rejected: for the DPO trainer', sft: false },
  { file: 'multitask.json', title: 'Multi-task records', description: 'task, input, output: for multi-task training', sft: false },
];

/** The absolute URL of a sample, for download links. */
export function sampleUrl(file: string): string {
  return new URL(`${import.meta.env.BASE_URL}samples/${file}`, document.baseURI).href;
}

// The samples' text, bundled into small lazily loaded chunks: the service worker precaches the app's JavaScript
// (not .json files), so the samples open offline too.
const TEXTS = import.meta.glob<string>('../../public/samples/*.json', { query: '?raw', import: 'default' });

/** A sample's text (offline too). */
export async function sampleText(file: string): Promise<string> {
  const load = TEXTS[`../../public/samples/${file}`];
  if (!load) throw new Error(`There is no built-in sample ${file}.`);
  return load();
}
