// The weights of a model folder (one safetensors file, or an index and its shards), checked before any weight is
// used; how they are read and what streaming would change: docs/model.md ("Weight files").
import { headerLength, parseHeader, SafetensorsFile, SafetensorsError, type TensorInfo } from './safetensors';
import type { WeightSource } from './params';
import { ModelError, readHead, readJson, type ModelSource } from './source';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** What the model core reads weights through (params.ts). */
export type { WeightSource } from './params';

/** The safetensors layout of a model folder, from the index (or the single file). */
export interface WeightLayout {
  /** The weight files, in the order they are read. */
  files: string[];
  /** tensor name → file, for sharded models (from the index's weight_map). Undefined for a single file. */
  weightMap?: Map<string, string>;
}

/** Finds `model.safetensors` (preferred, as transformers does) or the sharded index. */
export async function weightLayout(source: ModelSource): Promise<WeightLayout> {
  const single = await readHead(source, SINGLE_FILE, 0);
  if (single) return { files: [SINGLE_FILE] };
  const index = await readJson(source, INDEX_FILE, false);
  if (!index) {
    // Only a source that can tell a file exists without reading it is asked about the (large) pickle files.
    const bin =
      source.readHead !== undefined &&
      ((await source.readHead('pytorch_model.bin', 0)) ?? (await source.readHead('pytorch_model.bin.index.json', 0))) !== undefined;
    throw new ModelError(
      'missing-file',
      bin
        ? `${source.name} has its weights only as pytorch_model.bin, which Graft cannot read (it is a Python pickle). Use a repository with model.safetensors.`
        : `${source.name} has neither ${SINGLE_FILE} nor ${INDEX_FILE}: there are no weights to load.`,
      { file: SINGLE_FILE },
    );
  }
  return parseIndex(index, source.name);
}

function parseIndex(index: Record<string, unknown>, where: string): WeightLayout {
  const wm = index.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new ModelError('bad-file', `${INDEX_FILE} in ${where} has no "weight_map" object.`, { file: INDEX_FILE });
  }
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof file !== 'string' || !isSafeRelativePath(file)) {
      throw new ModelError('bad-file', `${INDEX_FILE} in ${where} maps "${name}" to ${JSON.stringify(file)}, which is not a file name in the folder.`, {
        file: INDEX_FILE,
      });
    }
    if (!file.endsWith('.safetensors')) {
      throw new ModelError('bad-file', `${INDEX_FILE} in ${where} maps "${name}" to ${file}, which is not a .safetensors file.`, { file: INDEX_FILE });
    }
    weightMap.set(name, file);
    if (!files.includes(file)) files.push(file);
  }
  if (weightMap.size === 0) throw new ModelError('bad-file', `${INDEX_FILE} in ${where} has an empty weight_map.`, { file: INDEX_FILE });
  return { files, weightMap };
}

function isSafeRelativePath(p: string): boolean {
  const parts = p.split('/');
  return p.length > 0 && !p.includes('\\') && !p.includes('\0') && parts.every((x) => x !== '' && x !== '.' && x !== '..');
}

/** Checks every weight_map entry against the shards' tensors; the message names the index and the shard. */
function checkWeightMap(layout: WeightLayout, tensorsOf: Map<string, Map<string, unknown>>, where: string): void {
  if (!layout.weightMap) return;
  for (const [name, file] of layout.weightMap) {
    if (!tensorsOf.get(file)?.has(name)) {
      throw new ModelError(
        'bad-file',
        `${INDEX_FILE} in ${where} says tensor "${name}" is in ${file}, but ${file} has no such tensor. The index and the shards do not match; download the model again.`,
        { file },
      );
    }
  }
}

async function readShard(source: ModelSource, file: string, layout: WeightLayout): Promise<Uint8Array> {
  const bytes = await source.readFile(file);
  if (bytes === undefined) {
    throw new ModelError(
      'missing-file',
      layout.weightMap
        ? `${file} is missing from ${source.name}, but ${INDEX_FILE} lists it as a shard of the weights. Download the model again.`
        : `${file} is missing from ${source.name}.`,
      { file },
    );
  }
  return bytes;
}

function asModelError(e: unknown, file: string): unknown {
  if (e instanceof SafetensorsError) return new ModelError('bad-file', e.message, { file, cause: e });
  return e;
}

export interface ReadProgress {
  loadedBytes: number;
  totalBytes: number;
  file: string;
}

/** The weights of a model folder in memory: a WeightSource over one file or a validated set of shards. */
export class SafetensorsWeights implements WeightSource {
  private constructor(
    private readonly shards: Map<string, SafetensorsFile>,
    private readonly owner: Map<string, SafetensorsFile>,
    readonly files: string[],
  ) {}

  /** Reads the weight files of `source` (see the note at the top of this file), reporting bytes read. */
  static async read(source: ModelSource, onProgress?: (p: ReadProgress) => void): Promise<SafetensorsWeights> {
    // A source without readHead is read whole once: the files stay in memory anyway.
    if (!source.readHead) source = cachingSource(source);
    const layout = await weightLayout(source);
    // Sizes up front (without reading the data), so the progress has a total; a missing shard fails here,
    // before anything large is read.
    let totalBytes = 0;
    const sizes = new Map<string, number>();
    for (const file of layout.files) {
      const head = await readHead(source, file, 0);
      if (!head) await readShard(source, file, layout); // throws the missing-shard error
      sizes.set(file, head!.size);
      totalBytes += head!.size;
    }
    const shards = new Map<string, SafetensorsFile>();
    let loadedBytes = 0;
    for (const file of layout.files) {
      const bytes = await readShard(source, file, layout);
      try {
        shards.set(file, new SafetensorsFile(bytes, file));
      } catch (e) {
        throw asModelError(e, file);
      }
      loadedBytes += bytes.length;
      totalBytes += bytes.length - sizes.get(file)!;
      onProgress?.({ loadedBytes, totalBytes, file });
    }
    return SafetensorsWeights.fromFiles(shards, layout, source.name);
  }

  /** Builds the WeightSource from parsed files (exported for tests and for weights built in memory). */
  static fromFiles(shards: Map<string, SafetensorsFile>, layout: WeightLayout, where: string): SafetensorsWeights {
    checkWeightMap(layout, new Map([...shards].map(([f, s]) => [f, s.header.tensors])), where);
    const owner = new Map<string, SafetensorsFile>();
    if (layout.weightMap) {
      for (const [name, file] of layout.weightMap) owner.set(name, shards.get(file)!);
    } else {
      for (const s of shards.values()) for (const name of s.names) owner.set(name, s);
    }
    return new SafetensorsWeights(shards, owner, layout.files);
  }

  get names(): string[] {
    return [...this.owner.keys()];
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  info(name: string): TensorInfo {
    return this.file(name).info(name);
  }

  float32(name: string): Float32Array {
    return this.file(name).float32(name);
  }

  bits16(name: string): Uint16Array {
    return this.file(name).bits16(name);
  }

  /** The headers of the files held, as readWeightHeaders gives them. */
  headers(): WeightHeaders {
    const tensors = new Map<string, TensorInfo>();
    for (const [name, f] of this.owner) tensors.set(name, f.info(name));
    return { files: this.files.map((path) => ({ path, size: this.shards.get(path)!.bytes.length })), tensors };
  }

  /** Drops the file bytes (after the weights are on the GPU); the WeightSource is unusable afterwards. */
  release(): void {
    this.shards.clear();
    this.owner.clear();
  }

  /** Bytes of every weight file. */
  get byteLength(): number {
    let n = 0;
    for (const s of this.shards.values()) n += s.bytes.length;
    return n;
  }

  private file(name: string): SafetensorsFile {
    const f = this.owner.get(name);
    if (!f) {
      throw new ModelError('bad-file', `The weights have no tensor named "${name}" (looked in ${this.files.join(', ')}).`, {
        file: this.files[0] ?? SINGLE_FILE,
      });
    }
    return f;
  }
}

/** Memoizes whole-file reads, and serves readHead from them. */
function cachingSource(source: ModelSource): ModelSource {
  const cache = new Map<string, Promise<Uint8Array | undefined>>();
  const readFile = (path: string) => {
    let p = cache.get(path);
    if (!p) cache.set(path, (p = source.readFile(path)));
    return p;
  };
  return {
    name: source.name,
    readFile,
    async readHead(path, length) {
      const b = await readFile(path);
      return b && { bytes: b.subarray(0, Math.min(length, b.length)), size: b.length };
    },
  };
}

/** Tensor headers of every weight file, read without the tensor data when the source supports readHead. */
export interface WeightHeaders {
  files: { path: string; size: number }[];
  /** tensor name → header entry (for sharded models, the entry in the shard the index names). */
  tensors: Map<string, TensorInfo>;
}

export async function readWeightHeaders(source: ModelSource): Promise<WeightHeaders> {
  if (!source.readHead) source = cachingSource(source);
  const layout = await weightLayout(source);
  const files: { path: string; size: number }[] = [];
  const perFile = new Map<string, Map<string, TensorInfo>>();
  for (const file of layout.files) {
    const first = await readHead(source, file, 8);
    if (!first) await readShard(source, file, layout);
    try {
      const len = headerLength(first!.bytes, first!.size, file);
      const head = await readHead(source, file, 8 + len);
      perFile.set(file, parseHeader(head!.bytes.subarray(8, 8 + len), head!.size, file).tensors);
    } catch (e) {
      throw asModelError(e, file);
    }
    files.push({ path: file, size: first!.size });
  }
  checkWeightMap(layout, perFile, source.name);
  const tensors = new Map<string, TensorInfo>();
  if (layout.weightMap) {
    for (const [name, file] of layout.weightMap) tensors.set(name, perFile.get(file)!.get(name)!);
  } else {
    for (const m of perFile.values()) for (const [name, t] of m) tensors.set(name, t);
  }
  return { files, tensors };
}
