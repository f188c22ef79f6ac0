// describeModel: parameter count, sizes and memory estimates from config.json and the safetensors headers only.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeModel, estimateMemory, planShapeFromNumbers, shapeNumbers } from '../../src/model/info';
import { planTrainingStep } from '../../src/model/memory-plan';
import { BUILT_IN_MODELS } from '../../src/ui/model-list';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors';
import { memorySource, type ModelSource } from '../../src/model/source';

const dir = new URL('../fixtures/tiny-llama/', import.meta.url);

function fixtureFiles(): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const f of readdirSync(dir)) {
    const u = new URL(f, dir);
    if (statSync(u).isFile()) out[f] = new Uint8Array(readFileSync(u));
  }
  return out;
}

/** Splits model.safetensors into two shards + an index. */
function sharded(files: Record<string, Uint8Array>): Record<string, Uint8Array | string> {
  const st = new SafetensorsFile(files['model.safetensors']!, 'model.safetensors');
  const names = st.names;
  const half = Math.ceil(names.length / 2);
  const shardNames = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const weightMap: Record<string, string> = {};
  const out: Record<string, Uint8Array | string> = { ...files };
  delete out['model.safetensors'];
  [names.slice(0, half), names.slice(half)].forEach((group, i) => {
    out[shardNames[i]!] = writeSafetensors(group.map((n) => ({ name: n, dtype: st.info(n).dtype, shape: st.info(n).shape, data: st.raw(n) })));
    for (const n of group) weightMap[n] = shardNames[i]!;
  });
  out['model.safetensors.index.json'] = JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap });
  return out;
}

/** Counts the bytes a source hands out, to prove that only headers are read. */
function counting(source: ModelSource): { source: ModelSource; bytes: () => number } {
  let n = 0;
  return {
    bytes: () => n,
    source: {
      name: source.name,
      async readFile(p) {
        const b = await source.readFile(p);
        n += b?.length ?? 0;
        return b;
      },
      async readHead(p, len) {
        const h = await source.readHead!(p, len);
        n += h?.bytes.length ?? 0;
        return h;
      },
    },
  };
}

// tiny-llama: embed 512·64; per layer 2 norms of 64, q 64·64, k and v 32·64, o 64·64, gate/up/down 176·64;
// final norm 64; lm_head tied (not stored).
const LAYER = 2 * 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 176 * 64;
const PARAMS = 512 * 64 + 2 * LAYER + 64;

describe('describeModel', () => {
  it('gives the fixture numbers from config.json and the headers, reading no tensor data', async () => {
    const files = fixtureFiles();
    const { source, bytes } = counting(memorySource('tiny-llama', files));
    const info = await describeModel(source);
    expect(PARAMS).toBe(125_248);
    expect(info).toMatchObject({
      architecture: 'LlamaForCausalLM',
      supported: true,
      parameters: PARAMS,
      layers: 2,
      hidden: 64,
      vocab: 512,
      weightDtype: 'F32',
      weightBytes: PARAMS * 4,
      files: [{ path: 'model.safetensors', size: files['model.safetensors']!.length }],
    });
    const e = info.estimates;
    expect(e.inferenceBytes).toBeGreaterThan(info.weightBytes);
    expect(e.loraTrainBytes).toBeGreaterThan(e.inferenceBytes);
    expect(e.fullTrainBytes).toBeGreaterThan(e.loraTrainBytes);
    expect(e).toEqual(estimateMemory(PARAMS, shapeNumbers(JSON.parse(new TextDecoder().decode(files['config.json'])))));
    // config.json plus the header (8 bytes, then 8 + header length): far less than the 500 kB of weights.
    expect(bytes()).toBeLessThan(files['config.json']!.length + 2 * 8 + 2 * 4096);
  });

  it('gives the same numbers for the sharded layout', async () => {
    const files = fixtureFiles();
    const single = await describeModel(memorySource('single', files));
    const shards = await describeModel(memorySource('sharded', sharded(files)));
    expect(shards.parameters).toBe(single.parameters);
    expect(shards.weightBytes).toBe(single.weightBytes);
    expect(shards.estimates).toEqual(single.estimates);
    expect(shards.files.map((f) => f.path)).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  });

  it('also reads sources without readHead (whole files)', async () => {
    const m = memorySource('x', fixtureFiles());
    const info = await describeModel({ name: 'x', readFile: (p) => m.readFile(p) });
    expect(info.parameters).toBe(PARAMS);
  });

  it('counts a tied lm_head stored anyway once, and an untied one fully; mixed dtypes are listed by bytes', async () => {
    const files = fixtureFiles();
    const st = new SafetensorsFile(files['model.safetensors']!, 'model.safetensors');
    const tensors = st.names.map((n) => ({ name: n, dtype: st.info(n).dtype, shape: st.info(n).shape, data: st.raw(n) }));
    const lmHead = { name: 'lm_head.weight', dtype: 'BF16' as const, shape: [512, 64], data: new Uint16Array(512 * 64) };
    const withHead = { ...files, 'model.safetensors': writeSafetensors([...tensors, lmHead]) };
    const tied = await describeModel(memorySource('tied', withHead));
    expect(tied.parameters).toBe(PARAMS);
    expect(tied.weightBytes).toBe(PARAMS * 4 + 512 * 64 * 2);
    expect(tied.weightDtype).toBe('F32+BF16');
    const cfg = JSON.parse(new TextDecoder().decode(files['config.json']));
    const untied = await describeModel(memorySource('untied', { ...withHead, 'config.json': JSON.stringify({ ...cfg, tie_word_embeddings: false }) }));
    expect(untied.parameters).toBe(PARAMS + 512 * 64);
  });

  it('describes models Graft cannot load, saying why', async () => {
    const files = fixtureFiles();
    const cfg = JSON.parse(new TextDecoder().decode(files['config.json']));
    const info = await describeModel(
      memorySource('moe', { ...files, 'config.json': JSON.stringify({ ...cfg, architectures: ['MixtralForCausalLM'], model_type: 'mixtral' }) }),
    );
    expect(info.supported).toBe(false);
    expect(info.unsupportedReason).toMatch(/MixtralForCausalLM/);
    expect(info.parameters).toBe(PARAMS);
  });

  it('names the missing file', async () => {
    const files = fixtureFiles();
    const noConfig = { ...files };
    delete noConfig['config.json'];
    await expect(describeModel(memorySource('m', noConfig))).rejects.toThrow(/config\.json is missing from m/);
    const noWeights = { ...files };
    delete noWeights['model.safetensors'];
    await expect(describeModel(memorySource('m', noWeights))).rejects.toThrow(/neither model\.safetensors nor model\.safetensors\.index\.json/);
    const s = sharded(files);
    delete s['model-00002-of-00002.safetensors'];
    await expect(describeModel(memorySource('m', s))).rejects.toThrow(/model-00002-of-00002\.safetensors is missing from m/);
  });

  it('estimates: inference by the documented formula (hand-computed for a toy shape), training by the memory planner', () => {
    // L 1, H 2, I 4, 1 head of dim 2, 1 kv head, V 3, gated; P 10; S 1, r 1.
    const s = { layers: 1, hidden: 2, intermediate: 4, heads: 1, kvHeads: 1, headDim: 2, vocab: 3, gatedMlp: true };
    const W = 40;
    // inference: W + KV 4·2·1·1·2 + 4·(6 + 2 + 4 + 12) + 4·3
    expect(estimateMemory(10, s, 1, 1).inferenceBytes).toBe(W + 16 + 96 + 12);
    const shape = planShapeFromNumbers(s, 10);
    expect(estimateMemory(10, s, 1, 1).loraTrainBytes).toBe(planTrainingStep(shape, { method: 'lora', batch: 1, seqLen: 1, loraRank: 1, maxPositions: 1 }).total);
    expect(estimateMemory(10, s, 1, 1).fullTrainBytes).toBe(planTrainingStep(shape, { method: 'full', batch: 1, seqLen: 1, maxPositions: 1 }).total);
  });

  it("the planner's weights are the parameters of the built-in models (tied embeddings inferred from the count)", () => {
    for (const m of BUILT_IN_MODELS) {
      // The list's shape numbers leave out Qwen2's q/k/v biases (0.02% of its weights); say them here.
      const shape = planShapeFromNumbers({ ...m.shape, ...(m.architecture === 'Qwen2ForCausalLM' ? { qkvBias: true } : {}) }, m.parameters);
      const plan = planTrainingStep(shape, { method: 'full', batch: 1, seqLen: 64, maxPositions: 64 });
      // Gemma 3 keeps a second table for its sliding-window layers (another base).
      const rope = shape.positions === 'rope' ? (m.shape.localRope ? 2 : 1) * 2 * 4 * 64 * (m.shape.headDim / 2) : 0;
      // Each tensor is rounded up to 16 bytes on the GPU: at most 12 bytes more per tensor.
      const tensors = 4 + m.shape.layers * 16;
      const extra = plan.weights - rope - 4 * m.parameters;
      expect(extra, `${m.repo}: weights ${plan.weights - rope} for ${m.parameters} parameters`).toBeGreaterThanOrEqual(0);
      expect(extra, m.repo).toBeLessThanOrEqual(12 * tensors);
    }
  });
});
