// Exports around quantized and 16-bit bases: a LoRA adapter trained on a 4-bit base merges into the weights it
// trained against (the blocks' linears quantized and dequantized as the run held them) and the folder's README
// says so; a full fine-tune of a BF16 checkpoint is written back in BF16 (F32 on request).
import { describe, expect, it } from 'vitest';
import { folderSource } from '../../src/cli/folder-source';
import { f32ToBf16Bits } from '../../src/engine/half';
import { dequantizeWeight, quantizeWeight } from '../../src/engine/quantize';
import { exportHfModel } from '../../src/export/merged-model';
import { mergedModelFiles } from '../../src/job/merge';
import { readAdapter } from '../../src/model/adapter';
import { parseConfig } from '../../src/model/config';
import { SafetensorsFile } from '../../src/model/safetensors';

const FIXTURE = new URL('../fixtures/tiny-llama/', import.meta.url).pathname;

describe('exports of quantized and 16-bit bases', () => {
  it('merges a QLoRA adapter into the dequantized block linears, says so, and leaves the rest as stored', async () => {
    const base = await folderSource(FIXTURE);
    const adapter = await folderSource(`${FIXTURE}reference/init_adapter`, 'adapter');
    const quantize = { format: 'nf4' as const, doubleQuant: true };
    const files = await mergedModelFiles(base, adapter, { quantize });
    expect(new TextDecoder().decode(files.get('README.md'))).toMatch(/trained on a 4-bit \(NF4, double quantization, as bitsandbytes computes it\) base \(quantization_bit 4\), so it was merged into the weights it trained against/);
    const merged = new SafetensorsFile(files.get('model.safetensors')!, 'merged');
    const original = new SafetensorsFile((await base.readFile('model.safetensors'))!, 'original');
    const cfg = parseConfig(JSON.parse(new TextDecoder().decode((await base.readFile('config.json'))!)));
    const lora = await readAdapter(adapter, cfg);
    const module = 'model.layers.1.self_attn.q_proj';
    const w = original.float32(`${module}.weight`);
    const deq = dequantizeWeight(quantizeWeight(w, 'nf4', true), w.length);
    const m = lora.modules.get(module)!;
    const r = lora.config.r;
    const scale = lora.config.alpha / r;
    const got = merged.float32(`${module}.weight`);
    const [out, inF] = [m.outFeatures, m.inFeatures];
    let worst = 0;
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inF; i++) {
        let ba = 0;
        for (let j = 0; j < r; j++) ba += m.b[o * r + j]! * m.a[j * inF + i]!;
        worst = Math.max(worst, Math.abs(got[o * inF + i]! - (deq[o * inF + i]! + scale * ba)));
      }
    }
    expect(worst).toBeLessThan(1e-6);
    // Quantizing changed the layer; the embedding and norms are the checkpoint's.
    expect(Array.from(deq)).not.toEqual(Array.from(w));
    expect(Array.from(merged.float32('model.embed_tokens.weight'))).toEqual(Array.from(original.float32('model.embed_tokens.weight')));
    expect(Array.from(merged.float32('model.norm.weight'))).toEqual(Array.from(original.float32('model.norm.weight')));
    // Without a quantized base: no README, the layer is W + scale·B·A of the stored weights.
    const plain = await mergedModelFiles(base, adapter);
    expect(plain.has('README.md')).toBe(false);
  });

  it('writes a model in BF16 (torch_dtype bfloat16) when asked, F32 by default', () => {
    const data = Float32Array.from([1.0009765625, -2.5, 3.00390625, 0]);
    const input = { config: { architectures: ['LlamaForCausalLM'], torch_dtype: 'bfloat16' }, weights: new Map([['w', { dtype: 'F32' as const, shape: [2, 2], data }]]) };
    const bf16 = exportHfModel({ ...input, dtype: 'BF16' });
    const st = new SafetensorsFile(bf16.get('model.safetensors')!, 'bf16');
    expect(st.info('w').dtype).toBe('BF16');
    expect(Array.from(st.bits16('w'))).toEqual(Array.from(data, (v) => f32ToBf16Bits(v)));
    expect(JSON.parse(new TextDecoder().decode(bf16.get('config.json'))).torch_dtype).toBe('bfloat16');
    const f32 = exportHfModel(input);
    expect(new SafetensorsFile(f32.get('model.safetensors')!, 'f32').info('w').dtype).toBe('F32');
    expect(JSON.parse(new TextDecoder().decode(f32.get('config.json'))).torch_dtype).toBe('float32');
  });
});
