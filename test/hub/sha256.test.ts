import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256, sha256Hex, toHex } from '../../src/hub/sha256';
import { Rng } from '../helpers/rng';

const ref = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(0, 256);
  return out;
}

describe('sha256', () => {
  it('matches the FIPS 180-4 examples', () => {
    expect(sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('matches node:crypto on random inputs of many lengths, whole and in one-byte updates', () => {
    const rng = new Rng(1);
    const lengths = [0, 1, 2, 3, 31, 32, 33, 54, 55, 56, 57, 62, 63, 64, 65, 66, 111, 112, 119, 120, 127, 128, 129, 191, 192, 193, 255, 256, 257, 1000, 1023, 1024, 4097];
    for (const n of lengths) {
      const data = randomBytes(rng, n);
      expect(sha256Hex(data), `length ${n}`).toBe(ref(data));
      const h = new Sha256();
      for (let i = 0; i < n; i++) h.update(data.subarray(i, i + 1));
      expect(h.hex(), `length ${n}, byte by byte`).toBe(ref(data));
    }
  });

  it('gives the same digest for a few MB in odd-sized updates (views into a larger buffer included)', () => {
    const rng = new Rng(2);
    const big = randomBytes(rng, 3 * 1024 * 1024 + 37);
    for (const seed of [5, 6, 7]) {
      const r = new Rng(seed);
      const h = new Sha256();
      let at = 0;
      while (at < big.length) {
        const n = Math.min(big.length - at, [0, 1, 63, 64, 65, 4095, 65537, r.int(1, 300_000)][r.int(0, 8)]!);
        h.update(big.subarray(at, at + n));
        at += n;
      }
      expect(h.hex()).toBe(ref(big));
    }
  });

  it('refuses to be reused after digest, and toHex pads', () => {
    const h = new Sha256();
    h.update(new Uint8Array([1]));
    h.digest();
    expect(() => h.update(new Uint8Array([1]))).toThrow(/after digest/);
    expect(() => h.digest()).toThrow(/twice/);
    expect(toHex(new Uint8Array([0, 15, 255]))).toBe('000fff');
  });
});
