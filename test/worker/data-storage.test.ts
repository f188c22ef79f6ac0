// The worker's datasets survive a reload: the file and its edits in IndexedDB (fake-indexeddb here), replayed by
// a new DatasetService as a reloaded worker would; old datasets are forgotten.
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { DatasetService } from '../../src/worker/datasets';

const LINES = [
  '{"instruction": "One", "output": "1"}',
  '{"instruction": "Two", "output": ""}',
  '{"instruction": "Three", "output": "3"}',
].join('\n');

describe('DatasetService storage', () => {
  it('restores a dataset with its edits and removals in a new service', async () => {
    const first = new DatasetService();
    const opened = await first.openBytes(LINES, 'three.jsonl');
    expect(opened).toMatchObject({ valid: 2, problemCount: 1 });
    await first.update(opened.id, 1, { kind: 'alpaca', instruction: 'Two', input: '', output: '2', system: '', history: 0 });
    await first.update(opened.id, 2, { kind: 'alpaca', instruction: 'Three, edited', input: '', output: '3', system: '', history: 0 });
    await first.update(opened.id, 2, { kind: 'removed' });

    const reloaded = new DatasetService();
    const back = await reloaded.restore(opened.id);
    expect(back).toMatchObject({ id: opened.id, name: 'three.jsonl', rows: 2, valid: 2, problemCount: 0, edited: 2 });
    const rows = (await reloaded.rows(opened.id, { offset: 0, limit: 10 })).rows;
    expect(rows.map((r) => [r.answer, r.removed])).toEqual([
      ['1', false],
      ['2', false],
      ['3', true],
    ]);
    // The removed row kept its edit: put back, it is the edited one.
    expect(rows[2]!.fields).toMatchObject({ kind: 'alpaca', instruction: 'Three, edited' });
    expect(await reloaded.restore('ds-unknown')).toBeUndefined();
  });

  it('keeps the four most recent datasets', async () => {
    const s = new DatasetService();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      ids.push((await s.openBytes(LINES, `d${i}.jsonl`)).id);
      await new Promise((r) => setTimeout(r, 2));
    }
    const fresh = new DatasetService();
    const kept = await Promise.all(ids.map((id) => fresh.restore(id).then((x) => x !== undefined)));
    expect(kept).toEqual([false, false, true, true, true, true]);
  });
});
