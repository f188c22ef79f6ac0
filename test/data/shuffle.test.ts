import { describe, expect, it } from 'vitest';
import { SeededRandom, shuffled, splitTrainVal } from '../../src/data/shuffle';
import { Rng } from '../helpers/rng';

describe('seeded shuffling', () => {
  it('is mulberry32: the same numbers as the independent copy in the test helpers', () => {
    const a = new SeededRandom(1234);
    const b = new Rng(1234);
    for (let i = 0; i < 100; i++) expect(a.next()).toBe(b.next());
    // pinned values, so that a change of generator (and of every seeded data order) is noticed
    const r = new SeededRandom(42);
    expect([r.next(), r.next(), r.next()].map((x) => Math.round(x * 1e9))).toEqual(PINNED);
  });

  it('gives the same permutation for the same seed, a different one for another seed', () => {
    const items = [...Array(100).keys()];
    const a = shuffled(items, 42);
    expect(shuffled(items, 42)).toEqual(a);
    expect(a.slice().sort((x, y) => x - y)).toEqual(items);
    expect(a).not.toEqual(items);
    expect(shuffled(items, 43)).not.toEqual(a);
    expect(items).toEqual([...Array(100).keys()]); // input untouched
  });

  it('splits val_size as a fraction or a count, keeping training non-empty', () => {
    const items = [...Array(10).keys()];
    expect(splitTrainVal(items, 0.1, 1).val).toHaveLength(1);
    expect(splitTrainVal(items, 0.15, 1).val).toHaveLength(2);
    expect(splitTrainVal(items, 3, 1).val).toHaveLength(3);
    expect(splitTrainVal(items, 0, 1)).toEqual({ train: items, val: [] });
    expect(() => splitTrainVal(items, 10, 1)).toThrow(/leaving none to train on/);
    expect(() => splitTrainVal(items, 1.5, 1)).toThrow(/val_size/);
    const s = splitTrainVal(items, 0.3, 5);
    expect([...s.train, ...s.val].sort((x, y) => x - y)).toEqual(items);
    expect(splitTrainVal(items, 0.3, 5)).toEqual(s);
  });
});

const PINNED = [601103752, 448290559, 852465793];
