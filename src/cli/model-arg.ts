// `--model <dir|repo>`: a folder on disk, or a hub repository id that is downloaded into the cache folder
// first (or found there complete, which needs no network: a cached model works offline).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_REVISION, downloadModel, type DownloadProgress } from '../hub/client';
import { formatBytes } from '../hub/errors';
import { checkRepo, type CachedModel } from '../hub/store';
import { NodeFolderStore, nodeHubSettings } from '../hub/store-node';
import { storeSource, type ModelSource } from '../model/source';
import { folderSource, type FolderSource } from './folder-source';
import { DownloadReporter, formatDuration, type ProgressStream } from './progress';
import { CliError } from './report';

export interface CliEnv {
  env: Record<string, string | undefined>;
  stdout: ProgressStream;
  stderr: ProgressStream;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
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
  options: { revision?: string; token?: string; force?: boolean } = {},
): Promise<HubDownload> {
  checkRepo(repo);
  const settings = nodeHubSettings(io.env);
  if (settings.endpoint !== undefined && !/^https?:\/\/[^/]/i.test(settings.endpoint)) {
    throw new CliError('bad-endpoint', `HF_ENDPOINT=${settings.endpoint} is not an http:// or https:// address (unset it to use https://huggingface.co).`);
  }
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

/** `--adapter <dir>`: a PEFT adapter folder. */
export async function resolveAdapterArg(arg: string): Promise<FolderSource> {
  return folderSource(resolve(arg), 'adapter');
}
