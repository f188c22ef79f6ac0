// The worker's adapters of every kind (src/worker/train-api.ts's services in Node: fake-indexeddb for its
// IndexedDB, folder stores for the models, Dawn or SwiftShader for the GPU), on the built-in demo model:
//   - a run of each adapter method (lora, adapter = bottleneck, prompt) trains a few steps, is labelled with its
//     method, and is kept as an adapter of its kind whose exported folder (zip, or the two files) holds what
//     the trainer trained;
//   - generating with the kept adapter (compareGenerate names it per request) gives exactly the greedy tokens
//     that LoadedModel.loadAdapter gives in Node on the downloaded folder;
//   - the downloaded folder imports back as the same kind; onto a base model of another hidden size the
//     import fails with a sentence that names the model the adapter was made for;
//   - bottleneck and prompt-tuning runs refuse the merged model and the LLaMA-Factory job with a sentence;
//     a LoRA run writes its job;
//   - a kept bottleneck adapter continues (startAdapterId) from its own tensors and settings; a prompt-tuning one
//     is refused with a sentence.
import 'fake-indexeddb/auto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeFolderStore } from '../../src/hub/store-node';
import type { ModelStore } from '../../src/hub/store';
import { storeSource } from '../../src/model/source';
import { loadModel } from '../../src/model/load';
import { SafetensorsFile } from '../../src/model/safetensors';
import { methodOf } from '../../src/worker/adapter-kinds';
import { datasets } from '../../src/worker/datasets';
import { DEMO_MODEL_FILES, DEMO_REPO } from '../../src/worker/constants';
import type { FinetuningKind, TunedEntry } from '../../src/worker/protocol';
import { createTrainServices, type TrainServices } from '../../src/worker/train-api';
import { testContext } from '../helpers/gpu';

const ROOT = join(import.meta.dirname, '..', '..');
const DEMO_DIR = join(ROOT, 'public/demo/model');
const DEMO_CONFIG = JSON.parse(readFileSync(join(DEMO_DIR, 'config.json'), 'utf8')) as Record<string, unknown> & { hidden_size: number };
const OTHER_REPO = 'test/wider-tiny-llama';
const QUESTION = (JSON.parse(readFileSync(join(ROOT, 'public/demo/demo_qa.json'), 'utf8')) as { instruction: string }[])[0]!.instruction;

let dir: string;
let models: ModelStore;
let service: TrainServices;
let datasetId: string;

async function putModel(store: ModelStore, repo: string, files: Map<string, Uint8Array>): Promise<void> {
  await store.planFiles(repo, 'main', [...files].map(([path, bytes]) => ({ path, expectedSize: bytes.length })));
  for (const [path, bytes] of files) {
    const w = await store.openWriter(repo, 'main', path, { resume: false });
    await w.append(bytes);
    await w.complete();
  }
  await store.markComplete(repo, 'main');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'graft-train-adapters-'));
  models = new NodeFolderStore({ dir: join(dir, 'models') });
  const demo = new Map(DEMO_MODEL_FILES.map((f) => [f, new Uint8Array(readFileSync(join(DEMO_DIR, f)))]));
  await putModel(models, DEMO_REPO, demo);
  // A base of twice the hidden size (only its config.json is read when importing).
  const wider = new Map(demo);
  wider.set('config.json', new TextEncoder().encode(JSON.stringify({ ...DEMO_CONFIG, hidden_size: 2 * DEMO_CONFIG.hidden_size })));
  await putModel(models, OTHER_REPO, wider);
  service = createTrainServices({ gpu: testContext, unloadChatModel: async () => undefined, models, tunedModels: new NodeFolderStore({ dir: join(dir, 'tuned') }) });
  datasetId = (await datasets.openBytes(readFileSync(join(ROOT, 'public/demo/demo_qa.json')), 'demo_qa.json')).id;
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SETTINGS: Record<string, Record<string, unknown>> = {
  lora: { finetuning_type: 'lora', lora_rank: 4, lora_alpha: 8, learning_rate: 1e-2 },
  adapter: { finetuning_type: 'adapter', adapter_placement: 'houlsby', reduction_factor: 4, adapter_non_linearity: 'gelu', learning_rate: 1e-2 },
  prompt: { finetuning_type: 'prompt', num_virtual_tokens: 4, prompt_tuning_init: 'text', prompt_tuning_init_text: 'Answer:', learning_rate: 3e-2 },
};
const KIND = { lora: 'lora', adapter: 'bottleneck', prompt: 'prompt' } as const;
const RUN = { max_steps: 3, per_device_train_batch_size: 2, gradient_accumulation_steps: 1, cutoff_len: 64, lr_scheduler_type: 'constant', save_steps: 50, dataset: 'demo_qa.json' };
/** Each run's adapter and its downloaded folder, for the continuing tests. */
const kept: Partial<Record<'lora' | 'adapter' | 'prompt', { entry: TunedEntry; folder: Map<string, Uint8Array> }>> = {};

describe('methodOf', () => {
  it('names each of the five methods, and lora for none', () => {
    for (const t of ['lora', 'full', 'freeze', 'adapter', 'prompt']) expect(methodOf({ finetuning_type: t })).toBe(t);
    expect(methodOf({})).toBe('lora');
  });
});

describe.each(['lora', 'adapter', 'prompt'] as const)('a %s run in the worker', (method: FinetuningKind & keyof typeof KIND) => {
  let entry: TunedEntry;
  let folder: Map<string, Uint8Array>;

  it('trains, and keeps an adapter of its kind', async () => {
    const outcome = await service.startTraining({
      repo: DEMO_REPO,
      datasetId,
      input: { ...SETTINGS[method], ...RUN },
    });
    expect(outcome.error?.message ?? '').toBe('');
    expect(outcome.status).toBe('completed');
    expect(outcome.run.finetuningType).toBe(method);
    expect(outcome.run.label).toContain(` ${method} `);
    entry = outcome.tuned!;
    expect(entry.ref.kind).toBe('adapter');
    expect([entry.method, entry.adapterKind]).toEqual([method, KIND[method]]);
    expect(entry.detail).toMatch(
      { lora: /^LoRA adapter, r 4, alpha 8/, adapter: /^bottleneck adapter, houlsby .*reduction factor 4 \(size \d+\), gelu$/, prompt: /^prompt tuning, 4 virtual tokens \(started from a text\)$/ }[method],
    );
    expect((await service.listTuned()).map((e) => e.ref)).toContainEqual(entry.ref);
  }, 300_000);

  it('exports the folder of its kind, as a zip and as two files', async () => {
    const id = (entry.ref as { id: string }).id;
    const [zip] = await service.exportAdapter(id, 'zip');
    const suffix = { lora: '-adapter', adapter: '-bottleneck-adapter', prompt: '-prompt-tuning' }[method];
    expect(zip!.name.endsWith(`${suffix}.zip`)).toBe(true);
    const entries = Object.entries(unzipSync(zip!.bytes));
    expect(entries.map(([p]) => p).sort()).toEqual([`${zip!.name.slice(0, -4)}/adapter_config.json`, `${zip!.name.slice(0, -4)}/adapter_model.safetensors`]);
    folder = new Map(entries.map(([p, b]) => [p.split('/').pop()!, b]));
    kept[method] = { entry, folder };
    const files = await service.exportAdapter(id, 'files');
    for (const f of files) expect(f.bytes).toEqual(folder.get(f.name));
    const config = JSON.parse(new TextDecoder().decode(folder.get('adapter_config.json'))) as Record<string, unknown>;
    const weights = new SafetensorsFile(folder.get('adapter_model.safetensors')!, 'adapter_model.safetensors');
    const H = DEMO_CONFIG.hidden_size;
    if (method === 'lora') expect(config.peft_type).toBe('LORA');
    if (method === 'prompt') {
      expect([config.peft_type, config.num_virtual_tokens, config.prompt_tuning_init]).toEqual(['PROMPT_TUNING', 4, 'TEXT']);
      expect(weights.info('prompt_embeddings').shape).toEqual([4, H]);
    }
    if (method === 'adapter') {
      expect([config.adapter_type, config.placement, config.reduction_factor, config.non_linearity]).toEqual(['bottleneck', 'houlsby', 4, 'gelu']);
      // Up projections start at zero: trained ones are not.
      const up = weights.float32('layers.0.mlp_adapter.up.weight');
      expect(up.length).toBe((H * H) / 4);
      expect(up.some((x) => x !== 0)).toBe(true);
    }
  });

  it('generates with the kept adapter exactly as LoadedModel.loadAdapter does with the downloaded folder', async () => {
    const options = { chat: true, maxNewTokens: 8, greedy: true, stopAtEos: false };
    const page = await service.compareGenerate({ baseRepo: DEMO_REPO, tuned: entry.ref, prompt: QUESTION, options });
    const ctx = await testContext();
    const lm = await loadModel(ctx, storeSource(models, DEMO_REPO, 'main'));
    try {
      const name = await lm.loadAdapter({ name: 'downloaded', readFile: async (p) => folder.get(p) }, 'downloaded');
      const node = await lm.generate(lm.chatPromptIds(QUESTION), { maxNewTokens: 8, greedy: true, stopAtEos: false, adapter: name });
      expect(page.newIds).toEqual(node.newIds);
      expect(page.newIds).toHaveLength(8);
    } finally {
      lm.dispose();
    }
  }, 120_000);

  it('imports the folder back as its kind, and refuses a base of another hidden size', async () => {
    const files = [{ name: 'x.zip', bytes: (await service.exportAdapter((entry.ref as { id: string }).id, 'zip'))[0]!.bytes, mime: 'application/zip' }];
    const back = await service.importAdapter(files, DEMO_REPO, 'main', `${method} back`);
    expect([back.method, back.adapterKind, back.origin, back.label]).toEqual([method, KIND[method], 'import', `${method} back`]);
    const wrong = await service.importAdapter(files, OTHER_REPO, 'main').then(() => '', (e: unknown) => (e instanceof Error ? e.message : String(e)));
    // Each kind's reader names what does not fit and the model the adapter was made for.
    expect(wrong).toMatch(/cannot be used: .*made for .*graft\/demo-tiny-llama/);
    await service.deleteTuned(back.ref);
  });

  it(method === 'lora' ? 'writes the LLaMA-Factory job and the merged model' : 'refuses the LLaMA-Factory job and the merged model with a sentence', async () => {
    const runId = entry.runId!;
    if (method === 'lora') {
      const job = await service.exportLlamaFactoryJob(runId);
      const yaml = Object.entries(unzipSync(job.bytes)).find(([p]) => p.endsWith('train.yaml'))!;
      expect(new TextDecoder().decode(yaml[1])).toMatch(/^finetuning_type: lora$/m);
      expect((await service.exportMergedModel(entry.ref)).name).toMatch(/-merged\.zip$/);
      return;
    }
    await expect(service.exportLlamaFactoryJob(runId)).rejects.toThrow(method === 'adapter' ? /^LLaMA-Factory has no bottleneck adapters/ : /^LLaMA-Factory has no prompt tuning/);
    await expect(service.exportMergedModel(entry.ref)).rejects.toThrow(method === 'adapter' ? /adds layers to the model/ : /virtual tokens/);
  }, 60_000);
});

describe('continuing a kept adapter', () => {
  it('continues a bottleneck adapter from its tensors, with its own placement and size', async () => {
    const from = kept.adapter!;
    // The job asks for the defaults (pfeiffer, reduction factor 16); a step this small leaves the tensors as they were.
    const outcome = await service.startTraining({ repo: DEMO_REPO, datasetId, startAdapterId: (from.entry.ref as { id: string }).id, input: { finetuning_type: 'adapter', learning_rate: 1e-9, ...RUN, max_steps: 1 } });
    expect(outcome.error?.message ?? '').toBe('');
    expect(outcome.tuned!.detail).toMatch(/^bottleneck adapter, houlsby .*reduction factor 4 .*gelu$/);
    const [zip] = await service.exportAdapter((outcome.tuned!.ref as { id: string }).id, 'zip');
    const after = new SafetensorsFile(new Map(Object.entries(unzipSync(zip!.bytes)).map(([p, b]) => [p.split('/').pop()!, b])).get('adapter_model.safetensors')!, 'after');
    const before = new SafetensorsFile(from.folder.get('adapter_model.safetensors')!, 'before');
    expect(after.names).toEqual(before.names);
    for (const name of before.names) {
      const a = after.float32(name);
      const b = before.float32(name);
      let worst = 0;
      for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      expect(worst, name).toBeLessThan(1e-6);
    }
  }, 120_000);

  it('does not continue a prompt-tuning adapter, and says so', async () => {
    const outcome = await service.startTraining({ repo: DEMO_REPO, datasetId, startAdapterId: (kept.prompt!.entry.ref as { id: string }).id, input: { finetuning_type: 'prompt', learning_rate: 1e-2, ...RUN } });
    expect(outcome.status).toBe('failed');
    expect(outcome.error!.message).toMatch(/^Only LoRA and bottleneck adapters can be trained further; ".*" is a prompt-tuning adapter\. Start without it\.$/);
  });

  it('refuses a reward model run with bottleneck adapters before it loads anything', async () => {
    const outcome = await service.startTraining({ repo: DEMO_REPO, datasetId, input: { stage: 'rm', finetuning_type: 'adapter', learning_rate: 1e-2, ...RUN } });
    expect([outcome.status, outcome.error!.code]).toEqual(['failed', 'bad-settings']);
    expect(outcome.error!.problems).toEqual([{ key: 'finetuning_type', message: expect.stringMatching(/cannot train a reward model/) }]);
  });
});
