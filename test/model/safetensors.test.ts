import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_HEADER_BYTES, SafetensorsError, SafetensorsFile, writeSafetensors } from '../../src/model/safetensors';
import { f32ToBf16Bits, f32ToF16Bits } from '../../src/engine/half';
import { Rng } from '../helpers/rng';

const fixture = (p: string) => new Uint8Array(readFileSync(new URL(`../fixtures/tiny-llama/${p}`, import.meta.url)));

/** A file with a hand-written header and `dataBytes` bytes of data. */
function fileWith(header: string | object, dataBytes = 0, headerLen?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const t = (dtype: string, shape: number[], a: number, b: number) => ({ dtype, shape, data_offsets: [a, b] });

describe('safetensors reader', () => {
  it('reads the fixture model', () => {
    const f = new SafetensorsFile(fixture('model.safetensors'), 'model.safetensors');
    const emb = f.info('model.embed_tokens.weight');
    expect(emb.dtype).toBe('F32');
    expect(emb.shape).toEqual([512, 64]);
    expect(f.names).toHaveLength(2 * 9 + 2);
    const w = f.float32('model.norm.weight');
    expect(w.length).toBe(64);
    expect(w.every(Number.isFinite)).toBe(true);
  });

  it('round-trips F32, F16, BF16 and integer tensors through the writer, with metadata and 8-byte padding', () => {
    const rng = new Rng(3);
    const vals = Float32Array.from(rng.tensor(15));
    const f16 = Uint16Array.from(vals, (v) => f32ToF16Bits(v));
    const bf16 = Uint16Array.from(vals, (v) => f32ToBf16Bits(v));
    const ids = Int32Array.from([1, -2, 3]);
    const bytes = writeSafetensors(
      [
        { name: 'a', dtype: 'F32', shape: [3, 5], data: vals },
        { name: 'b.half', dtype: 'F16', shape: [15], data: f16 },
        { name: 'c', dtype: 'BF16', shape: [5, 3], data: bf16 },
        { name: 'ids', dtype: 'I32', shape: [3], data: ids },
      ],
      { format: 'pt' },
    );
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    const f = new SafetensorsFile(bytes, 'roundtrip');
    expect(f.header.metadata).toEqual({ format: 'pt' });
    expect(Array.from(f.float32('a'))).toEqual(Array.from(vals));
    const back16 = f.float32('b.half');
    const backBf = f.float32('c');
    for (let i = 0; i < 15; i++) {
      expect(Math.abs(back16[i]! - vals[i]!)).toBeLessThanOrEqual(Math.abs(vals[i]!) * 2 ** -11 + 1e-7);
      expect(Math.abs(backBf[i]! - vals[i]!)).toBeLessThanOrEqual(Math.abs(vals[i]!) * 2 ** -8);
    }
    expect(Array.from(new Int32Array(f.raw('ids').slice().buffer))).toEqual([1, -2, 3]);
  });

  // Each entry breaks one rule; the message must name the file and the rule.
  const corpus: [string, () => Uint8Array, RegExp][] = [
    ['empty file', () => new Uint8Array(0), /fewer than the 8-byte/],
    ['5-byte file', () => new Uint8Array(5), /fewer than the 8-byte/],
    ['header length past end of file', () => fileWith('{}', 0, 1000n), /runs past the end/],
    ['header larger than 100 MB', () => fileWith('{}', 0, BigInt(MAX_HEADER_BYTES + 1)), /exceeds the limit/],
    ['header length 2^64-1', () => fileWith('{}', 0, 2n ** 64n - 1n), /exceeds the limit/],
    ['header not JSON', () => fileWith('{"a": ', 0), /not valid JSON/],
    ['header not an object', () => fileWith('[1, 2]', 0), /does not start with/],
    ['header invalid UTF-8', () => { const f = fileWith('{"\u00e9": 1}'); f[10] = 0xff; return f; }, /not valid UTF-8/],
    ['metadata not strings', () => fileWith({ __metadata__: { a: 1 } }), /__metadata__\["a"\] is not a string/],
    ['metadata not an object', () => fileWith({ __metadata__: 'x' }), /__metadata__ is not an object/],
    ['duplicate names', () => fileWith(`{"w": ${JSON.stringify(t('F32', [1], 0, 4))}, "w": ${JSON.stringify(t('F32', [1], 4, 8))}}`, 8), /appears twice/],
    ['unknown dtype', () => fileWith({ w: t('F31', [1], 0, 4) }, 4), /unknown dtype/],
    ['negative dimension', () => fileWith({ w: t('F32', [-1], 0, 4) }, 4), /invalid shape/],
    ['fractional dimension', () => fileWith({ w: t('F32', [1.5], 0, 4) }, 4), /invalid shape/],
    ['offsets reversed', () => fileWith({ w: t('F32', [1], 4, 0) }, 4), /invalid data_offsets/],
    ['offsets not a pair', () => fileWith({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), /invalid data_offsets/],
    ['bytes do not match shape', () => fileWith({ w: t('F32', [2], 0, 4) }, 4), /= 8 bytes but its data_offsets span 4/],
    ['size overflow', () => fileWith({ w: t('F32', [2 ** 30, 2 ** 30, 2 ** 30], 0, 4) }, 4), /too large/],
    ['hole between tensors', () => fileWith({ a: t('F32', [1], 0, 4), b: t('F32', [1], 8, 12) }, 12), /hole/],
    ['overlapping tensors', () => fileWith({ a: t('F32', [2], 0, 8), b: t('F32', [1], 4, 8) }, 8), /overlaps/],
    ['offsets past the data (truncated file)', () => fileWith({ a: t('F32', [4], 0, 16) }, 8), /truncated/],
    ['trailing bytes after the last tensor', () => fileWith({ a: t('F32', [1], 0, 4) }, 12), /belong to no tensor/],
    ['unknown field', () => fileWith({ a: { ...t('F32', [1], 0, 4), extra: 1 } }, 4), /unknown fields/],
    ['truncated fixture', () => fixture('model.safetensors').subarray(0, 300_000), /truncated/],
    ['fixture cut inside its header', () => fixture('model.safetensors').subarray(0, 100), /runs past the end/],
  ];
  for (const [name, make, message] of corpus) {
    it(`rejects: ${name}`, () => {
      let err: unknown;
      try {
        new SafetensorsFile(make(), 'bad.safetensors');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SafetensorsError);
      expect((err as Error).message).toMatch(/^bad\.safetensors is not a valid safetensors file: /);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('rejects random bytes without crashing (200 seeded files)', () => {
    const rng = new Rng(99);
    for (let i = 0; i < 200; i++) {
      const n = rng.int(0, 400);
      const b = new Uint8Array(n).map(() => rng.int(0, 256));
      if (n >= 8 && i % 2 === 0) new DataView(b.buffer).setBigUint64(0, BigInt(rng.int(0, n)), true);
      expect(() => new SafetensorsFile(b, 'random')).toThrow(SafetensorsError);
    }
  });
});
