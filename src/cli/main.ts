// The `graft` command: download, generate, info. bin/graft.mjs registers tsx and the `?raw` loader, then
// calls main() with the arguments and exits with the code it returns.
//
// Failures end with a non-zero exit code and ONE line on stderr: the error's message (Graft's typed errors say
// what happened and what to do). GRAFT_DEBUG=1 adds the stack and the causes.
import { commandHelp, parseCommand, UsageError, type CommandSpec, type Parsed } from './args';
import { downloadSpec, runDownload } from './download';
import type { CliEnv } from './model-arg';
import type { ProgressStream } from './progress';
import { debugDetails, exitCodeFor, oneLine } from './report';

interface Command {
  spec: CommandSpec;
  run(args: Parsed, io: CliEnv): Promise<number>;
}

/** Commands load their modules on use: `graft download` never loads the GPU engine. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  download: async () => ({ spec: downloadSpec, run: runDownload }),
  generate: async () => {
    const m = await import('./generate');
    return { spec: m.generateSpec, run: m.runGenerate };
  },
  info: async () => {
    const m = await import('./info');
    return { spec: m.infoSpec, run: m.runInfo };
  },
  train: async () => ({ spec: (await import('./train-spec')).trainSpec, run: (await import('./train')).runTrain }),
  score: async () => ({ spec: (await import('./score')).scoreSpec, run: (await import('./score')).runScore }),
  export: async () => ({ spec: (await import('./export')).exportSpec, run: (await import('./export')).runExport }),
  'init-model': async () => ({ spec: (await import('./init-model')).initModelSpec, run: (await import('./init-model')).runInitModel }),
};

const SUMMARIES: [string, string][] = [
  ['download', 'Download a model from the Hugging Face hub into the cache folder.'],
  ['generate', 'Generate text with a model (a folder or a hub id), optionally with adapters: PEFT LoRA, PEFT prompt tuning or Graft bottleneck adapters.'],
  ['info', 'Describe a model (architecture, parameters, memory needed), an adapter and the GPU.'],
  ['train', 'Fine-tune a model (sft, dpo or rm; LoRA, full, freeze, bottleneck adapters or prompt tuning) from a LLaMA-Factory job or flags; --do_predict scores generated answers.'],
  ['score', 'Rate a prompt/answer pair with a reward model (graft train --stage rm).'],
  ['export', "Merge a LoRA adapter into its base as a Hugging Face model folder (LLaMA-Factory's export stage)."],
  ['init-model', 'Write a small randomly initialised Llama (Hugging Face format), e.g. the built-in demo model.'],
];

export function mainHelp(): string {
  const width = Math.max(...SUMMARIES.map(([n]) => n.length)) + 2;
  return [
    'Usage: graft <command> [options]',
    '',
    'Graft fine-tunes and runs language models on WebGPU; this is its command line (Node + Dawn).',
    '',
    'Commands:',
    ...SUMMARIES.map(([n, s]) => `  ${n.padEnd(width)}${s}`),
    '',
    'Run `graft <command> --help` for the options of a command.',
    '',
    'Environment:',
    '  HF_ENDPOINT   the hub to download from (default https://huggingface.co)',
    '  HF_TOKEN      access token for gated or private models',
    '  GRAFT_CACHE   the cache folder for downloaded models (default ~/.cache/graft/models)',
    '  GRAFT_DEBUG   1: show the stack of an error',
    '',
  ].join('\n');
}

export interface MainIo {
  stdout: ProgressStream;
  stderr: ProgressStream;
  env: Record<string, string | undefined>;
  signal: AbortSignal;
  /** See CliEnv.openGpu. */
  openGpu?: CliEnv['openGpu'];
}

/** Runs one command; returns the exit code. Never throws. */
export async function main(argv: string[], io: MainIo): Promise<number> {
  const debug = io.env.GRAFT_DEBUG === '1' || io.env.GRAFT_DEBUG === 'true';
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      if (name === 'help' && rest[0] && COMMANDS[rest[0]]) {
        io.stdout.write(commandHelp((await COMMANDS[rest[0]]!()).spec));
      } else {
        io.stdout.write(mainHelp());
      }
      return 0;
    }
    if (name === '--version' || name === '-v') {
      io.stdout.write(`${await version()}\n`);
      return 0;
    }
    const load = COMMANDS[name];
    if (!load) {
      throw new UsageError(
        name.startsWith('-')
          ? `graft: unknown option ${name} (commands come first: graft <command> [options]; see graft --help)`
          : `graft: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')}; see graft --help)`,
      );
    }
    const command = await load();
    const args = parseCommand(command.spec, rest);
    if (args.values.help) {
      io.stdout.write(commandHelp(command.spec));
      return 0;
    }
    return await command.run(args, io);
  } catch (e) {
    io.stderr.write(`${oneLine(e, debug)}\n`);
    if (debug) io.stderr.write(`${debugDetails(e)}\n`);
    return exitCodeFor(e);
  }
}

async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `graft ${pkg.version}`;
}
