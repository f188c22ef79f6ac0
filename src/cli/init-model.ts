// graft init-model: a small randomly initialised Llama as a Hugging Face model folder, written without any
// network (the app's demo model is made with it); the files and the initialisation: docs/cli.md.
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SeededRandom } from '../data/shuffle';
import { f32ToBf16Bits, f32ToF16Bits } from '../engine/half';
import { parseConfig } from '../model/config';
import { writeSafetensors, type TensorToWrite } from '../model/safetensors';
import { numberOption, requiredString, stringOption, UsageError, type CommandSpec, type Parsed } from './args';
import type { CliEnv } from './model-arg';
import { CliError } from './report';

/** The project's fixture tokenizer (test/fixtures/tiny-llama): see the fixtures' README. */
export const DEFAULT_TOKENIZER_DIR = fileURLToPath(new URL('../../test/fixtures/tiny-llama/', import.meta.url));

/** ChatML, as Qwen and SmolLM2 write it (without a default system prompt). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export const initModelSpec: CommandSpec = {
  name: 'init-model',
  summary: 'Write a small randomly initialised Llama (Hugging Face format) to train from scratch or to test with.',
  usage: 'init-model --out <dir> [--hidden N] [--layers N] [--heads N] [--kv-heads N] [--intermediate N] [--seed S]',
  details:
    'Writes config.json, model.safetensors, tokenizer.json, tokenizer_config.json (ChatML chat template) and\n' +
    'generation_config.json into --out, without any network. The tokenizer is copied from --tokenizer (a folder\n' +
    'with tokenizer.json and tokenizer_config.json; default: the project\'s 512-token byte-level BPE fixture). The\n' +
    'same command and seed always write the same bytes.',
  options: {
    out: { type: 'string', short: 'o', value: '<dir>', description: 'The folder to write (created; refused if it holds a model, unless --force).' },
    hidden: { type: 'string', value: 'N', description: 'hidden_size (default 64).' },
    layers: { type: 'string', value: 'N', description: 'num_hidden_layers (default 2).' },
    heads: { type: 'string', value: 'N', description: 'num_attention_heads (default hidden / 16).' },
    'kv-heads': { type: 'string', value: 'N', description: 'num_key_value_heads (default heads / 2, at least 1).' },
    intermediate: { type: 'string', value: 'N', description: 'intermediate_size of the MLP (default 2.75 × hidden, a multiple of 16).' },
    'max-positions': { type: 'string', value: 'N', description: 'max_position_embeddings (default 256).' },
    'init-std': { type: 'string', value: 'F', description: 'initializer_range: the weights\' standard deviation (default 0.02).' },
    dtype: { type: 'string', value: 'F32|F16|BF16', description: 'How the weights are stored (default F32).' },
    seed: { type: 'string', value: 'S', description: 'Seed of the weights (default 1).' },
    tokenizer: { type: 'string', value: '<dir>', description: 'Copy tokenizer.json and tokenizer_config.json from this folder.' },
    force: { type: 'boolean', description: 'Overwrite a model already in --out.' },
  },
  examples: ['graft init-model --out public/demo/model --hidden 64 --layers 2 --seed 1', 'graft init-model --out /tmp/m --hidden 128 --layers 4 --dtype F16'],
};

export interface InitModelOptions {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  maxPositions: number;
  initStd: number;
  seed: number;
  dtype: 'F32' | 'F16' | 'BF16';
  bosTokenId: number;
  eosTokenId: number;
}

/** config.json of the model (what transformers' LlamaConfig.to_json_string writes, trimmed to what matters). */
export function initConfig(o: InitModelOptions): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: o.bosTokenId,
    eos_token_id: o.eosTokenId,
    head_dim: o.hidden / o.heads,
    hidden_act: 'silu',
    hidden_size: o.hidden,
    initializer_range: o.initStd,
    intermediate_size: o.intermediate,
    max_position_embeddings: o.maxPositions,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: o.heads,
    num_hidden_layers: o.layers,
    num_key_value_heads: o.kvHeads,
    pad_token_id: o.eosTokenId,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    tie_word_embeddings: true,
    torch_dtype: o.dtype === 'F32' ? 'float32' : o.dtype === 'F16' ? 'float16' : 'bfloat16',
    use_cache: true,
    vocab_size: o.vocab,
  };
}

/** The tensors of a Llama with tied embeddings, by Hugging Face name, with their shapes; 'norm' ones start at 1. */
export function llamaTensorShapes(o: Pick<InitModelOptions, 'hidden' | 'layers' | 'heads' | 'kvHeads' | 'intermediate' | 'vocab'>): [string, number[], 'w' | 'norm'][] {
  const H = o.hidden;
  const D = H / o.heads;
  const out: [string, number[], 'w' | 'norm'][] = [['model.embed_tokens.weight', [o.vocab, H], 'w']];
  for (let l = 0; l < o.layers; l++) {
    const p = `model.layers.${l}`;
    out.push(
      [`${p}.input_layernorm.weight`, [H], 'norm'],
      [`${p}.self_attn.q_proj.weight`, [o.heads * D, H], 'w'],
      [`${p}.self_attn.k_proj.weight`, [o.kvHeads * D, H], 'w'],
      [`${p}.self_attn.v_proj.weight`, [o.kvHeads * D, H], 'w'],
      [`${p}.self_attn.o_proj.weight`, [H, o.heads * D], 'w'],
      [`${p}.post_attention_layernorm.weight`, [H], 'norm'],
      [`${p}.mlp.gate_proj.weight`, [o.intermediate, H], 'w'],
      [`${p}.mlp.up_proj.weight`, [o.intermediate, H], 'w'],
      [`${p}.mlp.down_proj.weight`, [H, o.intermediate], 'w'],
    );
  }
  out.push(['model.norm.weight', [H], 'norm']);
  return out;
}

/** model.safetensors: N(0, initStd²) for linears and the embedding (Box–Muller on a seeded generator), norms 1. */
export function initWeights(o: InitModelOptions): Uint8Array {
  const rng = new SeededRandom(o.seed);
  const normal = () => {
    const u = Math.max(rng.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  };
  const tensors: TensorToWrite[] = llamaTensorShapes(o).map(([name, shape, kind]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = kind === 'norm' ? 1 : normal() * o.initStd;
    if (o.dtype === 'F32') return { name, dtype: 'F32', shape, data: values };
    const bits = o.dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
    return { name, dtype: o.dtype, shape, data: Uint16Array.from(values, (v) => bits(v)) };
  });
  return writeSafetensors(tensors, { format: 'pt' });
}

const encoder = new TextEncoder();
const json = (v: unknown) => encoder.encode(`${JSON.stringify(v, null, 2)}\n`);

export interface TokenizerFiles {
  tokenizerJson: Uint8Array;
  vocab: number;
  bosTokenId: number;
  eosTokenId: number;
  /** <|endoftext|> or the tokenizer's unk. */
  unkToken: string;
}

/** Reads a tokenizer.json and finds the ids of <|im_start|> and <|im_end|> (which ChatML needs). */
export async function readTokenizer(dir: string): Promise<TokenizerFiles> {
  const path = join(dir, 'tokenizer.json');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch {
    throw new CliError('no-tokenizer', `There is no tokenizer.json in ${dir}; --tokenizer takes a folder that holds one.`);
  }
  let t: { added_tokens?: { id: number; content: string }[]; model?: { vocab?: Record<string, number> } };
  try {
    t = JSON.parse(new TextDecoder().decode(bytes)) as typeof t;
  } catch (e) {
    throw new CliError('bad-tokenizer', `${path} is not valid JSON (${(e as Error).message}).`);
  }
  const added = t.added_tokens ?? [];
  const id = (content: string) => added.find((a) => a.content === content)?.id;
  const start = id('<|im_start|>');
  const end = id('<|im_end|>');
  if (start === undefined || end === undefined) {
    throw new CliError('bad-tokenizer', `${path} has no <|im_start|> and <|im_end|> tokens, which the ChatML template needs.`);
  }
  const ids = [...Object.values(t.model?.vocab ?? {}), ...added.map((a) => a.id)];
  const vocab = Math.max(...ids) + 1;
  return { tokenizerJson: bytes, vocab, bosTokenId: start, eosTokenId: end, unkToken: id('<|endoftext|>') !== undefined ? '<|endoftext|>' : '<|im_end|>' };
}

/** Every file of the model folder, by name. */
export function initModelFiles(o: InitModelOptions, tok: TokenizerFiles): Map<string, Uint8Array> {
  const config = initConfig(o);
  parseConfig(config); // the loader reads it: fail here rather than in the app
  return new Map([
    ['config.json', json(config)],
    ['generation_config.json', json({ bos_token_id: o.bosTokenId, eos_token_id: o.eosTokenId, pad_token_id: o.eosTokenId, transformers_version: '4.46.0' })],
    ['model.safetensors', initWeights(o)],
    ['tokenizer.json', tok.tokenizerJson],
    [
      'tokenizer_config.json',
      json({
        add_bos_token: false,
        bos_token: '<|im_start|>',
        chat_template: CHATML_TEMPLATE,
        clean_up_tokenization_spaces: false,
        eos_token: '<|im_end|>',
        model_max_length: o.maxPositions,
        pad_token: '<|im_end|>',
        tokenizer_class: 'PreTrainedTokenizerFast',
        unk_token: tok.unkToken,
      }),
    ],
  ]);
}

function positive(values: Parsed['values'], name: string, fallback: number): number {
  return numberOption('init-model', values, name, { integer: true, min: 1 }) ?? fallback;
}

export async function runInitModel(args: Parsed, io: CliEnv): Promise<number> {
  const v = args.values;
  const out = resolve(requiredString('init-model', v, 'out', '<dir>'));
  const hidden = positive(v, 'hidden', 64);
  const layers = positive(v, 'layers', 2);
  const heads = positive(v, 'heads', Math.max(1, Math.round(hidden / 16)));
  const kvHeads = positive(v, 'kv-heads', Math.max(1, Math.floor(heads / 2)));
  const intermediate = positive(v, 'intermediate', Math.max(16, Math.round((hidden * 2.75) / 16) * 16));
  const maxPositions = positive(v, 'max-positions', 256);
  const initStd = numberOption('init-model', v, 'init-std', { min: 0, minExclusive: true }) ?? 0.02;
  const seed = numberOption('init-model', v, 'seed', { integer: true, min: 0 }) ?? 1;
  const dtypeRaw = (stringOption('init-model', v, 'dtype') ?? 'F32').toUpperCase();
  if (dtypeRaw !== 'F32' && dtypeRaw !== 'F16' && dtypeRaw !== 'BF16') throw new UsageError(`graft init-model: --dtype must be F32, F16 or BF16, not "${dtypeRaw}"`);
  if (hidden % heads !== 0) throw new UsageError(`graft init-model: --hidden ${hidden} must be a multiple of --heads ${heads}`);
  if (heads % kvHeads !== 0) throw new UsageError(`graft init-model: --heads ${heads} must be a multiple of --kv-heads ${kvHeads}`);
  if ((hidden / heads) % 2 !== 0) throw new UsageError(`graft init-model: the head size hidden / heads = ${hidden / heads} must be even (RoPE rotates pairs)`);

  const tok = await readTokenizer(resolve(stringOption('init-model', v, 'tokenizer') ?? DEFAULT_TOKENIZER_DIR));
  const o: InitModelOptions = { hidden, layers, heads, kvHeads, intermediate, vocab: tok.vocab, maxPositions, initStd, seed, dtype: dtypeRaw, bosTokenId: tok.bosTokenId, eosTokenId: tok.eosTokenId };
  const files = initModelFiles(o, tok);
  const tokenizerConfigDir = stringOption('init-model', v, 'tokenizer');
  if (tokenizerConfigDir !== undefined) {
    // Keep the given folder's tokenizer_config.json fields (special tokens, normalisation) but the ChatML template.
    try {
      const given = JSON.parse(await readFile(join(resolve(tokenizerConfigDir), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
      files.set('tokenizer_config.json', json({ ...given, chat_template: CHATML_TEMPLATE, eos_token: '<|im_end|>', pad_token: '<|im_end|>' }));
    } catch {
      // none: the written one stands
    }
  }

  if (existsSync(out) && !statSync(out).isDirectory()) throw new CliError('not-a-folder', `${out} is a file; --out takes a folder.`);
  if (existsSync(join(out, 'model.safetensors')) && v.force !== true) {
    throw new CliError('output-exists', `${out} already holds a model; pass --force to overwrite it, or choose another --out.`);
  }
  await mkdir(out, { recursive: true });
  for (const [name, bytes] of files) await writeFile(join(out, name), bytes);
  const params = llamaTensorShapes(o).reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
  const total = [...files.values()].reduce((s, b) => s + b.length, 0);
  io.stderr.write(
    `graft init-model: LlamaForCausalLM, hidden ${hidden}, ${layers} layers, ${heads} heads (${kvHeads} key/value), intermediate ${intermediate}, ` +
      `vocab ${tok.vocab}: ${params.toLocaleString('en-US')} parameters, ${dtypeRaw}, seed ${seed}; ${(total / 1024).toFixed(0)} KiB in ${files.size} files\n`,
  );
  io.stdout.write(`${out}\n`);
  return 0;
}
