// `--model <dir|repo>`: a folder on disk, or a hub repository id that is downloaded into the cache folder
// first (or found there complete, which needs no network: a cached model works offline).
// `--adapter` / adapter_name_or_path: the same for adapters (resolveAdapterArg): a folder that exists, else a hub
// repository "owner/name" or "owner/name@revision" (adapter_config.json + adapter_model.safetensors) through the
// same client and cache. "./owner/name" always means the folder, "hf://owner/name[@revision]" always the hub.
import type { CliGpu } from './gpu';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_REVISION, downloadModel, endpointProblem, type DownloadProgress } from '../hub/client';
import { formatBytes } from '../engine/errors';
import { checkRepo, type CachedModel } from '../hub/store';
import { NodeFolderStore, nodeHubSettings } from '../hub/store-node';
import { storeSource, type ModelSource } from '../model/source';
import type { OptionSpec } from './args';
import { folderSource, type FolderSource } from './folder-source';
import { DownloadReporter, formatDuration, type ProgressStream } from './progress';
import { CliError } from './report';

/** The --model and --revision options of the commands that take a model. */
export const MODEL_OPTIONS = {
  model: { type: 'string', short: 'm', value: '<dir|repo>', description: 'Model folder or hub model id.' },
  revision: { type: 'string', value: 'R', description: 'Hub revision of a hub model (default main).' },
} as const satisfies Record<string, OptionSpec>;

export interface CliEnv {
  env: Record<string, string | undefined>;
  stdout: ProgressStream;
  stderr: ProgressStream;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
  /**
   * Where a command gets its GPU context (default: openGpu, a device of its own). A program that runs commands
   * inside itself (the tests) passes contexts on one device it keeps, so kernels compile once for all of them.
   */
  openGpu?: () => Promise<CliGpu>;
}

/** True when `arg` can only be meant as a path (./x, ../x, /x, ~/x, C:\x, more than one slash). */
export function looksLikePath(arg: string): boolean {
  return /^(\.{1,2}([/\\]|$)|[/\\~]|[A-Za-z]:[/\\])/.test(arg) || arg.split('/').length > 2 || arg.includes('\\');
}

export interface HubDownload {
  model: CachedModel;
  store: NodeFolderStore;
  /** The folder with the model's files (a plain model folder once complete). */
  dir: string;
  /** False when the model was complete in the cache already and nothing was fetched. */
  fetched: boolean;
}

/**
 * Downloads `repo` into the cache folder (GRAFT_CACHE), resuming what is stored; progress on stderr. A model
 * already stored complete is returned without any request.
 */
export async function downloadToCache(
  repo: string,
  io: CliEnv,
  options: { revision?: string; token?: string; force?: boolean; kind?: 'model' | 'adapter' } = {},
): Promise<HubDownload> {
  checkRepo(repo);
  const settings = nodeHubSettings(io.env);
  const problem = settings.endpoint !== undefined ? endpointProblem(settings.endpoint) : undefined;
  if (problem) throw new CliError('bad-endpoint', `HF_ENDPOINT=${settings.endpoint} cannot be used: ${problem} (unset it to use https://huggingface.co).`);
  const store = new NodeFolderStore({ dir: settings.cacheDir });
  const revision = options.revision ?? DEFAULT_REVISION;
  const label = revision === DEFAULT_REVISION ? repo : `${repo}@${revision}`;
  const reporter = new DownloadReporter(io.stderr, label);
  const t0 = Date.now();
  let fetched = false;
  const token = options.token ?? settings.token;
  try {
    const model = await downloadModel(repo, store, {
      revision,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(token ? { token } : {}),
      ...(options.force ? { force: true } : {}),
      ...(options.kind ? { kind: options.kind } : {}),
      signal: io.signal,
      onProgress: (p: DownloadProgress) => {
        if (p.phase !== 'done') fetched = true;
        if (fetched) reporter.update(p);
      },
    });
    const seconds = (Date.now() - t0) / 1000;
    reporter.finish(
      fetched
        ? `downloaded ${formatBytes(model.totalBytes)} (${model.files.length} files) in ${formatDuration(seconds)}`
        : undefined,
    );
    return { model, store, dir: store.filesDir(repo, revision), fetched };
  } catch (e) {
    reporter.interrupt();
    throw e;
  }
}

export interface ResolvedModel {
  source: ModelSource;
  /** Where the files are: the folder given, or the cache folder of the repo. */
  dir: string;
  /** The repo id when the model came from the hub. */
  repo?: string;
}

/** Resolves `--model`: an existing folder, else a repo id (downloaded or found in the cache). */
export async function resolveModelArg(arg: string, io: CliEnv, options: { revision?: string } = {}): Promise<ResolvedModel> {
  if (existsSync(arg) || looksLikePath(arg)) {
    const source = await folderSource(arg, 'model');
    return { source, dir: source.dir };
  }
  try {
    checkRepo(arg);
  } catch {
    throw new CliError('no-model', `--model ${arg} is neither a model folder nor a hub model id like "HuggingFaceTB/SmolLM2-135M".`);
  }
  const revision = options.revision ?? DEFAULT_REVISION;
  const { store, dir } = await downloadToCache(arg, io, { revision });
  return { source: storeSource(store, arg, revision), dir, repo: arg };
}

/** A hub reference to an adapter: "owner/name", "owner/name@revision", or either after "hf://". */
export function parseAdapterRepo(arg: string): { repo: string; revision?: string; forced: boolean } | undefined {
  const forced = arg.startsWith('hf://');
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*)(?:@([^@/\\]+))?$/.exec(forced ? arg.slice(5) : arg);
  if (!m) return undefined;
  return { repo: m[1]!, ...(m[2] !== undefined ? { revision: m[2] } : {}), forced };
}

/**
 * `--adapter` / adapter_name_or_path: an adapter folder (PEFT LoRA, prompt tuning, or a Graft bottleneck adapter),
 * or a hub repository downloaded into the cache (see the file comment). A folder that exists wins over a repo id
 * of the same spelling, with a note saying how to mean the hub. `what` names the argument in messages.
 */
export async function resolveAdapterArg(arg: string, io: CliEnv, what = '--adapter'): Promise<FolderSource & { repo?: string }> {
  const hub = parseAdapterRepo(arg);
  if (!hub?.forced && (existsSync(arg) || looksLikePath(arg) || !hub)) {
    if (!existsSync(arg) && !looksLikePath(arg)) {
      throw new CliError(
        'no-adapter',
        `${what} ${arg} is neither an adapter folder nor a hub adapter id like "owner/name" or "owner/name@revision".`,
      );
    }
    if (hub && existsSync(arg)) {
      io.stderr.write(`graft: note: ${what} ${arg} is the folder ${resolve(arg)}; write hf://${arg} for the hub repository of that name\n`);
    }
    return folderSource(resolve(arg), 'adapter');
  }
  if (!hub) throw new CliError('no-adapter', `${what} ${arg} is not a hub adapter id: write hf://owner/name or hf://owner/name@revision.`);
  const revision = hub.revision ?? DEFAULT_REVISION;
  const { dir } = await downloadToCache(hub.repo, io, { revision, kind: 'adapter' });
  const label = revision === DEFAULT_REVISION ? hub.repo : `${hub.repo}@${revision}`;
  return { ...(await folderSource(dir, 'adapter')), name: label, repo: hub.repo };
}
