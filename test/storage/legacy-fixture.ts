// A recorded fixture of the IndexedDB layout Graft used before the one "graft" database: the five schemas as the
// code of that time created them (store names, keys, key paths, autoIncrement, indexes; all at version 1), and
// databases filled with rows of the shapes it wrote. Do not "fix" this to follow src/: it is what browsers out
// there hold.
//   graft-models, graft-tuned-models  src/hub/store-idb.ts (IdbModelStore)
//   graft-checkpoints                 src/train/checkpoint-store-idb.ts (IdbCheckpointStore)
//   graft-workbench                   src/worker/train-api.ts openWorkbench()
//   graft-datasets                    src/worker/data-api.ts DatasetService
//   graft-settings                    src/worker/settings.ts HubSettingsStore

export interface LegacyStore {
  name: string;
  keyPath?: string | string[];
  autoIncrement?: boolean;
  indexes?: { name: string; keyPath: string | string[] }[];
}

const modelStores: LegacyStore[] = [
  { name: 'models', keyPath: ['repo', 'revision'] },
  { name: 'files', keyPath: ['repo', 'revision', 'path'], indexes: [{ name: 'model', keyPath: ['repo', 'revision'] }] },
  { name: 'chunks' },
];

export const LEGACY_LAYOUT: Record<string, LegacyStore[]> = {
  'graft-models': modelStores,
  'graft-tuned-models': modelStores,
  'graft-checkpoints': [{ name: 'checkpoints' }, { name: 'chunks' }],
  'graft-workbench': [
    { name: 'runs', keyPath: 'id' },
    { name: 'adapters', keyPath: 'id' },
    { name: 'tuned', keyPath: 'repo' },
    { name: 'preferences', keyPath: 'id', autoIncrement: true },
  ],
  'graft-datasets': [
    { name: 'files', keyPath: 'id' },
    { name: 'edits', keyPath: 'id' },
  ],
  'graft-settings': [{ name: 'settings' }],
};

export const LEGACY_NAMES = Object.keys(LEGACY_LAYOUT);

/** A legacy record: the store, the value, and the key for stores without a key path. */
export interface LegacyRecord {
  store: string;
  value: unknown;
  key?: IDBValidKey;
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) % 256);

/** Chunks as IdbModelStore and IdbCheckpointStore cut them. */
function chunksOf(data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += size) out.push(data.slice(at, at + size));
  return out.length ? out : [new Uint8Array(0)];
}

// ---- what the databases hold --------------------------------------------------------------------------------

export const CHUNK = 1000;
export const MODEL_REPO = 'acme/tiny-llama';
export const PARTIAL_REPO = 'acme/tiny-partial';
export const TUNED_REPO = 'graft/tiny-llama-full-1';
export const REVISION = 'main';
export const MODEL_FILES: Record<string, Uint8Array> = {
  'config.json': new TextEncoder().encode('{"model_type": "llama", "hidden_size": 8}'),
  'model.safetensors': bytes(2500, 1), // three chunks, the last one short
  'tokenizer.json': bytes(2000, 2), // exactly two chunks
};
/** Of PARTIAL_REPO's one file: the first 1500 bytes of 3000 are stored. */
export const PARTIAL_FILE = bytes(3000, 3);
export const PARTIAL_STORED = 1500;
export const TUNED_FILES: Record<string, Uint8Array> = {
  'config.json': new TextEncoder().encode('{"model_type": "llama"}'),
  'model.safetensors': bytes(1800, 4),
};
export const RUN_ID = 'run-lq2x-ab12';
export const CHECKPOINTS: Record<number, Record<string, Uint8Array>> = {
  2: { 'adapter_model.safetensors': bytes(2500, 5), 'trainer_state.json': new TextEncoder().encode('{"global_step": 2}'), empty: new Uint8Array(0) },
  4: { 'adapter_model.safetensors': bytes(2500, 6), 'trainer_state.json': new TextEncoder().encode('{"global_step": 4}'), empty: new Uint8Array(0) },
};
export const RUN = {
  id: RUN_ID,
  label: 'tiny-llama · alpaca',
  repo: MODEL_REPO,
  revision: REVISION,
  datasetId: 'ds-lq2x-0011223344556677',
  datasetName: 'three.jsonl',
  input: { stage: 'sft', finetuning_type: 'lora', lora_rank: 8, max_steps: 6, save_steps: 2 },
  finetuningType: 'lora',
  status: 'interrupted',
  step: 4,
  totalSteps: 6,
  checkpointStep: 4,
  createdAt: 1_700_000_000_000,
  updatedAt: 1_700_000_100_000,
  modelStore: 'models',
};
export const ADAPTER = {
  id: 'adapter-lq2x-cd34',
  label: 'tiny-llama LoRA r8',
  baseRepo: MODEL_REPO,
  baseRevision: REVISION,
  origin: 'run',
  runId: RUN_ID,
  createdAt: 1_700_000_200_000,
  kind: 'lora',
  r: 8,
  alpha: 16,
  useRslora: false,
  targetModules: ['q_proj', 'v_proj'],
  modules: 4,
  config: new TextEncoder().encode('{"peft_type": "LORA", "r": 8}'),
  weights: bytes(3000, 7),
};
export const TUNED_ROW = {
  repo: TUNED_REPO,
  label: 'tiny-llama full',
  baseRepo: MODEL_REPO,
  baseRevision: REVISION,
  baseStore: 'models',
  runId: 'run-lq2y-ef56',
  method: 'full',
  createdAt: 1_700_000_300_000,
  bytes: 1823,
};
/** Added without ids, as TrainService.addPreference does: they get 1 and 2. */
export const PREFERENCES = [
  { prompt: 'Say hi', chosen: 'Hi!', rejected: 'Go away.', chosenSide: 'tuned', baseRepo: MODEL_REPO, tunedLabel: 'tiny-llama LoRA r8', createdAt: 1_700_000_400_000 },
  { prompt: 'Count to two', chosen: '1, 2', rejected: '2, 1', chosenSide: 'base', baseRepo: MODEL_REPO, tunedLabel: 'tiny-llama LoRA r8', createdAt: 1_700_000_500_000 },
];
export const DATASET_ID = 'ds-lq2x-0011223344556677';
export const DATASET_TEXT = [
  '{"instruction": "One", "output": "1"}',
  '{"instruction": "Two", "output": ""}',
  '{"instruction": "Three", "output": "3"}',
].join('\n');
export const DATASET_EDITS: [number, unknown][] = [
  [1, { fields: { kind: 'alpaca', instruction: 'Two', input: '', output: '2', system: '', history: 0 }, removed: false }],
  [2, { fields: { kind: 'alpaca', instruction: 'Three, edited', input: '', output: '3', system: '', history: 0 }, removed: true }],
];
export const HUB_SETTINGS = { endpoint: 'https://hub.example.org/mirror', rememberToken: true, token: 'hf_secret' };

function modelRecords(repo: string, files: Record<string, Uint8Array>, partial?: { stored: number; expected: number }): LegacyRecord[] {
  const out: LegacyRecord[] = [
    { store: 'models', value: { repo, revision: REVISION, createdAt: 1_600_000_000_000, updatedAt: 1_600_000_001_000, complete: !partial, ...(partial ? {} : { downloadedAt: 1_600_000_001_000 }) } },
  ];
  for (const [path, data] of Object.entries(files)) {
    const stored = partial ? data.subarray(0, partial.stored) : data;
    out.push({
      store: 'files',
      value: { repo, revision: REVISION, path, size: stored.length, expectedSize: data.length, ...(partial ? {} : { sha256: `sha-${path}` }), complete: !partial, chunkSize: CHUNK },
    });
    chunksOf(stored, CHUNK).forEach((c, i) => out.push({ store: 'chunks', value: c, key: [repo, REVISION, path, i] }));
  }
  return out;
}

/** Every legacy database's records, as the code of that time wrote them. */
export function legacyRecords(): Record<string, LegacyRecord[]> {
  const checkpoints: LegacyRecord[] = [];
  for (const [stepText, files] of Object.entries(CHECKPOINTS)) {
    const step = Number(stepText);
    const listed = Object.entries(files).map(([name, data]) => {
      const chunks = chunksOf(data, CHUNK);
      chunks.forEach((c, i) => checkpoints.push({ store: 'chunks', value: c, key: [RUN_ID, step, name, i] }));
      return { name, size: data.length, chunks: chunks.length };
    });
    checkpoints.push({ store: 'checkpoints', value: { run: RUN_ID, step, files: listed, savedAt: 1_700_000_050_000 + step }, key: [RUN_ID, step] });
  }
  return {
    'graft-models': [
      ...modelRecords(MODEL_REPO, MODEL_FILES),
      ...modelRecords(PARTIAL_REPO, { 'model.safetensors': PARTIAL_FILE }, { stored: PARTIAL_STORED, expected: PARTIAL_FILE.length }),
    ],
    'graft-tuned-models': modelRecords(TUNED_REPO, TUNED_FILES),
    'graft-checkpoints': checkpoints,
    'graft-workbench': [
      { store: 'runs', value: RUN },
      { store: 'adapters', value: ADAPTER },
      { store: 'tuned', value: TUNED_ROW },
      ...PREFERENCES.map((p) => ({ store: 'preferences', value: p })),
    ],
    'graft-datasets': [
      { store: 'files', value: { id: DATASET_ID, name: 'three.jsonl', bytes: new TextEncoder().encode(DATASET_TEXT), savedAt: 1_700_000_000_500 } },
      { store: 'edits', value: { id: DATASET_ID, edits: DATASET_EDITS } },
    ],
    'graft-settings': [{ store: 'settings', value: HUB_SETTINGS, key: 'hub' }],
  };
}

// ---- writing them ---------------------------------------------------------------------------------------------

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Creates a legacy database at version 1 with its recorded stores, and writes the records (add, as new rows). */
export async function writeLegacyDatabase(factory: IDBFactory, name: string, records: LegacyRecord[]): Promise<void> {
  const req = factory.open(name, 1);
  req.onupgradeneeded = () => {
    for (const s of LEGACY_LAYOUT[name]!) {
      const params: IDBObjectStoreParameters = {};
      if (s.keyPath !== undefined) params.keyPath = s.keyPath;
      if (s.autoIncrement) params.autoIncrement = true;
      const store = req.result.createObjectStore(s.name, params);
      for (const i of s.indexes ?? []) store.createIndex(i.name, i.keyPath);
    }
  };
  const db = await request(req);
  try {
    for (const r of records) {
      const tx = db.transaction(r.store, 'readwrite');
      await request(r.key === undefined ? tx.objectStore(r.store).add(r.value) : tx.objectStore(r.store).add(r.value, r.key));
    }
  } finally {
    db.close();
  }
}

/** The databases of a browser that used Graft before: all six, filled. */
export async function writeLegacyDatabases(factory: IDBFactory): Promise<Record<string, LegacyRecord[]>> {
  const all = legacyRecords();
  for (const [name, records] of Object.entries(all)) await writeLegacyDatabase(factory, name, records);
  return all;
}

export async function databaseNames(factory: IDBFactory): Promise<string[]> {
  return (await factory.databases()).map((d) => d.name!).sort();
}
