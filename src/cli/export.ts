// graft export: LLaMA-Factory's export stage (`llamafactory-cli export merge_lora.yaml`) on the command line: a LoRA
// adapter merged into its base (W + scale·B·A, src/job/merge.ts) and written as a Hugging Face model folder
// (safetensors shards + index, config.json, generation_config.json, the tokenizer files). Its keys and flags are
// LLaMA-Factory's; docs/cli.md ("graft export").
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import { mergedModelFiles } from '../job/merge';
import { isOff } from '../train/foreign-keys';
import { UsageError, type CommandSpec, type Parsed } from './args';
import { writeFileAtomic } from './folder-sink';
import { resolveAdapterArg, resolveModelArg, type CliEnv } from './model-arg';
import { CliError } from './report';

/** The export stage's keys Graft honours (LLaMA-Factory's names). */
const KEYS = ['model_name_or_path', 'model_revision', 'adapter_name_or_path', 'export_dir', 'export_size', 'export_legacy_format', 'finetuning_type', 'template', 'export_device', 'trust_remote_code', 'stage'] as const;

/** Refused with the reason when set (LLaMA-Factory export keys Graft cannot honour). */
const CANNOT: Record<string, string> = {
  export_quantization_bit: 'Graft writes unquantized models; quantize the exported folder with another tool (GPTQ, llama.cpp)',
  export_quantization_dataset: 'Graft writes unquantized models',
  export_hub_model_id: 'Graft does not upload; push the folder to the hub yourself (huggingface-cli upload)',
  quantization_bit: 'LLaMA-Factory cannot merge an adapter into a quantized model either; merge into the unquantized base (Graft\'s app merges a QLoRA adapter into the weights it trained against)',
};

export const exportSpec: CommandSpec = {
  name: 'export',
  summary: "Merge a LoRA adapter into its base and write a Hugging Face model folder (LLaMA-Factory's export stage).",
  usage: 'export [merge_lora.yaml] [--setting value ...]',
  details:
    "LLaMA-Factory's export keys, in a YAML file and/or as flags (flags win): model_name_or_path, adapter_name_or_path\n" +
    '(a PEFT LoRA folder or hub id; left out: the base is written as it is), export_dir, export_size (the largest\n' +
    'shard in GB, default 5, as LLaMA-Factory). Writes model.safetensors or model-0000i-of-0000N.safetensors with\n' +
    'model.safetensors.index.json, config.json, generation_config.json and the tokenizer files; weights are F32\n' +
    '(a merged weight is no longer exact in 16 bits). transformers and vLLM load the folder.',
  positionals: ['<merge_lora.yaml>'],
  required: 0,
  options: {
    model: { type: 'string', short: 'm', value: '<dir|repo>', description: 'The base model (model_name_or_path): a folder or a hub id.' },
    model_name_or_path: { type: 'string', value: '<dir|repo>', description: 'The base model, LLaMA-Factory\'s name.' },
    model_revision: { type: 'string', value: 'REV', description: 'The base model\'s revision on the hub.' },
    adapter_name_or_path: { type: 'string', value: '<dir|repo>', description: 'The LoRA adapter to merge (a PEFT folder or hub id).' },
    export_dir: { type: 'string', value: '<dir>', description: 'Where the model folder goes.' },
    export_size: { type: 'string', value: 'GB', description: 'The largest shard, in GB (10⁹ bytes; default 5; Graft also takes a fraction).' },
    export_legacy_format: { type: 'string', value: 'false', bare: 'true', description: 'true would write .bin files; Graft writes safetensors only.' },
    finetuning_type: { type: 'string', value: 'lora', description: 'lora (the adapter kind merged).' },
    template: { type: 'string', value: 'NAME', description: 'Accepted: the tokenizer files keep the model\'s chat template.' },
    export_device: { type: 'string', value: 'cpu|auto', description: 'Accepted: Graft merges on the CPU in float64.' },
    ...Object.fromEntries(Object.keys(CANNOT).map((k) => [k, { type: 'string' as const, value: 'V', description: '', hidden: true }])),
  },
  examples: [
    'graft export merge_lora.yaml',
    'graft export --model HuggingFaceTB/SmolLM2-135M-Instruct --adapter_name_or_path runs/lora --export_dir merged --export_size 2',
  ],
};

/** A job file's keys (YAML 1.1, as LLaMA-Factory reads it). */
async function readJobFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CliError('no-job', `Cannot read the export job ${file}: ${(e as Error).message}`);
  }
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) throw new CliError('bad-job', `${basename(file)} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  if (!isMap(doc.contents)) throw new CliError('bad-job', `${basename(file)} must be a mapping of \`key: value\` lines`);
  return doc.toJS() as Record<string, unknown>;
}

const NOTES: Record<string, string> = {
  template: 'template: the tokenizer files, with the model\'s chat template, are copied as they are',
  export_device: 'export_device: Graft merges on the CPU, in float64 rounded once to float32',
  trust_remote_code: 'trust_remote_code: Graft never runs code from a model repository',
};

export async function runExport(args: Parsed, io: CliEnv): Promise<number> {
  const file = args.positionals[0];
  const job: Record<string, unknown> = file !== undefined ? await readJobFile(file) : {};
  for (const [k, v] of Object.entries(args.values)) {
    if (v === undefined || k === 'help') continue;
    job[k === 'model' ? 'model_name_or_path' : k] = v;
  }
  const notes: string[] = [];
  for (const [k, v] of Object.entries(job)) {
    if (CANNOT[k] !== undefined) {
      if (!isOff(v)) throw new UsageError(`graft export: ${k}: ${CANNOT[k]}`);
      continue;
    }
    if (!(KEYS as readonly string[]).includes(k)) throw new UsageError(`graft export: unknown key "${k}"; the export keys are ${KEYS.join(', ')}`);
    if (NOTES[k] !== undefined && !isOff(v)) notes.push(NOTES[k]);
  }
  const str = (k: string) => (job[k] === undefined || job[k] === null ? undefined : String(job[k]));
  const model = str('model_name_or_path');
  if (model === undefined) throw new UsageError('graft export: model_name_or_path (--model) is required: the base model');
  const exportDir = str('export_dir');
  if (exportDir === undefined) throw new UsageError('graft export: export_dir is required: where the model folder goes');
  const stage = str('stage');
  if (stage !== undefined && stage !== 'sft' && stage !== 'pt') throw new UsageError(`graft export: stage "${stage}": export merges a causal-LM adapter (stage sft); a reward model is written by graft train --stage rm`);
  const ft = str('finetuning_type') ?? 'lora';
  if (ft !== 'lora') throw new UsageError(`graft export: finetuning_type "${ft}": only a LoRA adapter merges into the weights (full and freeze runs already are model folders)`);
  if (!isOff(job.export_legacy_format ?? false)) throw new UsageError('graft export: export_legacy_format: true would write PyTorch .bin files; Graft writes safetensors only (set it to false)');
  let maxShardBytes = 5e9;
  if (job.export_size !== undefined) {
    const n = Number(job.export_size);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`graft export: export_size must be a positive number of GB, not ${JSON.stringify(job.export_size)}`);
    if (!Number.isInteger(n)) notes.push(`export_size ${n}: LLaMA-Factory takes whole GB; Graft shards at ${Math.round(n * 1e9)} bytes`);
    maxShardBytes = Math.round(n * 1e9);
  }
  const revision = str('model_revision');
  const base = await resolveModelArg(model, io, revision !== undefined ? { revision } : {});
  const adapterArg = str('adapter_name_or_path');
  if (adapterArg?.includes(',')) throw new UsageError('graft export: adapter_name_or_path names several adapters; Graft merges one');
  const adapter = adapterArg !== undefined ? await resolveAdapterArg(adapterArg, io, 'adapter_name_or_path') : undefined;
  for (const n of notes) io.stderr.write(`graft export: note: ${n}\n`);

  const files = await mergedModelFiles(base.source, adapter, { maxShardBytes });
  const dir = resolve(exportDir);
  await mkdir(dir, { recursive: true });
  const order = [...files.keys()].sort((a, b) => Number(!a.endsWith('.safetensors')) - Number(!b.endsWith('.safetensors')));
  for (const name of order) await writeFileAtomic(join(dir, name), files.get(name)!);
  const shards = [...files.keys()].filter((n) => n.endsWith('.safetensors')).length;
  io.stdout.write(`${adapter ? `merged ${adapterArg} into ${model}` : `wrote ${model}`}: ${dir} (${shards} safetensors file${shards === 1 ? '' : 's'}, ${files.size} files)\n`);
  return 0;
}
