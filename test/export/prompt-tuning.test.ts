// PEFT PROMPT_TUNING export: the folder holds one F32 tensor prompt_embeddings [n, hidden] and PEFT's
// PromptTuningConfig fields (sorted, as PEFT writes them); read back by the model, the adapter gives the very
// logits of the one it was exported from; folders that do not fit the model are refused with what is wrong.
import { describe, expect, it } from 'vitest';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../../src/export/peft-adapter';
import { exportPromptTuning, promptTuningConfig } from '../../src/export/prompt-tuning';
import { parseConfig } from '../../src/model/config';
import { PROMPT_EMBEDDINGS, readPromptAdapter, uploadPromptAdapter } from '../../src/model/prompt-tuning';
import { SafetensorsFile } from '../../src/model/safetensors';
import type { ModelSource } from '../../src/model/source';
import { CausalLM, releaseBatch, uploadBatch } from '../../src/model/transformer';
import { testContext } from '../helpers/gpu';
import { makeRandomModel, RANDOM_MODELS, randomIds } from '../helpers/random-model';
import { Rng } from '../helpers/rng';

const memorySource = (name: string, files: ReadonlyMap<string, Uint8Array>): ModelSource => ({ name, readFile: async (p) => files.get(p) });
const json = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;

describe('exportPromptTuning', () => {
  it('writes prompt_embeddings [n, hidden] and PEFT’s PromptTuningConfig fields', () => {
    const embeddings = Float32Array.from({ length: 5 * 8 }, (_, i) => i / 7 - 2);
    const files = exportPromptTuning({
      baseModel: 'org/base',
      numVirtualTokens: 5,
      tokenDim: 8,
      numAttentionHeads: 2,
      numLayers: 3,
      init: 'text',
      initText: 'Answer briefly:',
      embeddings,
    });
    expect([...files.keys()].sort()).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS]);
    const st = new SafetensorsFile(files.get(ADAPTER_WEIGHTS)!, ADAPTER_WEIGHTS);
    expect(st.names).toEqual([PROMPT_EMBEDDINGS]);
    expect(st.info(PROMPT_EMBEDDINGS).dtype).toBe('F32');
    expect(st.info(PROMPT_EMBEDDINGS).shape).toEqual([5, 8]);
    expect(st.header.metadata).toEqual({ format: 'pt' });
    expect(st.float32(PROMPT_EMBEDDINGS)).toEqual(embeddings);
    const text = new TextDecoder().decode(files.get(ADAPTER_CONFIG)!);
    const config = JSON.parse(text) as Record<string, unknown>;
    // PromptLearningConfig (peft/config.py) + PromptTuningConfig (peft/tuners/prompt_tuning/config.py).
    expect(config).toEqual({
      auto_mapping: null,
      base_model_name_or_path: 'org/base',
      inference_mode: true,
      num_attention_heads: 2,
      num_layers: 3,
      num_transformer_submodules: 1,
      num_virtual_tokens: 5,
      peft_type: 'PROMPT_TUNING',
      prompt_tuning_init: 'TEXT',
      prompt_tuning_init_text: 'Answer briefly:',
      revision: null,
      task_type: 'CAUSAL_LM',
      token_dim: 8,
      tokenizer_kwargs: null,
      tokenizer_name_or_path: 'org/base',
    });
    expect(Object.keys(config)).toEqual(Object.keys(config).sort()); // json.dumps(sort_keys=True)
    expect(text.endsWith('}\n')).toBe(true);

    const random = promptTuningConfig({ baseModel: 'b', revision: 'v2', numVirtualTokens: 1, tokenDim: 4, numAttentionHeads: 1, numLayers: 1, init: 'random' });
    expect([random.prompt_tuning_init, random.prompt_tuning_init_text, random.tokenizer_name_or_path, random.revision]).toEqual(['RANDOM', null, null, 'v2']);
    expect(() => exportPromptTuning({ baseModel: 'b', numVirtualTokens: 2, tokenDim: 4, numAttentionHeads: 1, numLayers: 1, init: 'random', embeddings: new Float32Array(7) })).toThrow(
      /the embeddings hold 7 values; \[2, 4\] needs 8/,
    );
  });
});

describe('a prompt-tuning export read back by the model', () => {
  it('gives exactly the logits of the adapter it was exported from (Llama and GPT-2)', async () => {
    const ctx = await testContext();
    for (const key of ['llamaGqaUntied', 'gpt2Bare'] as const) {
      const m = makeRandomModel(RANDOM_MODELS[key]!);
      const H = m.cfg.hiddenSize;
      const model = CausalLM.create(ctx, m.cfg, m.weights);
      const rng = new Rng(21);
      const n = 4;
      const values = Float32Array.from(rng.tensor(n * H, 1, 0.05));
      const ids = randomIds(rng, 2, 6, m.cfg.vocabSize);
      const logits = async (): Promise<Float32Array> => {
        const batch = uploadBatch(ctx, ids, [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]]);
        const acts = model.forward(batch, { saveForBackward: false });
        const out = await ctx.readF32(acts.logits);
        acts.release();
        releaseBatch(batch);
        return out;
      };
      const live = uploadPromptAdapter(ctx, 'live', values, n, H);
      model.setAdapter(live);
      const want = await logits();
      model.setAdapter(null);

      const files = exportPromptTuning({ baseModel: key, numVirtualTokens: n, tokenDim: H, numAttentionHeads: m.cfg.numHeads, numLayers: m.cfg.numLayers, init: 'random', embeddings: values });
      const cpu = await readPromptAdapter(memorySource('exported', files), m.cfg);
      expect([cpu.numVirtualTokens, cpu.tokenDim, cpu.baseModel]).toEqual([n, H, key]);
      const read = uploadPromptAdapter(ctx, 'read back', cpu.embeddings, cpu.numVirtualTokens, cpu.tokenDim);
      model.setAdapter(read);
      expect(await logits()).toEqual(want);
      model.setAdapter(null);
      live.embeddings.release();
      read.embeddings.release();
      model.dispose();
    }
  });

  it('refuses folders that do not fit the model, saying what is wrong', async () => {
    const cfg = parseConfig(RANDOM_MODELS.llamaGqaUntied!.config);
    const H = cfg.hiddenSize;
    const good = exportPromptTuning({ baseModel: 'org/base', numVirtualTokens: 3, tokenDim: H, numAttentionHeads: 6, numLayers: 2, init: 'random', embeddings: new Float32Array(3 * H) });
    const withConfig = (over: Record<string, unknown>) =>
      new Map([...good, [ADAPTER_CONFIG, new TextEncoder().encode(JSON.stringify({ ...json(good.get(ADAPTER_CONFIG)!), ...over }))]]);
    const read = (files: ReadonlyMap<string, Uint8Array>) => readPromptAdapter(memorySource('my-adapter', files), cfg);
    await expect(read(withConfig({ token_dim: H + 1 }))).rejects.toThrow(/my-adapter cannot be used: its token_dim is 37, but this LlamaForCausalLM has hidden size 36 \(it was made for org\/base\)/);
    await expect(read(withConfig({ peft_type: 'P_TUNING' }))).rejects.toThrow(/its peft_type is "P_TUNING", not "PROMPT_TUNING"/);
    await expect(read(withConfig({ num_transformer_submodules: 2 }))).rejects.toThrow(/num_transformer_submodules is 2/);
    await expect(read(withConfig({ num_virtual_tokens: 4 }))).rejects.toThrow(/prompt_embeddings is \[3, 36\]; expected \[4, 36\]/);
    const noWeights = new Map([...good].filter(([k]) => k !== ADAPTER_WEIGHTS));
    await expect(read(noWeights)).rejects.toThrow(/adapter_model.safetensors is missing/);
  });
});
