// `graft train --dataset NAME`: what a dataset name means on the command line (a file, a dataset_info.json entry
// or a hub dataset, in that order), and reading hub datasets through the cache; docs/cli.md ("Dataset names").
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import {
  fetchHubDatasetFile,
  listHubDatasetFiles,
  loadHubDataset,
  parseHubDatasetId,
  pickDatasetFiles,
  type DatasetFileCache,
  type HubDataset,
  type HubDatasetFile,
  type HubDatasetOptions,
} from '../data/hub-dataset';
import { datasetInfoEntry, DatasetInfoError, parseDatasetInfo, type DatasetInfo } from '../data/dataset-info';
import { nodeHubSettings } from '../hub/store-node';
import type { CliEnv } from './model-arg';
import { CliError } from './report';

/** A dataset to read; `info`: its dataset_info.json entry, when it was named there (formatting, columns, tags, ranking). */
export type DatasetRef =
  | { kind: 'file'; name: string; path: string; info?: DatasetInfo }
  | { kind: 'hub'; name: string; repo: string; revision?: string; file?: string; split?: string; info?: DatasetInfo };

/** Resolves one dataset name by the rule of docs/cli.md ("Dataset names"). Throws CliError('no-dataset') saying what is accepted. */
export async function resolveDatasetArg(name: string, datasetDir: string, jobDir: string | undefined, io?: CliEnv): Promise<DatasetRef> {
  const candidates = [resolve(name)];
  if (jobDir && !isAbsolute(name)) candidates.push(join(jobDir, name));
  for (const c of candidates) if (existsSync(c) && statSync(c).isFile()) return { kind: 'file', name, path: c };
  // LLaMA-Factory's way: a name in dataset_dir/dataset_info.json.
  for (const base of [resolve(datasetDir), ...(jobDir ? [join(jobDir, datasetDir)] : [])]) {
    const infoFile = join(base, 'dataset_info.json');
    if (!existsSync(infoFile)) continue;
    let entries: Record<string, unknown>;
    let entry: DatasetInfo;
    try {
      entries = parseDatasetInfo(await readFile(infoFile, 'utf8'));
      if (!Object.hasOwn(entries, name)) continue;
      entry = datasetInfoEntry(name, entries[name]);
    } catch (e) {
      if (e instanceof DatasetInfoError) throw new CliError('bad-dataset', `${infoFile}: ${e.message.replace(/^dataset_info\.json: /, '')}; fix it or name the dataset file directly.`);
      throw e;
    }
    if (entry.file_name !== undefined && existsSync(join(base, entry.file_name))) return { kind: 'file', name, path: join(base, entry.file_name), info: entry };
    if (entry.file_name !== undefined && entry.hf_hub_url === undefined) {
      throw new CliError('no-dataset', `${infoFile}: "${name}" names file_name "${entry.file_name}", which is not in ${base}.`);
    }
    if (entry.hf_hub_url !== undefined) {
      const hub = parseHubDatasetId(entry.hf_hub_url);
      if (!hub) throw new CliError('bad-dataset', `${infoFile}: "${name}" has hf_hub_url "${entry.hf_hub_url}", which is not a hub dataset id like "owner/name".`);
      if (entry.subset !== undefined && io) io.stderr.write(`graft train: note: ${infoFile}: "${name}" names subset ${JSON.stringify(entry.subset)}; Graft reads the dataset's data files and ignores subsets\n`);
      return {
        kind: 'hub',
        name,
        repo: hub.repo,
        ...(typeof entry.revision === 'string' ? { revision: entry.revision } : hub.revision !== undefined ? { revision: hub.revision } : {}),
        ...(hub.file !== undefined ? { file: hub.file } : {}),
        ...(typeof entry.split === 'string' ? { split: entry.split } : {}),
        info: entry,
      };
    }
  }
  const hub = parseHubDatasetId(name);
  if (hub) return { kind: 'hub', name, ...hub };
  throw new CliError(
    'no-dataset',
    `dataset ${name} is not a file (graft train reads a local JSON or JSON Lines file, a name in ${datasetDir}/dataset_info.json, ` +
      'or a hub dataset: owner/name[@revision], or hf://datasets/owner/name[@revision]/<file> for one file of it).',
  );
}

/** What a dataset is called in messages and as a task: the file name, or the hub dataset's name (with its file). */
export function datasetLabel(ref: DatasetRef): string {
  if (ref.kind === 'file') return ref.path.slice(Math.max(ref.path.lastIndexOf('/'), ref.path.lastIndexOf('\\')) + 1);
  return ref.file !== undefined ? `${ref.repo}/${ref.file}` : ref.repo;
}

/** Dataset files kept in a folder, one file per content key (written whole, then renamed into place). */
export class NodeDatasetCache implements DatasetFileCache {
  constructor(readonly dir: string) {}

  private path(key: string): string {
    return join(this.dir, encodeURIComponent(key));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const b = await readFile(this.path(key));
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.path(key)}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, this.path(key));
  }
}

type HubRef = Extract<DatasetRef, { kind: 'hub' }>;

/** The hub options of a reference on the command line: HF_ENDPOINT, HF_TOKEN, the cache under GRAFT_CACHE/datasets. */
function hubOptions(ref: HubRef, io: CliEnv): HubDatasetOptions & { cache: NodeDatasetCache } {
  const settings = nodeHubSettings(io.env);
  return {
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.token ? { token: settings.token } : {}),
    ...(ref.revision !== undefined ? { revision: ref.revision } : {}),
    ...(ref.file !== undefined ? { file: ref.file } : {}),
    ...(ref.split !== undefined ? { split: ref.split } : {}),
    signal: io.signal,
    cache: new NodeDatasetCache(join(settings.cacheDir, 'datasets')),
  };
}

/**
 * One JSON or JSON Lines file of a hub dataset as bytes, for the readers that take bytes (preference pairs): the
 * file the reference names, else the one data file of its split. Cached like readHubDataset's files.
 */
export async function readHubDatasetFile(ref: HubRef, io: CliEnv): Promise<{ file: string; bytes: Uint8Array }> {
  const options = hubOptions(ref, io);
  const tree = await listHubDatasetFiles(ref.repo, options);
  let f: HubDatasetFile;
  if (ref.file !== undefined) {
    f = tree?.find((x) => x.path === ref.file) ?? { path: ref.file };
  } else {
    if (!tree) throw new CliError('bad-dataset', `The hub at this endpoint does not list the files of ${ref.repo}; name the file: hf://datasets/${ref.repo}/<file>.`);
    const files = pickDatasetFiles(tree, ref.split ?? 'train', `The dataset ${ref.repo}`);
    if (files.length !== 1) {
      throw new CliError('bad-dataset', `The ${ref.split ?? 'train'} split of ${ref.repo} has ${files.length} files (${files.slice(0, 4).map((x) => x.path).join(', ')}${files.length > 4 ? ', ...' : ''}); preference pairs are read from one: name it as hf://datasets/${ref.repo}/<file>.`);
    }
    f = files[0]!;
  }
  if (!/\.(jsonl|json)$/i.test(f.path)) throw new CliError('bad-dataset', `${f.path} of ${ref.repo} is not a JSON or JSON Lines file; preference pairs are read from those.`);
  const version = f.sha256 ?? f.oid;
  const key = version !== undefined ? `datasets/${ref.repo}/${f.path}@${version}` : undefined;
  const cached = key ? await options.cache.get(key) : undefined;
  if (cached && (f.size === undefined || cached.length === f.size)) {
    io.stderr.write(`graft train: dataset ${ref.repo}: ${f.path} from the cache\n`);
    return { file: f.path, bytes: cached };
  }
  io.stderr.write(`graft train: dataset ${ref.repo}: downloading ${f.path}\n`);
  const bytes = await fetchHubDatasetFile(ref.repo, f, options);
  if (key) await options.cache.put(key, bytes);
  return { file: f.path, bytes };
}

/** Reads a hub dataset (HF_ENDPOINT, HF_TOKEN, cached under GRAFT_CACHE/datasets), reporting each file on stderr. */
export async function readHubDataset(ref: HubRef, io: CliEnv): Promise<HubDataset> {
  return loadHubDataset(ref.repo, {
    ...hubOptions(ref, io),
    onProgress: (p) => {
      if (p.phase === 'download') io.stderr.write(`graft train: dataset ${ref.repo}: downloading ${p.file} (${p.index + 1}/${p.count})\n`);
      if (p.phase === 'cached') io.stderr.write(`graft train: dataset ${ref.repo}: ${p.file} (${p.index + 1}/${p.count}) from the cache\n`);
    },
  });
}
