// graft generate: a model (folder or hub id), optionally adapters of any kind loaded beside it, and text from a
// prompt with the one `--use` names, streamed or as JSON; docs/cli.md ("graft generate").
import { UnsupportedModelError } from '../model/config';
import { describeModel } from '../model/info';
import { loadModel } from '../model/load';
import {
  numberOption,
  requiredString,
  stringList,
  stringOption,
  UsageError,
  type CommandSpec,
  type Parsed,
} from './args';
import { openGpu } from './gpu';
import { MODEL_OPTIONS, resolveAdapterArg, resolveModelArg, type CliEnv } from './model-arg';

export const generateSpec: CommandSpec = {
  name: 'generate',
  summary: 'Generate text with a model, optionally with an adapter (LoRA, prompt tuning or bottleneck).',
  usage: 'generate --model <dir|repo> --prompt "..." [options]',
  details:
    '--model is a model folder or a hub id (downloaded into the cache first, or read from it offline).\n' +
    'With --chat the prompt becomes one user message rendered with the model\'s chat template and the\n' +
    'generation prompt; without it the prompt is tokenized as it is. Sampling defaults come from the model\'s\n' +
    'generation_config.json; --greedy takes the most likely token at each step.\n' +
    'Several --adapter flags load several adapters beside one copy of the model; --use picks the one to\n' +
    'generate with (by its name: the part before "=", or the folder\'s name).',
  options: {
    ...MODEL_OPTIONS,
    adapter: {
      type: 'string',
      multiple: true,
      value: '[name=]<dir|repo>',
      description: 'An adapter folder (PEFT LoRA or PROMPT_TUNING, or bottleneck) or a hub adapter id owner/name[@revision] (hf://owner/name: the hub even when a folder has that name); repeat for several.',
    },
    use: { type: 'string', value: 'NAME', description: 'The loaded adapter to generate with ("base": none).' },
    prompt: { type: 'string', short: 'p', value: '"..."', description: 'The prompt.' },
    chat: { type: 'boolean', description: 'Render the prompt as a user message with the chat template.' },
    'max-new-tokens': { type: 'string', short: 'n', value: 'N', description: 'Tokens to generate at most (default 128).' },
    greedy: { type: 'boolean', description: 'Greedy decoding (no sampling).' },
    temperature: { type: 'string', value: 'T', description: 'Sampling temperature (0 means greedy).' },
    'top-k': { type: 'string', value: 'K', description: 'Sample from the K most likely tokens (0: all).' },
    'top-p': { type: 'string', value: 'P', description: 'Nucleus sampling: the smallest set with probability ≥ P.' },
    'repetition-penalty': { type: 'string', value: 'R', description: 'Penalty for tokens already in the text (1: none).' },
    seed: { type: 'string', value: 'S', description: 'Sampler seed, for repeatable samples.' },
    'ignore-eos': { type: 'boolean', description: 'Keep generating after an end-of-sequence token.' },
    'max-positions': { type: 'string', value: 'N', description: 'Cap the context (prompt + new tokens) below the model\'s.' },
    json: { type: 'boolean', description: 'Print {"prompt_ids", "new_ids", "text"} as one JSON object.' },
  },
  examples: [
    'graft generate --model HuggingFaceTB/SmolLM2-135M-Instruct --chat --prompt "What is LoRA?"',
    'graft generate --model ./my-model --adapter ./my-adapter --chat --greedy -n 64 --prompt "Hello"',
    'graft generate --model HuggingFaceTB/SmolLM2-135M-Instruct --adapter someone/smollm2-lora@v1 --prompt "Hello"',
    'graft generate --model ./my-model --adapter qa=./qa-adapter --adapter sum=./sum-adapter --use sum --prompt "..."',
  ],
};

/** `[name=]<dir>`: the name defaults to the folder's last part. */
function parseAdapterArg(arg: string): { name: string; path: string } {
  const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(arg);
  if (m) return { name: m[1]!, path: m[2]! };
  const parts = arg.split(/[\\/]/).filter((p) => p !== '' && p !== '.');
  return { name: (parts[parts.length - 1] ?? 'adapter').replace(/@.*$/, ''), path: arg };
}

/** The adapter to generate with: --use, or the only one given; null: the base model. */
function chooseAdapter(names: string[], use: string | undefined): string | null {
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new UsageError(`graft generate: two adapters are named "${dup}"; name them with --adapter NAME=<dir>`);
  if (use === undefined) {
    if (names.length > 1) throw new UsageError(`graft generate: ${names.length} adapters are loaded (${names.join(', ')}); choose one with --use NAME (or --use base)`);
    return names[0] ?? null;
  }
  if (names.includes(use)) return use;
  if (use === 'base') return null;
  throw new UsageError(`graft generate: --use ${use} names no loaded adapter; loaded: ${names.length ? names.join(', ') : 'none'} (or base)`);
}

export async function runGenerate(args: Parsed, io: CliEnv): Promise<number> {
  const cmd = 'generate';
  const v = args.values;
  const modelArg = requiredString(cmd, v, 'model', '<dir|repo>');
  const prompt = stringOption(cmd, v, 'prompt');
  if (prompt === undefined) throw new UsageError('graft generate: --prompt "..." is required (see graft generate --help)');
  const maxNewTokens = numberOption(cmd, v, 'max-new-tokens', { integer: true, min: 1 }) ?? 128;
  const temperature = numberOption(cmd, v, 'temperature', { min: 0 });
  const topK = numberOption(cmd, v, 'top-k', { integer: true, min: 0 });
  const topP = numberOption(cmd, v, 'top-p', { min: 0, max: 1, minExclusive: true });
  const repetitionPenalty = numberOption(cmd, v, 'repetition-penalty', { min: 0, minExclusive: true });
  const seed = numberOption(cmd, v, 'seed', { integer: true, min: 0 });
  const maxPositions = numberOption(cmd, v, 'max-positions', { integer: true, min: 1 });
  const revision = stringOption(cmd, v, 'revision');
  const adapterArgs = stringList(cmd, v, 'adapter').map(parseAdapterArg);
  const use = chooseAdapter(adapterArgs.map((a) => a.name), stringOption(cmd, v, 'use'));
  const json = v.json === true;

  const resolved = await resolveModelArg(modelArg, io, revision !== undefined ? { revision } : {});
  const adapterSources: { name: string; source: Awaited<ReturnType<typeof resolveAdapterArg>> }[] = [];
  for (const a of adapterArgs) adapterSources.push({ name: a.name, source: await resolveAdapterArg(a.path, io) }); // one download at a time: one progress line
  // What can be checked without the GPU is checked first: a folder that is not a model fails here, fast.
  const info = await describeModel(resolved.source);
  if (!info.supported) throw new UnsupportedModelError(info.unsupportedReason ?? `${info.architecture} is not supported yet.`);
  const { ctx } = await (io.openGpu ?? openGpu)();
  const loaded = await loadModel(ctx, resolved.source, maxPositions !== undefined ? { maxPositions } : {});
  try {
    for (const a of adapterSources) await loaded.loadAdapter(a.source, a.name);
    const adapter = use ?? undefined;
    const promptIds = v.chat ? loaded.chatPromptIds(prompt) : loaded.tokenizer.encode(prompt);
    if (promptIds.length === 0) throw new UsageError('graft generate: the prompt is empty: there is nothing to continue');
    const result = await loaded.generate(
      promptIds,
      {
        maxNewTokens,
        ...(v.greedy ? { greedy: true } : {}),
        ...(temperature !== undefined ? { temperature } : {}),
        ...(topK !== undefined ? { topK } : {}),
        ...(topP !== undefined ? { topP } : {}),
        ...(repetitionPenalty !== undefined ? { repetitionPenalty } : {}),
        ...(seed !== undefined ? { seed } : {}),
        ...(v['ignore-eos'] ? { stopAtEos: false } : {}),
        ...(adapter !== undefined ? { adapter } : {}),
        signal: io.signal,
      },
      json ? undefined : (_id, delta) => void io.stdout.write(delta),
    );
    if (json) {
      io.stdout.write(`${JSON.stringify({ prompt_ids: result.promptIds, new_ids: result.newIds, text: result.text })}\n`);
    } else {
      io.stdout.write('\n');
      if (result.stopReason === 'aborted') io.stderr.write('graft: generation interrupted\n');
    }
    return result.stopReason === 'aborted' ? 130 : 0;
  } finally {
    loaded.dispose();
    ctx.destroy();
  }
}
