// The engine worker's dataset, encoding, model-description and settings methods (the Data, Model and Method
// screens use them). Everything that parses a file, tokenizes or renders a chat template runs here, never on
// the page's thread: a large JSONL file or a slow template must not freeze the UI. The datasets themselves are
// in ./datasets.ts (rows: ./dataset-rows.ts). engine.worker.ts spreads `dataApi` into the object it exposes.
import { countTargets, encodeConversation, EncodeError, IGNORE_INDEX, tokenStats, type EncodedExample } from '../data/encode';
import type { Conversation } from '../data/types';
import { DEFAULT_REVISION, fetchHubFile, resolveUrl } from '../hub/client';
import { HubError, isHubError } from '../hub/errors';
import { IdbModelStore } from '../hub/store-idb';
import type { ModelStore } from '../hub/store';
import { describeFrom, estimateMemory, shapeNumbers } from '../model/info';
import { readTextSide as readModelTextSide, type TextSide as ModelTextSide } from '../model/load';
import { readJson, storeSource, type ModelSource } from '../model/source';
import { readWeightHeaders } from '../model/weights';
import { parseSettingsWithNotes, SettingsError, settingsToYaml, settingsWarnings } from '../train/settings';
import { MAX_PROBLEMS, MAX_TOKENS_SHOWN } from './constants';
import { whereOf } from './dataset-rows';
import { datasets } from './datasets';
import type { DataApi, EncodingChoice, ProblemView, TokenView } from './protocol';
import { HubSettingsStore } from './settings';

// ---- tokenizers and templates (no GPU) --------------------------------------------------------------------

export type TextSide = Pick<ModelTextSide, 'tokenizer' | 'template'>;

/** The tokenizer and chat template of a model folder, read as loadModel reads them (src/model/load.ts). */
export async function readTextSide(source: ModelSource): Promise<TextSide> {
  return readModelTextSide(source, await readJson(source, 'config.json', true, 'every model folder needs one'));
}

// ---- model descriptions -----------------------------------------------------------------------------------

/** Weights split by rows when larger than one binding (src/model/params.ts): not limited by it. */
const SPLITTABLE = /(^|\.)(embed_tokens|wte|wpe)\.weight$|^lm_head\.weight$/;

/** A source over the hub: small files whole, weight headers with Range requests. */
function hubSource(repo: string, revision: string, hub: { endpoint: string; token?: string }): ModelSource {
  const headers = (extra: Record<string, string> = {}) => ({ ...extra, ...(hub.token ? { Authorization: `Bearer ${hub.token}` } : {}) });
  return {
    name: repo,
    async readFile(path) {
      try {
        return await fetchHubFile(repo, path, { endpoint: hub.endpoint, revision, ...(hub.token ? { token: hub.token } : {}) });
      } catch (e) {
        if (path !== 'config.json' && isHubError(e, 'not-found')) return undefined;
        throw e;
      }
    },
    async readHead(path, length) {
      const url = resolveUrl(repo, path, { endpoint: hub.endpoint, revision });
      let res: Response;
      try {
        res = await fetch(url, { headers: headers({ Range: `bytes=0-${Math.max(0, length - 1)}` }) });
      } catch (cause) {
        throw new HubError('network', `${repo}: ${path} could not be fetched (${String(cause)}).`, { file: path, cause });
      }
      if (res.status === 404) return undefined;
      if (res.status === 401 || res.status === 403) {
        throw new HubError('unauthorized', `${repo} needs an access token (Hub settings) to be described.`, { file: path, status: res.status });
      }
      if (!res.ok) throw new HubError('bad-response', `${repo}: ${path} could not be read (HTTP ${res.status}).`, { file: path, status: res.status });
      const bytes = new Uint8Array(await res.arrayBuffer());
      const range = /\/(\d+)\s*$/.exec(res.headers.get('Content-Range') ?? '');
      const size = res.status === 206 && range ? Number(range[1]) : bytes.length;
      return { bytes: bytes.subarray(0, Math.min(length, bytes.length)), size };
    },
  };
}

function largestTensor(tensors: Map<string, { shape: number[] }>): { name: string; bytes: number } {
  let best = { name: '', bytes: 0 };
  for (const [name, t] of tensors) {
    if (SPLITTABLE.test(name)) continue;
    const bytes = 4 * t.shape.reduce((a, b) => a * b, 1);
    if (bytes > best.bytes) best = { name, bytes };
  }
  return best;
}

// ---- the API ----------------------------------------------------------------------------------------------

const modelStore: ModelStore = new IdbModelStore();
const textSides = new Map<string, Promise<TextSide>>();

/** The tokenizer and template of a stored model, read once per model. */
export function storedTextSide(repo: string, revision = DEFAULT_REVISION): Promise<TextSide> {
  const key = `${repo}@${revision}`;
  let p = textSides.get(key);
  if (!p) {
    p = readTextSide(storeSource(modelStore, repo, revision));
    textSides.set(key, p);
    p.catch(() => textSides.delete(key));
  }
  return p;
}

/** For the trainer: the valid records of a dataset the Data screen opened, edits applied. */
export function datasetConversations(id: string): Promise<{ name: string; records: Conversation[] }> {
  return datasets.conversations(id);
}

function encodeOptions(e: EncodingChoice) {
  return { cutoffLen: e.cutoffLen, trainOnPrompt: e.trainOnPrompt === true, maskHistory: e.maskHistory === true };
}

function checkCutoff(cutoffLen: number): void {
  if (!Number.isInteger(cutoffLen) || cutoffLen < 1) throw new EncodeError(`cutoff_len must be a positive whole number, not ${cutoffLen}.`);
}

export const dataApi: DataApi = {
  openDataset: (input, name) => datasets.openBytes(input, name),
  openDatasetUrl: (url, name) => datasets.openUrl(url, name),
  restoreDataset: (id) => datasets.restore(id),
  datasetSummary: (id) => datasets.summary(id),
  datasetRows: (id, query) => datasets.rows(id, query),
  updateDatasetRow: (id, row, edit) => datasets.update(id, row, edit),
  setDatasetMapping: (id, mapping) => datasets.setMapping(id, mapping),
  datasetJsonl: (id) => datasets.jsonl(id),

  async datasetTokenStats(id, encoding) {
    checkCutoff(encoding.cutoffLen);
    const revision = encoding.revision ?? DEFAULT_REVISION;
    const t0 = performance.now();
    const [d, side] = await Promise.all([datasets.get(id), storedTextSide(encoding.repo, revision)]);
    const examples: EncodedExample[] = [];
    const problems: ProblemView[] = [];
    const options = encodeOptions(encoding);
    for (let i = 0; i < d.rows.length; i++) {
      const r = d.rows[i]!;
      if (r.removed || !r.conversation) continue;
      try {
        examples.push(encodeConversation(r.conversation, side.tokenizer, side.template, options));
      } catch (e) {
        if (!(e instanceof EncodeError)) throw e;
        const p: ProblemView = { row: i, where: whereOf(r.source), reason: e.message };
        if (r.source.line !== undefined) p.line = r.source.line;
        if (r.source.index !== undefined) p.index = r.source.index;
        problems.push(p);
      }
    }
    return {
      repo: encoding.repo,
      revision,
      cutoffLen: encoding.cutoffLen,
      stats: tokenStats(examples),
      problems: problems.slice(0, MAX_PROBLEMS),
      templateOrigin: side.template.origin,
      ms: performance.now() - t0,
    };
  },

  async encodeDatasetRow(id, index, encoding) {
    checkCutoff(encoding.cutoffLen);
    const revision = encoding.revision ?? DEFAULT_REVISION;
    const [{ row }, side] = await Promise.all([datasets.row(id, index), storedTextSide(encoding.repo, revision)]);
    const where = whereOf(row.source);
    if (!row.conversation) throw new EncodeError(`${where} cannot be encoded: ${row.problem ?? 'it is not a valid record'}.`, row.source);
    // Encode without cutting, then mark what cutoff_len cuts: the counts within the cut-off are exactly those of
    // encodeConversation with cutoff_len (the labels are computed before truncation).
    const full = encodeConversation(row.conversation, side.tokenizer, side.template, { ...encodeOptions(encoding), cutoffLen: Number.MAX_SAFE_INTEGER });
    const ids = full.inputIds;
    const kept = Math.min(encoding.cutoffLen, ids.length);
    const trained = countTargets(full.labels.slice(0, kept));
    const decoder = side.tokenizer.streamDecoder();
    const shown = Math.min(ids.length, MAX_TOKENS_SHOWN);
    const tokens: TokenView[] = [];
    for (let t = 0; t < shown; t++) {
      const text = t === ids.length - 1 ? decoder.next(ids.slice(0, t + 1)) + decoder.finish(ids) : decoder.next(ids.slice(0, t + 1));
      tokens.push({
        id: ids[t]!,
        text,
        token: side.tokenizer.idToToken(ids[t]!) ?? `#${ids[t]}`,
        trained: full.labels[t] !== IGNORE_INDEX,
        cut: t >= encoding.cutoffLen,
        special: side.tokenizer.isSpecial(ids[t]!),
      });
    }
    const c = row.conversation;
    const messages = [...(c.system !== undefined ? [{ role: 'system' as const, content: c.system }] : []), ...c.messages];
    return {
      row: index,
      where,
      repo: encoding.repo,
      cutoffLen: encoding.cutoffLen,
      rendered: side.template.render(messages, { addGenerationPrompt: false }),
      tokens,
      trained,
      masked: kept - trained,
      cut: ids.length - kept,
      fullLength: ids.length,
      omitted: ids.length - shown,
      templateOrigin: side.template.origin,
    };
  },

  async describeModelCard(repo, revision = DEFAULT_REVISION, options) {
    repo = repo.trim();
    let source: ModelSource;
    let downloadBytes = 0;
    if (options.from === 'device') {
      source = storeSource(modelStore, repo, revision);
      const m = await modelStore.getModel(repo, revision);
      downloadBytes = m?.expectedBytes ?? m?.totalBytes ?? 0;
    } else {
      // A fresh read of the stored hub settings: the Models panel may have changed the endpoint since. (An access
      // token that is not remembered lives only in the download service's memory and is not used here.)
      source = hubSource(repo, revision, await new HubSettingsStore().current());
    }
    const cfg = await readJson(source, 'config.json', true, 'every model folder needs one');
    const headers = await readWeightHeaders(source);
    const info = describeFrom(cfg, headers);
    const shape = shapeNumbers(cfg);
    if (options.from === 'hub') downloadBytes = headers.files.reduce((s, f) => s + f.size, 0);
    return {
      repo,
      revision,
      from: options.from,
      info,
      shape,
      largestTensor: largestTensor(headers.tensors),
      estimates: estimateMemory(info.parameters, shape, options.seqLen, options.loraRank, info.estimates.defaultPrecision),
      downloadBytes,
    };
  },

  async estimateModelMemory(parameters, shape, seqLen, loraRank, defaultPrecision) {
    return estimateMemory(parameters, shape, seqLen, loraRank, defaultPrecision);
  },

  async checkSettings(input) {
    try {
      const { settings, notes } = parseSettingsWithNotes(input, 'the settings');
      // LLaMA-Factory has no bottleneck adapters and no prompt tuning: those jobs run in Graft only.
      const graftOnly = settings.finetuning_type === 'adapter' || settings.finetuning_type === 'prompt';
      const yaml = settingsToYaml(settings, {
        header: graftOnly
          ? [`Written by Graft. Runs in Graft (graft train train.yaml), not in LLaMA-Factory, which has no ${settings.finetuning_type === 'adapter' ? 'bottleneck adapters' : 'prompt tuning'}.`]
          : ['Written by Graft. Runs in Graft and in LLaMA-Factory: llamafactory-cli train train.yaml'],
      });
      return { ok: true, problems: [], notes, warnings: settingsWarnings(settings), yaml, settings };
    } catch (e) {
      if (e instanceof SettingsError) return { ok: false, problems: e.problems, notes: [], warnings: [], yaml: '' };
      throw e;
    }
  },
};
