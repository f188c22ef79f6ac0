// `graft train` / `generate` / `info` with adapters and datasets from the hub (the local test hub, no network),
// and continuing a saved bottleneck adapter, run in this process (main() with the arguments, environment and
// working folder of the command; test/helpers/graft-in-process.ts) on one GPU device for the file, so that the
// fifteen commands compile their kernels once, not each in a child process of its own:
// - a LoRA adapter repo (at a revision) is downloaded into GRAFT_CACHE with progress, continues training to
//   exactly the losses of the same adapter from a local folder, and generate then reads it from the cache with no
//   request and generates the folder's tokens;
//   a folder of the same spelling wins (with a note naming hf://), and an unknown repo fails naming it;
// - a hub dataset trains to exactly the losses of the same file read locally (sft, and dpo pairs);
// - continuing a bottleneck adapter saved at step 3 of a run gives, at its first step, the loss the run had at
//   step 4 (the same weights on the same batch: one batch per step, constant rate), using the adapter's own
//   placement, size and non-linearity over the job's; a LoRA folder or an adapter for another model is refused.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lines, REPO_ROOT } from './run';
import { graftInProcess as graft } from '../helpers/graft-in-process';
import { TestHub } from '../helpers/test-hub';
import { ALPACA, FIXTURE } from '../train/helpers';


const DPO = 'test/fixtures/data/dpo.json';
const scratch = mkdtempSync(join(tmpdir(), 'graft-cli-hub-'));
const cache = join(scratch, 'cache');
let hub: TestHub;
beforeAll(async () => {
  hub = await TestHub.start({ datasetTreeApi: true });
});
afterAll(async () => {
  await hub.close();
  rmSync(scratch, { recursive: true, force: true });
});
const env = () => ({ HF_ENDPOINT: hub.endpoint, GRAFT_CACHE: cache, HF_TOKEN: undefined });

/** Two records, one batch per step, a constant rate: every step sees the same batch. */
const FAST = ['--model', FIXTURE, '--dataset', ALPACA, '--cutoff_len', '64', '--max_samples', '2', '--per_device_train_batch_size', '2', '--learning_rate', '1e-2', '--lr_scheduler_type', 'constant'];
const losses = (dir: string) => lines(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).map((l) => (JSON.parse(l) as { loss: number }).loss);
const adapterFiles = (dir: string) => ({
  'adapter_config.json': new Uint8Array(readFileSync(join(dir, 'adapter_config.json'))),
  'adapter_model.safetensors': new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))),
});

describe('adapter_name_or_path and --adapter from the hub', () => {
  it('downloads the adapter repo at its revision, trains exactly as from the folder, and reads it from the cache afterwards', async () => {
    const lora = join(scratch, 'lora');
    const first = await graft(['train', ...FAST, '--max_steps', '2', '--lora_rank', '2', '--output_dir', lora]);
    expect(first.code, first.graftStderr).toBe(0);
    hub.addModel('graft-test/lora-adapter', adapterFiles(lora), 'v1'); // only at v1: a run that ignored @v1 gets a 404

    const fromHub = join(scratch, 'from-hub');
    const h = await graft(['train', ...FAST, '--max_steps', '2', '--lora_rank', '4', '--adapter_name_or_path', 'graft-test/lora-adapter@v1', '--output_dir', fromHub], { env: env() });
    expect(h.code, h.graftStderr).toBe(0);
    expect(h.graftStderr).toMatch(/downloading adapter_model\.safetensors/);
    expect(h.graftStderr).toMatch(/training continues the adapter graft-test\/lora-adapter@v1 with its own settings \(lora_rank 4 → 2/);
    const cached = join(cache, 'models--graft-test--lora-adapter', 'v1', 'files', 'adapter_model.safetensors');
    expect(readFileSync(cached).equals(readFileSync(join(lora, 'adapter_model.safetensors')))).toBe(true);
    // LLaMA-Factory's job names the repo (it has no @revision).
    expect(readFileSync(join(fromHub, 'train.yaml'), 'utf8')).toMatch(/^adapter_name_or_path: graft-test\/lora-adapter( +#.*)?$/m);

    const fromFolder = join(scratch, 'from-folder');
    const f = await graft(['train', ...FAST, '--max_steps', '2', '--lora_rank', '4', '--adapter_name_or_path', lora, '--output_dir', fromFolder]);
    expect(f.code, f.graftStderr).toBe(0);
    expect(losses(fromHub)).toEqual(losses(fromFolder));
    // It continued the trained adapter: its first loss is below the first run's loss after one step.
    expect(losses(fromHub)[0]!).toBeLessThan(losses(lora)[1]!);

    // Complete in the cache: generate reads it with no request at all, and generates what the folder generates.
    hub.clearRequests();
    const gen = async (adapter: string) => {
      const g = await graft(['generate', '--model', FIXTURE, '--adapter', adapter, '--prompt', 'Hello', '--greedy', '-n', '6', '--ignore-eos', '--json'], { env: env() });
      expect(g.code, g.graftStderr).toBe(0);
      return (JSON.parse(g.stdout) as { new_ids: number[] }).new_ids;
    };
    const hubIds = await gen('graft-test/lora-adapter@v1');
    expect(hub.requests).toEqual([]);
    expect(hubIds).toEqual(await gen(lora));

    // A folder with the repo's spelling wins, and the note says how to mean the hub.
    const work = join(scratch, 'cwd');
    mkdirSync(join(work, 'graft-test'), { recursive: true });
    cpSync(lora, join(work, 'graft-test', 'lora-adapter'), { recursive: true });
    const local = await graft(['info', '--model', join(REPO_ROOT, FIXTURE), '--adapter', 'graft-test/lora-adapter', '--json'], { env: env(), cwd: work });
    expect(local.code, local.graftStderr).toBe(0);
    expect(local.graftStderr).toMatch(/--adapter graft-test\/lora-adapter is the folder .*; write hf:\/\/graft-test\/lora-adapter for the hub repository/);
    expect(hub.requests).toEqual([]);
    // hf:// means the hub: main has no such adapter.
    const forced = await graft(['info', '--model', join(REPO_ROOT, FIXTURE), '--adapter', 'hf://graft-test/lora-adapter', '--json'], { env: env(), cwd: work });
    expect(forced.code).not.toBe(0);
    expect(forced.graftStderr).toMatch(/No such adapter or file: adapter_config\.json of graft-test\/lora-adapter \(revision main\)/);

    const bad = await graft(['info', '--model', FIXTURE, '--adapter', 'not-a-folder'], { env: env() });
    expect(bad.code).not.toBe(0);
    expect(bad.graftStderr).toMatch(/--adapter not-a-folder is neither an adapter folder nor a hub adapter id like "owner\/name"/);
  });
});

describe('--dataset from the hub', () => {
  it('trains on a hub dataset exactly as on the same file read locally', async () => {
    hub.addModel('datasets/graft-test/alpaca', { 'data/train.json': new Uint8Array(readFileSync(join(REPO_ROOT, ALPACA))), 'README.md': new TextEncoder().encode('# alpaca\n') });
    const common = ['--model', FIXTURE, '--cutoff_len', '64', '--max_samples', '4', '--per_device_train_batch_size', '2', '--learning_rate', '1e-2', '--lora_rank', '2', '--max_steps', '2'];
    const fromHub = join(scratch, 'ds-hub');
    const h = await graft(['train', ...common, '--dataset', 'graft-test/alpaca', '--output_dir', fromHub], { env: env() });
    expect(h.code, h.graftStderr).toBe(0);
    expect(h.graftStderr).toMatch(/dataset graft-test\/alpaca: downloading data\/train\.json \(1\/1\)/);
    expect(h.graftStderr).toMatch(/4 training sequences/);
    const local = join(scratch, 'ds-local');
    const l = await graft(['train', ...common, '--dataset', ALPACA, '--output_dir', local]);
    expect(l.code, l.graftStderr).toBe(0);
    expect(losses(fromHub)).toHaveLength(2);
    expect(losses(fromHub)).toEqual(losses(local));


    // Preference pairs (stage dpo) from the hub: the same losses as the local file.
    hub.addModel('datasets/graft-test/pairs', { 'train.json': new Uint8Array(readFileSync(join(REPO_ROOT, DPO))) });
    const dpo = ['--stage', 'dpo', ...common];
    const pairsHub = join(scratch, 'dpo-hub');
    const ph = await graft(['train', ...dpo, '--dataset', 'graft-test/pairs', '--output_dir', pairsHub], { env: env() });
    expect(ph.code, ph.graftStderr).toBe(0);
    expect(ph.graftStderr).toMatch(/dataset graft-test\/pairs: downloading train\.json/);
    const pairsLocal = join(scratch, 'dpo-local');
    const pl = await graft(['train', ...dpo, '--dataset', DPO, '--output_dir', pairsLocal]);
    expect(pl.code, pl.graftStderr).toBe(0);
    expect(losses(pairsHub)).toHaveLength(2);
    expect(losses(pairsHub)).toEqual(losses(pairsLocal));
  });
});

describe('continuing a bottleneck adapter (finetuning_type adapter + adapter_name_or_path)', () => {
  it('starts from the saved adapter with its own settings: the first loss is the uninterrupted run’s next loss', async () => {
    const run = join(scratch, 'bn-run');
    const a = await graft(
      ['train', ...FAST, '--finetuning_type', 'adapter', '--adapter_placement', 'houlsby', '--reduction_factor', '8', '--adapter_non_linearity', 'silu', '--max_steps', '4', '--save_steps', '3', '--output_dir', run],
    );
    expect(a.code, a.graftStderr).toBe(0);
    const full = losses(run);
    expect(full).toHaveLength(4);

    const cont = join(scratch, 'bn-continue');
    const saved = join(run, 'checkpoint-3');
    const b = await graft(['train', ...FAST, '--finetuning_type', 'adapter', '--adapter_name_or_path', saved, '--max_steps', '1', '--output_dir', cont]);
    expect(b.code, b.graftStderr).toBe(0);
    expect(b.graftStderr).toMatch(/with its own settings \(adapter_placement pfeiffer → houlsby, reduction_factor 16 → 8, adapter_non_linearity relu → silu\)/);
    // 2 layers × 2 sites × (down 8×64 + 8 + up 64×8 + 64) = 4,384 (a fresh pfeiffer/16 adapter would have 1,096)
    expect(b.graftStderr).toMatch(/adapter on LlamaForCausalLM \(4,384 trainable parameters\)/);
    const next = losses(cont)[0]!;
    expect(Math.abs(next - full[3]!)).toBeLessThan(1e-5 * Math.abs(full[3]!));
    expect(full[0]! - next).toBeGreaterThan(0.1); // a fresh adapter would start near full[0]
    expect(JSON.parse(readFileSync(join(cont, 'adapter_config.json'), 'utf8'))).toMatchObject({ placement: 'houlsby', reduction_factor: 8, non_linearity: 'silu' });

    // An adapter made for another model is refused, naming both shapes.
    const other = join(scratch, 'bn-other');
    cpSync(saved, other, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(other, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(other, 'adapter_config.json'), JSON.stringify({ ...cfg, hidden_size: 128, bottleneck_size: 16 }));
    const wrong = await graft(['train', ...FAST, '--finetuning_type', 'adapter', '--adapter_name_or_path', other, '--max_steps', '1', '--output_dir', join(scratch, 'bn-wrong')]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.graftStderr).toMatch(/made for a model with hidden_size 128 and 2 layers.*this LlamaForCausalLM has hidden_size 64/);

    // A LoRA folder is not a bottleneck adapter.
    const lora = join(scratch, 'bn-lora');
    const l = await graft(['train', ...FAST, '--max_steps', '1', '--lora_rank', '2', '--output_dir', lora]);
    expect(l.code, l.graftStderr).toBe(0);
    const mixed = await graft(['train', ...FAST, '--finetuning_type', 'adapter', '--adapter_name_or_path', lora, '--max_steps', '1', '--output_dir', join(scratch, 'bn-mixed')]);
    expect(mixed.code).not.toBe(0);
    expect(mixed.graftStderr).toMatch(/adapter_name_or_path: is a LoRA adapter; continue it with finetuning_type "lora"/);
  });
});
