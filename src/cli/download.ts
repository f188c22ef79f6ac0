// graft download <repo>: a model from the hub (HF_ENDPOINT) into the cache folder (GRAFT_CACHE), resumable.
import { stringOption, type CommandSpec, type Parsed } from './args';
import { downloadToCache, type CliEnv } from './model-arg';
import { formatBytes } from '../engine/errors';

export const downloadSpec: CommandSpec = {
  name: 'download',
  summary: 'Download a model from the Hugging Face hub into the cache folder (resumes an interrupted download).',
  usage: 'download <repo> [--revision R] [--token T] [--force]',
  details:
    'The hub is HF_ENDPOINT (default https://huggingface.co); the token HF_TOKEN unless --token is given; the\n' +
    'cache folder GRAFT_CACHE (default ~/.cache/graft/models). Progress goes to stderr; the model folder is\n' +
    'printed on stdout when the download is complete. A model already complete in the cache is not fetched again.',
  positionals: ['<repo>'],
  required: 1,
  options: {
    revision: { type: 'string', value: 'R', description: 'Branch, tag or commit (default main).' },
    token: { type: 'string', value: 'T', description: 'Access token for gated or private models (default $HF_TOKEN).' },
    force: { type: 'boolean', description: 'Download again even when the model is complete in the cache.' },
  },
  examples: ['graft download HuggingFaceTB/SmolLM2-135M-Instruct', 'HF_ENDPOINT=https://hf-mirror.com graft download Qwen/Qwen2.5-0.5B-Instruct'],
};

export async function runDownload(args: Parsed, io: CliEnv): Promise<number> {
  const repo = args.positionals[0]!;
  const revision = stringOption('download', args.values, 'revision');
  const token = stringOption('download', args.values, 'token');
  const { model, dir, fetched } = await downloadToCache(repo, io, {
    ...(revision !== undefined ? { revision } : {}),
    ...(token !== undefined ? { token } : {}),
    force: args.values.force === true,
  });
  if (!fetched) io.stderr.write(`${repo}: already complete in the cache (${model.files.length} files, ${formatBytes(model.totalBytes)})\n`);
  io.stdout.write(`${dir}\n`);
  return 0;
}
