// loadModel on the tiny-llama fixture folder: the reference greedy tokens exactly, streaming, the sharded layout,
// clear errors for broken folders, and PEFT adapters switched per call (checked against the DPO reference
// log-probs, which PyTorch computed with init_adapter on and off).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/context';
import { UnsupportedModelError } from '../../src/model/config';
import { loadModel, type LoadedModel, type LoadProgress } from '../../src/model/load';
import { linearModules } from '../../src/model/adapter';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors';
import { describeModel } from '../../src/model/info';
import { memorySource, ModelError, storeSource, type ModelSource } from '../../src/model/source';
import { HubError } from '../../src/hub/errors';
import { inferSeqlen } from '../../src/data/encode';
import { testContext } from '../helpers/gpu';
import { makeStore, STORE_KINDS } from '../hub/stores';

const dir = new URL('../fixtures/tiny-llama/', import.meta.url);
const reference = JSON.parse(readFileSync(new URL('reference/reference.json', dir), 'utf8')) as {
  greedy: { prompt_text: string; prompt_ids: number[]; new_ids: number[] };
  dpo: { policy_chosen_logps: number[]; policy_rejected_logps: number[]; reference_chosen_logps: number[]; reference_rejected_logps: number[] };
};
// The reference encodes DPO sequences by the SFT rule, truncated to cutoff_len 64 (see fixtures/README.md).
const DPO_CUTOFF = 64;
const dpoPairs = (JSON.parse(readFileSync(new URL('../fixtures/data/dpo.json', import.meta.url), 'utf8')) as { prompt: string; chosen: string; rejected: string }[]).slice(0, 2);

/** A ModelSource over a folder, as the CLI's would be. */
function folderSource(url: URL): ModelSource {
  const path = (p: string) => new URL(p, url);
  const isFile = (p: string) => existsSync(path(p)) && statSync(path(p)).isFile();
  return {
    name: url.pathname.replace(/\/$/, '').split('/').pop()!,
    async readFile(p) {
      return isFile(p) ? new Uint8Array(readFileSync(path(p))) : undefined;
    },
  };
}

function fixtureFiles(): Record<string, Uint8Array | string> {
  const out: Record<string, Uint8Array> = {};
  for (const f of readdirSync(dir)) if (statSync(new URL(f, dir)).isFile()) out[f] = new Uint8Array(readFileSync(new URL(f, dir)));
  return out;
}

/** model.safetensors split into two shards (tensors in reverse order, so the layout really differs) + index. */
function shardedFiles(): Record<string, Uint8Array | string> {
  const files = fixtureFiles();
  const st = new SafetensorsFile(files['model.safetensors'] as Uint8Array, 'model.safetensors');
  const names = [...st.names].reverse();
  const shard = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const weightMap: Record<string, string> = {};
  const out: Record<string, Uint8Array | string> = { ...files };
  delete out['model.safetensors'];
  [names.slice(0, 7), names.slice(7)].forEach((group, i) => {
    out[shard[i]!] = writeSafetensors(group.map((n) => ({ name: n, dtype: st.info(n).dtype, shape: st.info(n).shape, data: st.raw(n) })));
    for (const n of group) weightMap[n] = shard[i]!;
  });
  out['model.safetensors.index.json'] = JSON.stringify({ metadata: { total_size: st.bytes.length }, weight_map: weightMap });
  return out;
}

const without = (files: Record<string, Uint8Array | string>, ...drop: string[]) =>
  Object.fromEntries(Object.entries(files).filter(([k]) => !drop.includes(k)));

async function failure(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, 'should have thrown').toBeInstanceOf(Error);
  return e as Error;
}

/** Sum of log p(token) over `ids` after `prefix`, by feeding one token at a time through the KV cache. */
async function logProb(m: LoadedModel, prefix: number[], ids: number[]): Promise<number> {
  const cache = m.model.createKvCache(prefix.length + ids.length);
  try {
    let logits = await m.model.forwardCached(prefix, cache);
    let sum = 0;
    for (const id of ids) {
      let max = -Infinity;
      for (const v of logits) max = Math.max(max, v);
      let z = 0;
      for (const v of logits) z += Math.exp(v - max);
      sum += logits[id]! - max - Math.log(z);
      logits = await m.model.forwardCached([id], cache);
    }
    return sum;
  } finally {
    cache.release();
  }
}

describe('loadModel on the tiny-llama fixture', () => {
  let ctx: GpuContext;
  let m: LoadedModel;
  const progress: LoadProgress[] = [];

  beforeAll(async () => {
    ctx = await testContext();
    m = await loadModel(ctx, folderSource(dir), { onProgress: (p) => progress.push(p) });
  });

  it('reads config, tokenizer, template and weights, reporting progress', async () => {
    expect(m.config.architecture).toBe('LlamaForCausalLM');
    expect(m.tokenizer.eosTokenIds).toEqual([2]);
    expect(m.template.origin).toBe('tokenizer_config.json');
    expect(m.adapters).toEqual([]);
    expect(m.maxPositions).toBe(256);
    expect(m.info).toEqual(await describeModel(folderSource(dir)));
    const weightBytes = statSync(new URL('model.safetensors', dir)).size;
    const reads = progress.filter((p) => p.phase === 'read');
    const uploads = progress.filter((p) => p.phase === 'upload');
    expect(reads.at(-1)).toEqual({ phase: 'read', loadedBytes: weightBytes, totalBytes: weightBytes, file: 'model.safetensors' });
    expect(uploads.length).toBeGreaterThan(5);
    expect(progress.indexOf(uploads[0]!)).toBeGreaterThan(progress.indexOf(reads.at(-1)!));
    for (let i = 1; i < uploads.length; i++) expect(uploads[i]!.loadedBytes).toBeGreaterThanOrEqual(uploads[i - 1]!.loadedBytes);
    expect(uploads.at(-1)!.loadedBytes).toBe(uploads.at(-1)!.totalBytes);
  });

  it('greedy generation reproduces reference.json exactly, and the streamed text joins to the result', async () => {
    const prompt = m.chatPromptIds('What is LoRA?');
    expect(prompt).toEqual(reference.greedy.prompt_ids);
    expect(m.chatPromptIds([{ role: 'user', content: 'What is LoRA?' }])).toEqual(prompt);
    const deltas: string[] = [];
    const ids: number[] = [];
    const r = await m.generate(prompt, { maxNewTokens: 16, greedy: true, stopAtEos: false }, (id, d) => {
      ids.push(id);
      deltas.push(d);
    });
    expect(r.promptIds).toEqual(reference.greedy.prompt_ids);
    expect(r.newIds).toEqual(reference.greedy.new_ids);
    expect(r.stopReason).toBe('length');
    expect(ids).toEqual(r.newIds);
    expect(deltas.join('')).toBe(r.text);
    expect(r.text).toBe(m.tokenizer.decode(r.newIds, { skipSpecialTokens: true }));
    // temperature 0 means greedy too.
    expect((await m.generate(prompt, { maxNewTokens: 16, temperature: 0, stopAtEos: false })).newIds).toEqual(reference.greedy.new_ids);
  });

  it('the sharded layout gives the same logits and tokens', async () => {
    const events: LoadProgress[] = [];
    const s = await loadModel(ctx, memorySource('tiny-llama-sharded', shardedFiles()), { onProgress: (p) => events.push(p) });
    try {
      const reads = events.filter((p) => p.phase === 'read');
      expect(reads.map((p) => p.file)).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
      expect(reads[0]!.loadedBytes).toBeLessThan(reads[1]!.loadedBytes);
      expect(reads[1]!.loadedBytes).toBe(reads[1]!.totalBytes);
      expect(reads[0]!.totalBytes).toBe(reads[1]!.totalBytes); // known up front
      expect(s.info.files.map((f) => f.path)).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
      const prompt = s.chatPromptIds('What is LoRA?');
      const logitsOf = async (x: LoadedModel) => {
        const cache = x.model.createKvCache(prompt.length);
        try {
          return await x.model.forwardCached(prompt, cache);
        } finally {
          cache.release();
        }
      };
      expect(await logitsOf(s)).toEqual(await logitsOf(m));
      expect((await s.generate(prompt, { maxNewTokens: 16, greedy: true, stopAtEos: false })).newIds).toEqual(reference.greedy.new_ids);
    } finally {
      s.dispose();
    }
  });

  it('refuses prompts longer than the positions it was loaded with, before any work', async () => {
    const e = await failure(m.generate(reference.greedy.prompt_ids, { maxNewTokens: 250, greedy: true }));
    expect(e).toBeInstanceOf(ModelError);
    expect((e as ModelError).code).toBe('context-length');
    expect(e.message).toMatch(/16 tokens\) plus 250 new tokens is 266 positions, more than the 256/);
    const small = await loadModel(ctx, folderSource(dir), { maxPositions: 20 });
    try {
      expect(small.maxPositions).toBe(20);
      expect((await small.generate(reference.greedy.prompt_ids, { maxNewTokens: 4, greedy: true, stopAtEos: false })).newIds).toEqual(
        reference.greedy.new_ids.slice(0, 4),
      );
      await expect(small.generate(reference.greedy.prompt_ids, { maxNewTokens: 5, greedy: true })).rejects.toThrow(/more than the 20/);
    } finally {
      small.dispose();
    }
    await expect(m.generate([600], { maxNewTokens: 1 })).rejects.toThrow(/token id 600, outside this model's vocabulary of 512/);
    await expect(loadModel(ctx, folderSource(dir), { maxPositions: 0 })).rejects.toThrow(/maxPositions must be a positive whole number/);
  });

  describe('PEFT adapters', () => {
    const adapterDir = (n: string) => new URL(`reference/${n}/`, dir);

    it('init_adapter reproduces the DPO reference log-probs; the base model (adapter null) is restored exactly', async () => {
      const baseBefore = await m.generate(reference.greedy.prompt_ids, { maxNewTokens: 8, greedy: true, stopAtEos: false });
      expect(await m.loadAdapter(folderSource(adapterDir('init_adapter')))).toBe('init_adapter');
      expect(m.adapters).toEqual(['init_adapter']);
      // linearModules(cfg) names what the core calls its linear layers.
      expect([...linearModules(m.config).keys()]).toEqual(m.model.linearModules().map((l) => l.module));

      for (let i = 0; i < dpoPairs.length; i++) {
        const pair = dpoPairs[i]!;
        const prompt = m.chatPromptIds(pair.prompt);
        const answerIds = (answer: string) => {
          const full = m.tokenizer.encode(
            m.template.render([
              { role: 'user', content: pair.prompt },
              { role: 'assistant', content: answer },
            ]),
          );
          expect(full.slice(0, prompt.length)).toEqual(prompt);
          return full.slice(prompt.length);
        };
        // cutoff_len as LLaMA-Factory's pairwise processor applies it: the prompt and both answers share the budget.
        const [srcLen, tgtLen] = inferSeqlen(prompt.length, Math.max(answerIds(pair.chosen).length, answerIds(pair.rejected).length), DPO_CUTOFF);
        const check = async (answer: string, want: number, adapter: string | null) => {
          m.model.setAdapter(adapter === null ? null : m.getAdapter(adapter)!);
          const got = await logProb(m, prompt.slice(0, srcLen), answerIds(answer).slice(0, tgtLen));
          expect(Math.abs(got - want) / Math.abs(want), `${adapter ?? 'base'} pair ${i}: ${got} vs ${want}`).toBeLessThan(1e-4);
        };
        await check(pair.chosen, reference.dpo.policy_chosen_logps[i]!, 'init_adapter');
        await check(pair.rejected, reference.dpo.policy_rejected_logps[i]!, 'init_adapter');
        await check(pair.chosen, reference.dpo.reference_chosen_logps[i]!, null);
        await check(pair.rejected, reference.dpo.reference_rejected_logps[i]!, null);
      }

      const withAdapter = await m.generate(reference.greedy.prompt_ids, { maxNewTokens: 8, greedy: true, stopAtEos: false, adapter: 'init_adapter' });
      const baseAfter = await m.generate(reference.greedy.prompt_ids, { maxNewTokens: 8, greedy: true, stopAtEos: false, adapter: null });
      expect(baseAfter.newIds).toEqual(baseBefore.newIds);
      expect(baseAfter.newIds).toEqual(reference.greedy.new_ids.slice(0, 8));
      expect(withAdapter.newIds).not.toEqual(baseBefore.newIds);
    });

    it('final_adapter loads beside it under another name; calls pick adapters independently, even concurrently', async () => {
      expect(await m.loadAdapter(folderSource(adapterDir('final_adapter')), 'final')).toBe('final');
      expect(m.adapters.sort()).toEqual(['final', 'init_adapter']);
      const opts = { maxNewTokens: 6, greedy: true, stopAtEos: false };
      const p = reference.greedy.prompt_ids;
      const alone = {
        base: (await m.generate(p, opts)).newIds,
        init: (await m.generate(p, { ...opts, adapter: 'init_adapter' })).newIds,
        final: (await m.generate(p, { ...opts, adapter: 'final' })).newIds,
      };
      const together = await Promise.all([
        m.generate(p, { ...opts, adapter: 'final' }),
        m.generate(p, opts),
        m.generate(p, { ...opts, adapter: 'init_adapter' }),
      ]);
      expect(together.map((r) => r.newIds)).toEqual([alone.final, alone.base, alone.init]);
      await expect(m.generate(p, { ...opts, adapter: 'nope' })).rejects.toThrow(/No adapter named "nope" is loaded; loaded: "init_adapter", "final"/);
      m.unloadAdapter('final');
      expect(m.adapters).toEqual(['init_adapter']);
      await expect(m.generate(p, { ...opts, adapter: 'final' })).rejects.toThrow(/No adapter named "final"/);
      expect((await m.generate(p, opts)).newIds).toEqual(alone.base);
    });

    it('a bad adapter is refused and leaves the model as it was', async () => {
      const files = Object.fromEntries(
        readdirSync(adapterDir('init_adapter')).map((f) => [f, new Uint8Array(readFileSync(new URL(f, adapterDir('init_adapter'))))]),
      );
      const cfg = JSON.parse(new TextDecoder().decode(files['adapter_config.json']));
      const bad = memorySource('dora', { ...files, 'adapter_config.json': JSON.stringify({ ...cfg, use_dora: true }) });
      await expect(m.loadAdapter(bad)).rejects.toThrow(/DoRA/);
      expect(m.adapters).toEqual(['init_adapter']);
    });
  });

  it('without generation_config.json, the eos ids of config.json count (as transformers derives them)', async () => {
    const files = fixtureFiles();
    const cfg = JSON.parse(new TextDecoder().decode(files['config.json'] as Uint8Array));
    const x = await loadModel(ctx, memorySource('x', { ...without(files, 'generation_config.json'), 'config.json': JSON.stringify({ ...cfg, eos_token_id: [2, 5] }) }));
    try {
      expect(x.tokenizer.eosTokenIds).toEqual([2, 5]);
      expect(x.generationDefaults).toEqual({});
    } finally {
      x.dispose();
    }
  });

  it('names what is missing or broken in a model folder', async () => {
    const files = fixtureFiles();
    const err = async (f: Record<string, Uint8Array | string>) => failure(loadModel(ctx, memorySource('broken', f)));
    expect((await err(without(files, 'config.json'))).message).toMatch(/^config\.json is missing from broken/);
    expect((await err(without(files, 'tokenizer.json'))).message).toMatch(/^tokenizer\.json is missing from broken/);
    expect((await err(without(files, 'model.safetensors'))).message).toMatch(/neither model\.safetensors nor model\.safetensors\.index\.json/);
    expect((await err({ ...files, 'config.json': '{"architectures": [' })).message).toMatch(/config\.json in broken is not valid JSON/);

    const cfg = JSON.parse(new TextDecoder().decode(files['config.json'] as Uint8Array));
    const unsupported = await err({ ...files, 'config.json': JSON.stringify({ ...cfg, architectures: ['MambaForCausalLM'], model_type: 'mamba' }) });
    expect(unsupported).toBeInstanceOf(UnsupportedModelError);
    expect(unsupported.message).toMatch(/The architecture MambaForCausalLM is not supported/);

    const sharded = shardedFiles();
    const missingShard = await err(without(sharded, 'model-00002-of-00002.safetensors'));
    expect(missingShard.message).toMatch(/model-00002-of-00002\.safetensors is missing from broken, but model\.safetensors\.index\.json lists it/);
    expect((missingShard as ModelError).file).toBe('model-00002-of-00002.safetensors');

    const index = JSON.parse(sharded['model.safetensors.index.json'] as string) as { weight_map: Record<string, string> };
    const swapped = { ...index.weight_map, 'model.norm.weight': index.weight_map['model.norm.weight']!.includes('00001') ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors' };
    const wrongShard = await err({ ...sharded, 'model.safetensors.index.json': JSON.stringify({ weight_map: swapped }) });
    expect(wrongShard.message).toMatch(/says tensor "model\.norm\.weight" is in model-0000\d-of-00002\.safetensors, but .* has no such tensor/);
    expect((await err({ ...sharded, 'model.safetensors.index.json': '{"metadata": {}}' })).message).toMatch(/has no "weight_map" object/);
    expect((await err({ ...sharded, 'model.safetensors.index.json': JSON.stringify({ weight_map: { ...index.weight_map, x: '../x.safetensors' } }) })).message).toMatch(
      /maps "x" to "\.\.\/x\.safetensors", which is not a file name in the folder/,
    );
    const truncated = (files['model.safetensors'] as Uint8Array).subarray(0, 1000);
    expect((await err({ ...files, 'model.safetensors': truncated })).message).toMatch(/model\.safetensors is not a valid safetensors file/);
    // A tensor missing from the weights: the core's error names it.
    const st = new SafetensorsFile(files['model.safetensors'] as Uint8Array, 'model.safetensors');
    const noNorm = writeSafetensors(st.names.filter((n) => n !== 'model.norm.weight').map((n) => ({ name: n, dtype: st.info(n).dtype, shape: st.info(n).shape, data: st.raw(n) })));
    expect((await err({ ...files, 'model.safetensors': noNorm })).message).toMatch(/model\.norm\.weight/);
  });
});

describe('storeSource over the hub stores', () => {
  for (const kind of STORE_KINDS) {
    it(`${kind}: loads the model the client stored, serves headers through readHead, and names what is missing`, async () => {
      const { store, cleanup } = await makeStore(kind, { chunkSize: 4096 });
      try {
        const repo = 'graft-test/tiny-llama';
        const files = fixtureFiles() as Record<string, Uint8Array>;
        await store.planFiles(repo, 'main', Object.entries(files).map(([path, b]) => ({ path, expectedSize: b.length })));
        for (const [path, bytes] of Object.entries(files)) {
          const w = await store.openWriter(repo, 'main', path, { resume: false });
          await w.append(bytes);
          await w.complete();
        }
        await store.markComplete(repo, 'main');

        const source = storeSource(store, repo);
        expect(source.name).toBe(repo);
        expect(await source.readFile('nope.json')).toBeUndefined();
        const head = await source.readHead!('model.safetensors', 8);
        expect(head!.size).toBe(files['model.safetensors']!.length);
        expect([...head!.bytes]).toEqual([...files['model.safetensors']!.subarray(0, 8)]);
        expect((await describeModel(source)).parameters).toBe(125_248);

        const m = await loadModel(await testContext(), source);
        try {
          const r = await m.generate(m.chatPromptIds('What is LoRA?'), { maxNewTokens: 16, greedy: true, stopAtEos: false });
          expect(r.newIds).toEqual(reference.greedy.new_ids);
        } finally {
          m.dispose();
        }

        // Not stored at all; stored only in part.
        const other = await failure(loadModel(await testContext(), storeSource(store, 'graft-test/other', 'v2')));
        expect(other).toBeInstanceOf(ModelError);
        expect(other.message).toMatch(/graft-test\/other \(revision v2\) is not stored on this device/);
        const w = await store.openWriter(repo, 'main', 'tokenizer.json', { resume: false });
        await w.append(files['tokenizer.json']!.subarray(0, 100));
        await w.close();
        const partial = await failure(loadModel(await testContext(), source));
        expect(partial).toBeInstanceOf(HubError);
        expect(partial.message).toMatch(/tokenizer\.json of graft-test\/tiny-llama is only partly downloaded/);
      } finally {
        await cleanup();
      }
    });
  }
});
