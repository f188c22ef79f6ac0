// The results kept on this device: adapters of every kind (from runs, or imported) and fine-tuned or reward
// models (from runs), listed newest first for the Chat and Export screens, deleted, and imported (an adapter
// folder, or a zip holding one, checked against a stored base model).
import { DEFAULT_REVISION } from '../hub/client';
import type { ModelStore } from '../hub/store';
import { bottleneckSummary, promptSummary } from '../job/results';
import type { JobResult } from '../job/types';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, readAdapter } from '../model/adapter';
import { bottleneckKeys } from '../model/bottleneck';
import { isBottleneckConfig, readBottleneckAdapter } from '../model/bottleneck-file';
import { parseConfig } from '../model/config';
import { readPromptAdapter } from '../model/prompt-tuning';
import { memorySource, ModelError, readJson, storeSource, type ModelSource } from '../model/source';
import { KIND_NAMES, methodOfAdapter } from './adapter-kinds';
import { fileStem, newId, uniqueLabel } from './files';
import { readZipEntries, ZIP_ENTRY_CAPS } from './zip-entries';
import type { AdapterKind, ExportFile, RunRecord, TunedEntry, TunedRef } from './protocol';
import type { Workbench } from './workbench';
import { adapterKindOf, type AdapterRow, type TunedModelRow } from './workbench-db';

const decoder = new TextDecoder();


/** The adapter folder of a row, as LoadedModel.loadAdapter and the readers take it. */
export function adapterSource(row: AdapterRow): ModelSource {
  return memorySource(row.label, new Map([[ADAPTER_CONFIG, row.config], [ADAPTER_WEIGHTS, row.weights]]));
}

/** Writes a whole model folder into a store as a complete model. */
export async function putModelFiles(store: ModelStore, repo: string, revision: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  await store.planFiles(repo, revision, [...files].map(([path, bytes]) => ({ path, expectedSize: bytes.length })));
  for (const [path, bytes] of files) {
    const w = await store.openWriter(repo, revision, path, { resume: false });
    await w.append(bytes);
    await w.complete();
  }
  await store.markComplete(repo, revision);
}

/** What an entry takes from its row whatever it is: its name and the model it was trained from. */
function baseOf(row: AdapterRow | TunedModelRow): Pick<TunedEntry, 'label' | 'baseRepo' | 'baseRevision' | 'baseStore'> {
  return { label: row.label, baseRepo: row.baseRepo, baseRevision: row.baseRevision, ...(row.baseStore === 'tuned' ? { baseStore: 'tuned' as const } : {}) };
}

export function adapterEntry(row: AdapterRow): TunedEntry {
  const kind = adapterKindOf(row);
  const targets = row.targetModules.length > 4 ? `${row.targetModules.slice(0, 4).join(', ')}, …` : row.targetModules.join(', ');
  return {
    ref: { kind: 'adapter', id: row.id },
    ...baseOf(row),
    origin: row.origin,
    method: methodOfAdapter(kind),
    adapterKind: kind,
    ...(row.runId ? { runId: row.runId } : {}),
    createdAt: row.createdAt,
    bytes: row.config.length + row.weights.length,
    detail:
      kind === 'lora'
        ? `LoRA adapter, r ${row.r}, alpha ${row.alpha}${row.useRslora ? ' (rsLoRA)' : ''}, ${row.modules} modules: ${targets}`
        : (row.summary ?? KIND_NAMES[kind]),
  };
}

export function modelEntry(row: TunedModelRow): TunedEntry {
  return {
    ref: { kind: 'model', repo: row.repo },
    ...baseOf(row),
    origin: 'run',
    method: row.method,
    runId: row.runId,
    createdAt: row.createdAt,
    bytes: row.bytes,
    detail: row.reward
      ? `reward model (sequence classification, ${row.method === 'lora' ? 'LoRA merged in' : row.method === 'full' ? 'every weight trained' : 'last layers trained'})`
      : row.method === 'full'
        ? 'fully fine-tuned model'
        : 'freeze-tuned model (last layers trained)',
    ...(row.reward ? { reward: true as const } : {}),
  };
}

export class Library {
  constructor(private readonly wb: Workbench) {}

  async adapterRow(id: string): Promise<AdapterRow | undefined> {
    return (await this.wb.db()).get('adapters', id);
  }

  async tunedRow(repo: string): Promise<TunedModelRow | undefined> {
    return (await this.wb.db()).get('tuned', repo);
  }

  async listTuned(): Promise<TunedEntry[]> {
    const db = await this.wb.db();
    const adapters = (await db.getAll('adapters')).map(adapterEntry);
    const models = (await db.getAll('tuned')).map(modelEntry);
    return [...adapters, ...models].sort((a, b) => b.createdAt - a.createdAt);
  }

  /**
   * The names of the runs and results on this device (a new one takes none of them: uniqueLabel). A run that
   * failed before its first checkpoint is shown nowhere and cannot be continued, so its name is free again.
   */
  async takenLabels(except: { runId?: string; ref?: TunedRef } = {}): Promise<string[]> {
    const db = await this.wb.db();
    const runs = (await db.getAll('runs')).filter((r) => r.id !== except.runId && !(r.status === 'failed' && r.checkpointStep === undefined)).map((r) => r.label);
    const adapters = (await db.getAll('adapters')).filter((a) => !(except.ref?.kind === 'adapter' && except.ref.id === a.id) && !(except.runId && a.runId === except.runId)).map((a) => a.label);
    const models = (await db.getAll('tuned')).filter((m) => !(except.ref?.kind === 'model' && except.ref.repo === m.repo) && !(except.runId && m.runId === except.runId)).map((m) => m.label);
    return [...runs, ...adapters, ...models];
  }

  /**
   * Renames a result and the run that made it (its record in the runs store, which the exports' file names and
   * the report read). The name is made unique among the other runs and results; the entry comes back with it.
   */
  async renameTuned(ref: TunedRef, label: string): Promise<TunedEntry> {
    const wanted = label.trim().replace(/\s+/g, ' ');
    if (!wanted) throw new ModelError('bad-options', 'A name cannot be empty.');
    const db = await this.wb.db();
    const row = ref.kind === 'adapter' ? await db.get('adapters', ref.id) : await db.get('tuned', ref.repo);
    if (!row) throw new ModelError('bad-options', 'That result is no longer on this device.');
    const runId = row.runId;
    const name = uniqueLabel(wanted, await this.takenLabels({ ref, ...(runId ? { runId } : {}) }));
    row.label = name;
    if (ref.kind === 'adapter') await db.put('adapters', row as AdapterRow);
    else await db.put('tuned', row as TunedModelRow);
    if (runId) {
      const run = await db.get('runs', runId);
      if (run) await db.put('runs', { ...run, label: name, updatedAt: Date.now() });
    }
    return ref.kind === 'adapter' ? adapterEntry(row as AdapterRow) : modelEntry(row as TunedModelRow);
  }

  async deleteTuned(ref: TunedRef): Promise<void> {
    const db = await this.wb.db();
    if (ref.kind === 'adapter') {
      await db.delete('adapters', ref.id);
      this.wb.unloadAdapter(ref.id);
      return;
    }
    this.wb.forget('tuned', ref.repo, DEFAULT_REVISION);
    await this.wb.tunedModels.deleteModel(ref.repo, DEFAULT_REVISION);
    await db.delete('tuned', ref.repo);
  }

  /** Keeps what a completed run produced: its adapter, or its model folder in the tuned-models store. */
  async saveRunResult(run: RunRecord, result: JobResult): Promise<TunedEntry> {
    const createdAt = Date.now();
    const db = await this.wb.db();
    if (result.kind === 'adapter') {
      const row: AdapterRow = {
        id: newId('adapter'),
        label: run.label,
        baseRepo: run.repo,
        baseRevision: run.revision,
        ...(run.modelStore === 'tuned' ? { baseStore: 'tuned' as const } : {}),
        origin: 'run',
        runId: run.id,
        createdAt,
        ...result.adapter,
        config: result.files.get(ADAPTER_CONFIG)!,
        weights: result.files.get(ADAPTER_WEIGHTS)!,
      };
      await db.put('adapters', row);
      return adapterEntry(row);
    }
    // A model folder (full, freeze) or a reward model's sequence-classification folder. A reward model's PEFT
    // adapter (LoRA runs) is not kept: the folder holds the merged model, which is what scoring loads.
    const repo = `runs/${run.id}`;
    await putModelFiles(this.wb.tunedModels, repo, DEFAULT_REVISION, result.files);
    // The base to compare with: the model this run started from (for a run on a tuned model, its own base).
    const parent = result.kind === 'model' && run.modelStore === 'tuned' ? await this.tunedRow(run.repo) : undefined;
    const row: TunedModelRow = {
      repo,
      label: run.label,
      baseRepo: parent ? parent.baseRepo : run.repo,
      baseRevision: parent ? parent.baseRevision : run.revision,
      ...((parent ? parent.baseStore === 'tuned' : result.kind === 'reward' && run.modelStore === 'tuned') ? { baseStore: 'tuned' as const } : {}),
      runId: run.id,
      method: run.finetuningType,
      createdAt,
      bytes: [...result.files.values()].reduce((n, b) => n + b.length, 0),
      ...(result.kind === 'reward' ? { reward: true as const } : {}),
    };
    await db.put('tuned', row);
    return modelEntry(row);
  }

  /**
   * Reads an adapter folder of any kind — PEFT LoRA, PEFT PROMPT_TUNING or Graft's bottleneck adapter (the two
   * files, or a zip holding them) —, checks it against a stored base model, keeps it.
   */
  async importAdapter(files: ExportFile[], baseRepo: string, baseRevision = DEFAULT_REVISION, label?: string): Promise<TunedEntry> {
    const found = new Map<string, Uint8Array>();
    for (const f of files) {
      if (/\.zip$/i.test(f.name)) {
        for (const [base, bytes] of readZipEntries(f.name, f.bytes, ZIP_ENTRY_CAPS)) if (!found.has(base)) found.set(base, bytes);
      } else {
        found.set(f.name.split(/[\\/]/).pop()!, f.bytes);
      }
    }
    const where = label ?? files.map((f) => f.name).join(' + ');
    if (!found.has(ADAPTER_CONFIG) || (!found.has(ADAPTER_WEIGHTS) && !found.has('adapter_model.bin'))) {
      const missing = [ADAPTER_CONFIG, ADAPTER_WEIGHTS].filter((n) => !found.has(n));
      throw new ModelError('missing-file', `${where} lacks ${missing.join(' and ')}: pick the adapter's adapter_config.json and adapter_model.safetensors, or a zip that holds them.`, { file: missing[0]! });
    }
    let configJson: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(decoder.decode(found.get(ADAPTER_CONFIG)!));
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('it is not a JSON object');
      configJson = parsed as Record<string, unknown>;
    } catch (e) {
      throw new ModelError('bad-file', `${where}: ${ADAPTER_CONFIG} cannot be read (${e instanceof Error ? e.message : String(e)}); pick the adapter_config.json that was saved with the adapter.`, { file: ADAPTER_CONFIG });
    }
    const base = await this.wb.models.getModel(baseRepo, baseRevision);
    if (!base?.complete) throw new ModelError('missing-file', `The base model ${baseRepo} is not on this device. Download it on the Model screen first, then import the adapter.`);
    const cfg = parseConfig(await readJson(storeSource(this.wb.models, baseRepo, baseRevision), 'config.json', true));
    const source = memorySource(where, found);
    // The kind as LoadedModel.loadAdapter tells it; each reader checks the folder against the base model and
    // throws a ModelError that names what does not fit (hidden size, layers, modules) and the model it was made for.
    const kind: AdapterKind = isBottleneckConfig(configJson) ? 'bottleneck' : configJson.peft_type === 'PROMPT_TUNING' ? 'prompt' : 'lora';
    const common = {
      id: newId('adapter'),
      // Not "(imported)": the lists say where a result came from (origin), once.
      label: uniqueLabel(label?.trim() || fileStem(where.replace(/\.zip$/i, '')), await this.takenLabels()),
      baseRepo,
      baseRevision,
      origin: 'import' as const,
      createdAt: Date.now(),
      kind,
      config: found.get(ADAPTER_CONFIG)!,
    };
    let row: AdapterRow;
    if (kind === 'lora') {
      const checked = await readAdapter(source, cfg);
      const targets = Array.isArray(configJson.target_modules) ? configJson.target_modules.map(String) : [...new Set([...checked.modules.keys()].map((m) => m.split('.').pop()!))];
      if (!found.has(ADAPTER_WEIGHTS)) throw new ModelError('missing-file', `${where} holds adapter_model.bin, which Graft cannot keep; save the adapter with safe_serialization (adapter_model.safetensors).`, { file: ADAPTER_WEIGHTS });
      row = { ...common, r: checked.config.r, alpha: checked.config.alpha, useRslora: checked.config.useRslora, targetModules: targets, modules: checked.modules.size, weights: found.get(ADAPTER_WEIGHTS)! };
    } else {
      if (!found.has(ADAPTER_WEIGHTS)) throw new ModelError('missing-file', `${where} lacks ${ADAPTER_WEIGHTS}: pick the adapter's adapter_config.json and adapter_model.safetensors, or a zip that holds them.`, { file: ADAPTER_WEIGHTS });
      let modules: number;
      let summary: string;
      if (kind === 'bottleneck') {
        const checked = await readBottleneckAdapter(source, cfg);
        modules = bottleneckKeys(checked.config).length;
        summary = bottleneckSummary(checked.config);
      } else {
        const checked = await readPromptAdapter(source, cfg);
        modules = checked.numVirtualTokens;
        summary = promptSummary(checked.numVirtualTokens, configJson.prompt_tuning_init === 'TEXT' ? 'text' : 'random');
      }
      row = { ...common, r: 0, alpha: 0, useRslora: false, targetModules: [], modules, summary, weights: found.get(ADAPTER_WEIGHTS)! };
    }
    await (await this.wb.db()).put('adapters', row);
    return adapterEntry(row);
  }
}
