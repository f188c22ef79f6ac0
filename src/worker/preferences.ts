// The Chat screen's preference pairs: the better of two answers, kept to train with DPO or a reward model, and
// downloaded as [{prompt, chosen, rejected}] JSON.
import { normalisePreferenceRecord, type PreferenceRecord as PairRecord } from '../data/preference';
import { ModelError } from '../model/source';
import { day, jsonBytes } from './files';
import type { ExportFile, PreferenceRecord } from './protocol';
import type { Workbench } from './workbench';

export class Preferences {
  constructor(private readonly wb: Workbench) {}

  async add(p: Omit<PreferenceRecord, 'id' | 'createdAt'>): Promise<PreferenceRecord> {
    if (!p.prompt.trim() || !p.chosen.trim() || !p.rejected.trim()) throw new ModelError('bad-options', 'A preference pair needs the prompt and both answers.');
    const db = await this.wb.db();
    const rec = { ...p, createdAt: Date.now() };
    const id = await db.add('preferences', rec);
    return { ...rec, id };
  }

  async list(): Promise<PreferenceRecord[]> {
    return (await (await this.wb.db()).getAll('preferences')).sort((a, b) => a.id - b.id);
  }

  async delete(id: number): Promise<void> {
    await (await this.wb.db()).delete('preferences', id);
  }

  /** The pairs as training records (stage dpo, rm). */
  async records(): Promise<PairRecord[]> {
    const out: PairRecord[] = [];
    for (const p of await this.list()) {
      const n = normalisePreferenceRecord({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected });
      if (n.ok) out.push(n.record);
    }
    return out;
  }

  async export(): Promise<ExportFile> {
    const pairs = (await this.list()).map((p) => ({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected }));
    return { name: `graft-preferences-${day(Date.now())}.json`, bytes: jsonBytes(pairs), mime: 'application/json' };
  }
}
