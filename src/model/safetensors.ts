// safetensors reader and writer, following the rules of the reference implementation
// (huggingface/safetensors): 8-byte little-endian header length (at most 100 MB), a JSON object header,
// `__metadata__` string → string only, unique names, known dtypes, byte lengths equal to
// product(shape) × dtype size (overflow-checked), offsets in bounds and contiguous with no holes or overlap,
// covering the data section exactly. A file that breaks a rule is rejected with a SafetensorsError that
// names the file and the rule, before any byte of it reaches the GPU.
import { bf16BitsToF32, f16BitsToF32 } from '../engine/half';

export const MAX_HEADER_BYTES = 100_000_000;

export type SafetensorsDType =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8'
  | 'U64' | 'U32' | 'U16' | 'U8'
  | 'BOOL' | 'F8_E4M3' | 'F8_E5M2';

export const DTYPE_SIZE: Record<SafetensorsDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Where the data section starts in the file: 8 + header length. */
  dataStart: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {
  readonly code = 'bad-safetensors';
  constructor(
    readonly file: string,
    readonly rule: string,
  ) {
    super(`${file} is not a valid safetensors file: ${rule}.`);
    this.name = 'SafetensorsError';
  }
}

/** Reads the header length from the first 8 bytes. */
export function headerLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || first8.length < 8) throw new SafetensorsError(file, `it has ${fileSize} bytes, fewer than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(file, `its header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  const len = Number(n);
  if (8 + len > fileSize) throw new SafetensorsError(file, `its header length ${len} runs past the end of the file (${fileSize} bytes)`);
  return len;
}

/**
 * Parses and validates the header. `headerBytes` is the JSON text (the `len` bytes after the first 8);
 * `fileSize` is the whole file's size, so large files can be checked before their data is read.
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(file, 'its header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw new SafetensorsError(file, 'its header does not start with "{"');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(file, `its header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsError(file, 'its header is not a JSON object');
  }
  const dup = firstDuplicateTopLevelKey(text);
  if (dup !== undefined) throw new SafetensorsError(file, `the tensor name "${dup}" appears twice`);

  const dataStart = 8 + headerBytes.length;
  const dataLength = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new SafetensorsError(file, '__metadata__ is not an object of strings');
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__["${k}"] is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.set(name, tensorInfo(name, value, file));
  }

  // Offsets: sorted by start, they must tile [0, dataLength) exactly.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const t of sorted) {
    if (t.begin !== at) {
      throw new SafetensorsError(
        file,
        t.begin > at
          ? `there is a hole in the data before tensor "${t.name}" (bytes ${at}..${t.begin} belong to no tensor)`
          : `tensor "${t.name}" overlaps the tensor before it (starts at ${t.begin}, previous ends at ${at})`,
      );
    }
    at = t.end;
  }
  if (at > dataLength) {
    throw new SafetensorsError(file, `its tensors need ${at} bytes of data but the file holds ${Math.max(0, dataLength)} (truncated?)`);
  }
  if (at < dataLength) {
    throw new SafetensorsError(file, `${dataLength - at} bytes of data after the last tensor belong to no tensor`);
  }
  return { dataStart, tensors, metadata };
}

function tensorInfo(name: string, value: unknown, file: string): TensorInfo {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SafetensorsError(file, `the entry for tensor "${name}" is not an object`);
  }
  const v = value as Record<string, unknown>;
  const extra = Object.keys(v).filter((k) => k !== 'dtype' && k !== 'shape' && k !== 'data_offsets');
  if (extra.length) throw new SafetensorsError(file, `tensor "${name}" has unknown fields ${extra.join(', ')}`);
  const dtype = v.dtype;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE)) {
    throw new SafetensorsError(file, `tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
  }
  const shape = v.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(file, `tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
  }
  const offs = v.data_offsets;
  if (
    !Array.isArray(offs) ||
    offs.length !== 2 ||
    !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offs[0] > offs[1]
  ) {
    throw new SafetensorsError(file, `tensor "${name}" has invalid data_offsets ${JSON.stringify(offs)}`);
  }
  const size = DTYPE_SIZE[dtype as SafetensorsDType];
  let bytes = BigInt(size);
  for (const d of shape as number[]) bytes *= BigInt(d);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SafetensorsError(file, `tensor "${name}" of shape [${shape.join(', ')}] is too large (size overflows)`);
  }
  const [begin, end] = offs as [number, number];
  if (BigInt(end - begin) !== bytes) {
    throw new SafetensorsError(
      file,
      `tensor "${name}" is ${dtype} [${shape.join(', ')}] = ${bytes} bytes but its data_offsets span ${end - begin}`,
    );
  }
  return { name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end };
}

/** JSON.parse keeps the last of duplicate keys silently; the format forbids them, so scan for them. */
function firstDuplicateTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      if (depth === 1 && c === '{') expectKey = true;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

/** A whole safetensors file in memory. */
export class SafetensorsFile {
  readonly header: SafetensorsHeader;
  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
  ) {
    const len = headerLength(bytes.subarray(0, 8), bytes.length, file);
    this.header = parseHeader(bytes.subarray(8, 8 + len), bytes.length, file);
  }

  get names(): string[] {
    return [...this.header.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new Error(`${this.file} has no tensor named "${name}"`);
    return t;
  }

  /** The raw bytes of a tensor (a view, not a copy). */
  raw(name: string): Uint8Array {
    const t = this.info(name);
    return this.bytes.subarray(this.header.dataStart + t.begin, this.header.dataStart + t.end);
  }

  /** An F16 or BF16 tensor's values as their 16 bits, little-endian (a copy, aligned). */
  bits16(name: string): Uint16Array {
    const t = this.info(name);
    if (t.dtype !== 'F16' && t.dtype !== 'BF16') throw new Error(`${this.file}: ${name} is ${t.dtype}, not a 16-bit float tensor`);
    const raw = this.raw(name);
    const out = new Uint16Array(raw.byteLength / 2);
    new Uint8Array(out.buffer).set(raw);
    return out;
  }

  /** A floating-point tensor widened to f32. */
  float32(name: string): Float32Array {
    const t = this.info(name);
    return toFloat32(this.raw(name), t.dtype, `${this.file}: ${name}`);
  }
}

/** Converts F32/F16/BF16/F64 little-endian bytes to a Float32Array (always a copy). */
export function toFloat32(raw: Uint8Array, dtype: SafetensorsDType, what: string): Float32Array {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const n = raw.byteLength / DTYPE_SIZE[dtype];
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32(dv.getUint16(i * 2, true));
      return out;
    case 'BF16':
      for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(dv.getUint16(i * 2, true));
      return out;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    default:
      throw new Error(`${what} has dtype ${dtype}; Graft reads weights stored as F32, F16, BF16 or F64`);
  }
}

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  /** Little-endian bytes, or a typed array matching the dtype. */
  data: Uint8Array | Float32Array | Uint16Array | Int32Array | Uint32Array | Float64Array;
}

/**
 * Writes a safetensors file. Tensors are laid out in the order given; the header is padded with spaces to a
 * multiple of 8 bytes, as the reference writer does, so that data stays aligned.
 */
export function writeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const chunks: Uint8Array[] = [];
  for (const t of tensors) {
    if (t.name in header) throw new Error(`writeSafetensors: duplicate tensor name ${t.name}`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    let expected = DTYPE_SIZE[t.dtype];
    for (const d of t.shape) expected *= d;
    if (bytes.byteLength !== expected) {
      throw new Error(`writeSafetensors: ${t.name} is ${t.dtype} [${t.shape.join(', ')}] but has ${bytes.byteLength} bytes`);
    }
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    chunks.push(bytes);
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
