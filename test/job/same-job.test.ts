// One job layer under both entry points (src/job/run.ts): the same job run through `graft train` (the command's
// function, in this process) and through the app's worker services (in Node: fake-indexeddb, folder stores,
// Dawn or SwiftShader) writes byte-identical result files — the LoRA and bottleneck adapter folders, and a full
// fine-tune's model.safetensors.
// Both run on the process's one GPU device (test/helpers/one-device.ts: the command's openGpu is given a fresh
// context on it, as testContext is), so the six runs compile their kernels once, not once per command.
import 'fake-indexeddb/auto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommand } from '../../src/cli/args';
import { runTrain } from '../../src/cli/train';
import { trainSpec } from '../../src/cli/train-spec';
import { NodeFolderStore } from '../../src/hub/store-node';
import { datasets } from '../../src/worker/datasets';
import { putModelFiles } from '../../src/worker/library';
import { createTrainServices, type TrainServices } from '../../src/worker/train-api';
import { testContext } from '../helpers/gpu';


const FIXTURE = 'test/fixtures/tiny-llama';
const DATA = 'test/fixtures/data/sft_alpaca.json';
const REPO = 'test/tiny-llama';
const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const RUN = { max_steps: 2, per_device_train_batch_size: 4, cutoff_len: 48, learning_rate: 1e-2, lr_scheduler_type: 'constant', save_steps: 50, seed: 3 };
const METHODS: Record<string, Record<string, unknown>> = {
  lora: { finetuning_type: 'lora', lora_rank: 4, lora_alpha: 8, lora_dropout: 0.1 },
  adapter: { finetuning_type: 'adapter', reduction_factor: 8, adapter_non_linearity: 'gelu' },
  full: { finetuning_type: 'full' },
};

let dir: string;
let service: TrainServices;
let datasetId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'graft-same-job-'));
  // The CLI finds REPO complete in its cache (no network); the worker reads the same folder store.
  const cache = new NodeFolderStore({ dir: join(dir, 'cache') });
  await putModelFiles(cache, REPO, 'main', new Map(FILES.map((f) => [f, new Uint8Array(readFileSync(join(FIXTURE, f)))])));
  service = createTrainServices({ gpu: testContext, unloadChatModel: async () => undefined, models: cache, tunedModels: new NodeFolderStore({ dir: join(dir, 'tuned') }) });
  datasetId = (await datasets.openBytes(readFileSync(DATA), 'sft_alpaca.json')).id;
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `graft train` with the settings as flags; returns its output_dir. */
async function trainWithCli(method: string): Promise<string> {
  const out = join(dir, `cli-${method}`);
  const argv = ['--model', REPO, '--dataset', DATA, '--output_dir', out];
  for (const [k, v] of Object.entries({ ...METHODS[method], ...RUN })) argv.push(`--${k}`, String(v));
  let stderr = '';
  const sink = { write: (s: string) => ((stderr += s), true) };
  const code = await runTrain(parseCommand(trainSpec, argv), { env: { GRAFT_CACHE: join(dir, 'cache') }, stdout: { write: () => true }, stderr: sink, signal: new AbortController().signal });
  expect(code, stderr).toBe(0);
  return out;
}

/** The same job through the worker's services; returns the result's files by name. */
async function trainWithWorker(method: string): Promise<Map<string, Uint8Array>> {
  const outcome = await service.startTraining({ repo: REPO, datasetId, input: { ...METHODS[method], ...RUN, dataset: 'sft_alpaca.json' } });
  expect(outcome.status, outcome.error?.message).toBe('completed');
  const ref = outcome.tuned!.ref;
  const zip = ref.kind === 'adapter' ? (await service.exportAdapter(ref.id, 'zip'))[0]! : await service.exportMergedModel(ref);
  return new Map(Object.entries(unzipSync(zip.bytes)).map(([path, bytes]) => [path.split('/').pop()!, bytes]));
}

describe('one job layer: graft train and the app write the same files', () => {
  for (const [method, names] of [
    ['lora', ['adapter_config.json', 'adapter_model.safetensors']],
    ['adapter', ['adapter_config.json', 'adapter_model.safetensors']],
    ['full', ['config.json', 'model.safetensors', 'tokenizer.json']],
  ] as const) {
    it(`${method}: ${names.join(', ')} byte for byte`, async () => {
      const cli = await trainWithCli(method);
      const app = await trainWithWorker(method);
      for (const name of names) {
        const a = new Uint8Array(readFileSync(join(cli, name)));
        const b = app.get(name);
        expect(b, `${name} is in the app's result`).toBeDefined();
        expect(Buffer.from(b!).equals(Buffer.from(a)), `${name} differs`).toBe(true);
      }
    });
  }
});
