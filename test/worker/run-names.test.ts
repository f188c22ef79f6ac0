// Runs and results have names of their own (src/worker/files.ts uniqueLabel, runs.ts, library.ts), in Node with
// fake-indexeddb and no GPU: two demo runs are "Built-in demo" and "Built-in demo 2" (the runs here fail before
// the GPU, at their dataset; a finished run is written into the runs store as the app keeps one); an adapter imported without a name is named after its
// file without "(imported)", which the lists add once (resultChoiceText); renaming a result renames the run that
// made it, keeps names unique, and names the exported files.
import 'fake-indexeddb/auto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zipFiles } from '../../src/export/zip';
import type { ModelStore } from '../../src/hub/store';
import { NodeFolderStore } from '../../src/hub/store-node';
import { writeSafetensors } from '../../src/model/safetensors';
import { resultChoiceText } from '../../src/worker/adapter-kinds';
import { DEMO_MODEL_FILES, DEMO_REPO } from '../../src/worker/constants';
import { fileStem, uniqueLabel } from '../../src/worker/files';
import type { RunRecord } from '../../src/worker/protocol';
import { openWorkbenchDb } from '../../src/worker/workbench-db';
import { createTrainServices, type TrainServices } from '../../src/worker/train-api';

const ROOT = join(import.meta.dirname, '..', '..');
const DEMO_DIR = join(ROOT, 'public/demo/model');

/** A completed run as the runs store keeps it (its label and id set per test). */
const DONE_RUN: Omit<RunRecord, 'id' | 'label'> = {
  repo: DEMO_REPO,
  revision: 'main',
  datasetId: 'demo',
  datasetName: 'demo_qa.json',
  input: { finetuning_type: 'lora' },
  finetuningType: 'lora',
  status: 'completed',
  step: 2,
  totalSteps: 2,
  createdAt: 1,
  updatedAt: 1,
  metrics: [],
  evalMetrics: [],
};

let dir: string;
let service: TrainServices;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'graft-run-names-'));
  const models: ModelStore = new NodeFolderStore({ dir: join(dir, 'models') });
  const files = new Map(DEMO_MODEL_FILES.map((f) => [f, new Uint8Array(readFileSync(join(DEMO_DIR, f)))]));
  await models.planFiles(DEMO_REPO, 'main', [...files].map(([path, bytes]) => ({ path, expectedSize: bytes.length })));
  for (const [path, bytes] of files) {
    const w = await models.openWriter(DEMO_REPO, 'main', path, { resume: false });
    await w.append(bytes);
    await w.complete();
  }
  await models.markComplete(DEMO_REPO, 'main');
  const noGpu = () => Promise.reject(new Error('these tests use no GPU'));
  service = createTrainServices({ gpu: noGpu, unloadChatModel: async () => undefined, models, tunedModels: new NodeFolderStore({ dir: join(dir, 'tuned') }) } as unknown as Parameters<typeof createTrainServices>[0]);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A LoRA adapter folder for the demo model (r 2 on layer 0's q_proj), zipped as `name`. */
function loraZip(name: string): { name: string; bytes: Uint8Array; mime: string } {
  const config = new TextEncoder().encode(JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'], base_model_name_or_path: DEMO_REPO }));
  const weights = writeSafetensors([
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', dtype: 'F32', shape: [2, 64], data: new Float32Array(128).fill(0.01) },
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', dtype: 'F32', shape: [64, 2], data: new Float32Array(128) },
  ]);
  return { name, bytes: zipFiles(new Map([['adapter_config.json', config], ['adapter_model.safetensors', weights]])), mime: 'application/zip' };
}

describe('uniqueLabel', () => {
  it('keeps a free name, and numbers a taken one from 2', () => {
    expect(uniqueLabel('Built-in demo', [])).toBe('Built-in demo');
    expect(uniqueLabel('Built-in demo', ['Built-in demo'])).toBe('Built-in demo 2');
    expect(uniqueLabel(' Built-in  demo ', ['built-in demo', 'Built-in demo 2'])).toBe('Built-in demo 3');
    expect(uniqueLabel('   ', [])).toBe('Run');
    // Different names make different file names.
    expect(fileStem(uniqueLabel('Built-in demo', ['Built-in demo']))).toBe('Built-in-demo-2');
  });
});

describe('the names of runs and results', () => {
  it('names each run of the demo apart; a run that failed before its first checkpoint leaves its name free', async () => {
    // A finished demo run, as the runs store keeps it.
    const db = await openWorkbenchDb();
    await db.put('runs', { ...DONE_RUN, id: 'run-done', label: 'Built-in demo' });
    const start = () => service.startTraining({ repo: DEMO_REPO, datasetId: 'no-such-dataset', input: { finetuning_type: 'full', max_steps: 2 }, demo: true, label: 'Built-in demo' });
    const second = await start();
    expect([second.status, second.error?.code, second.run.label]).toEqual(['failed', 'no-dataset', 'Built-in demo 2']);
    // It failed at its dataset, with no checkpoint: the next run may have its name.
    expect((await start()).run.label).toBe('Built-in demo 2');
    await db.put('runs', { ...DONE_RUN, id: 'run-done-2', label: 'Built-in demo 2' });
    expect((await start()).run.label).toBe('Built-in demo 3');
  });

  it('names an imported adapter after its file, says "(imported)" once, and keeps names unique', async () => {
    const a = await service.importAdapter([loraZip('my-adapter.zip')], DEMO_REPO);
    const b = await service.importAdapter([loraZip('my-adapter.zip')], DEMO_REPO);
    expect([a.label, b.label, a.origin]).toEqual(['my-adapter', 'my-adapter 2', 'import']);
    expect(resultChoiceText(a)).toBe(`my-adapter — LoRA adapter on ${DEMO_REPO} (imported)`);
    // One imported before: its name already says it.
    expect(resultChoiceText({ ...a, label: 'old-adapter (imported)' })).toBe(`old-adapter (imported) — LoRA adapter on ${DEMO_REPO}`);
    // A name given at import is kept, unless taken.
    const c = await service.importAdapter([loraZip('x.zip')], DEMO_REPO, 'main', 'Built-in demo');
    expect(c.label).toBe('Built-in demo 3');
    for (const e of [a, b, c]) await service.deleteTuned(e.ref);
  });

  it('renames a result and the run that made it, unique among the others, and exports under the new name', async () => {
    const a = await service.importAdapter([loraZip('first.zip')], DEMO_REPO);
    const b = await service.importAdapter([loraZip('second.zip')], DEMO_REPO);
    // The adapter of the finished demo run: an adapter row with its run's id.
    const db = await openWorkbenchDb();
    const row = (await db.get('adapters', (a.ref as { id: string }).id))!;
    await db.put('adapters', { ...row, id: 'adapter-of-run', origin: 'run', runId: 'run-done', label: 'Built-in demo' });
    const fromRun = await service.renameTuned({ kind: 'adapter', id: 'adapter-of-run' }, '  Answers  v1 ');
    expect(fromRun.label).toBe('Answers v1');
    expect((await service.listTuned()).find((e) => e.ref.kind === 'adapter' && e.ref.id === 'adapter-of-run')?.label).toBe('Answers v1');
    expect((await service.listRuns()).find((r) => r.id === 'run-done')?.label).toBe('Answers v1');
    // Renaming to its own name changes nothing; to another result's or run's (any case) numbers it.
    expect((await service.renameTuned(fromRun.ref, 'Answers v1')).label).toBe('Answers v1');
    expect((await service.renameTuned(b.ref, 'answers v1')).label).toBe('answers v1 2');
    expect((await service.renameTuned(b.ref, 'Built-in demo 2')).label).toBe('Built-in demo 2 2');
    await expect(service.renameTuned(b.ref, '   ')).rejects.toThrow(/cannot be empty/);
    const [zip] = await service.exportAdapter('adapter-of-run', 'zip');
    expect(zip!.name).toBe('Answers-v1-adapter.zip');
    for (const e of [a, b, fromRun]) await service.deleteTuned(e.ref);
  });
});
