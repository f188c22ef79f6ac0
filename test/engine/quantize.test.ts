// Graft's quantizer against bitsandbytes' algorithm as scripts/fixtures/bnb.py computes it in PyTorch
// (test/fixtures/quant/): NF4 and FP4 codes and absmax, double quantization (8-bit codes, absmax2, offset and the
// dequantized absmax), the weights dequantized with it, and Graft's int8 — bit for bit. The tables against
// bitsandbytes' (the dynamic map as create_dynamic_map builds it, the 4-bit levels as get_4bit_type lists them),
// and the f32 decision tree against the float64 nearest-level reference.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  dequantizeWeight,
  doubleQuantize,
  DYNAMIC_MAP,
  FP4_LEVELS,
  NF4_LEVELS,
  packNibbles,
  quantize4bit,
  quantizeInt8,
  quantizeWeight,
} from '../../src/engine/quantize';
import { FP4_LEVELS_REF, NF4_LEVELS_REF, quantize4bitRef } from '../../src/engine/ref/quantize';
import { SafetensorsFile } from '../../src/model/safetensors';

const dir = new URL('../fixtures/quant/', import.meta.url);
const vectors = new SafetensorsFile(new Uint8Array(readFileSync(new URL('vectors.safetensors', dir))), 'vectors.safetensors');
const meta = JSON.parse(readFileSync(new URL('vectors.json', dir), 'utf8')) as { shapes: Record<string, number[]>; dynamic_map: number[] };
const raw = (name: string) => vectors.raw(name);
const f32 = (name: string) => vectors.float32(name);
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('quantization as bitsandbytes does it', () => {
  it('the tables are bitsandbytes\' (dynamic map, NF4 and FP4 levels)', () => {
    expect(Array.from(DYNAMIC_MAP)).toEqual(meta.dynamic_map);
    expect(Array.from(NF4_LEVELS)).toEqual(NF4_LEVELS_REF.map(Math.fround));
    expect(Array.from(FP4_LEVELS)).toEqual(FP4_LEVELS_REF.map(Math.fround));
  });

  for (const name of Object.keys(meta.shapes)) {
    it(`${name} ${JSON.stringify(meta.shapes[name])}: codes, absmax and double quantization bit for bit; int8`, () => {
      const w = f32(`${name}.weight`);
      for (const qt of ['nf4', 'fp4'] as const) {
        const { codes, absmax } = quantize4bit(w, qt);
        expect(Array.from(codes), `${qt} codes`).toEqual(Array.from(raw(`${name}.${qt}.codes`)));
        expect(bits(absmax), `${qt} absmax`).toEqual(bits(f32(`${name}.${qt}.absmax`)));
        const dq = doubleQuantize(absmax);
        expect(Array.from(dq.q8), `${qt} q8`).toEqual(Array.from(raw(`${name}.${qt}.dq.q8`)));
        expect(bits(dq.absmax2), `${qt} absmax2`).toEqual(bits(f32(`${name}.${qt}.dq.absmax2`)));
        expect(Math.fround(dq.offset), `${qt} offset`).toBe(f32(`${name}.${qt}.dq.offset`)[0]);
        expect(bits(dq.dequantized), `${qt} dequantized absmax`).toEqual(bits(f32(`${name}.${qt}.dq.absmax`)));
        const packed = quantizeWeight(w, qt, true);
        expect(Array.from(packed.words)).toEqual(Array.from(packNibbles(codes)));
        expect(bits(dequantizeWeight(packed, w.length)), `${qt} dequantized weights`).toEqual(bits(f32(`${name}.${qt}.dq.dequantized`)));

        // The float64 nearest level agrees except where x / absmax is within f32 rounding of a midpoint (FP4 has
        // +0 and −0: the same level under two codes, so levels are compared, not codes).
        const levels = qt === 'nf4' ? NF4_LEVELS_REF : FP4_LEVELS_REF;
        const ref = quantize4bitRef(Float64Array.from(w), levels);
        let differ = 0;
        for (let i = 0; i < w.length; i++) if (levels[ref.codes[i]!] !== levels[codes[i]!]) differ++;
        expect(differ, `${qt} codes that differ from the nearest level`).toBeLessThanOrEqual(Math.ceil(w.length * 1e-3));
      }
      const int8 = quantizeInt8(w);
      expect(Array.from(int8.q)).toEqual(Array.from(new Int8Array(raw(`${name}.int8.codes`).buffer.slice(raw(`${name}.int8.codes`).byteOffset, raw(`${name}.int8.codes`).byteOffset + w.length))));
      expect(bits(int8.scales)).toEqual(bits(f32(`${name}.int8.scales`)));
    });
  }
});
