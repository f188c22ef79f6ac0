// The built-in demo: its model and its six questions and answers come with the app (public/demo/, kept by the
// service worker for offline use) and are put on the device from there, without any network.
import { parseDatasetText } from '../data/parse';
import type { Conversation } from '../data/types';
import { DEFAULT_REVISION } from '../hub/client';
import { ModelError } from '../model/source';
import { DEMO_DATASET, DEMO_DATASET_FILE, DEMO_MODEL_FILES, DEMO_REPO } from './constants';
import { putModelFiles } from './library';
import type { DemoInstall } from './protocol';
import type { Workbench } from './workbench';

const decoder = new TextDecoder();

export class Demo {
  /** The demo's records, read by install(). */
  private demoRecords: Conversation[] | undefined;

  constructor(private readonly wb: Workbench) {}

  /** The demo's records for a run (install() must have read them). */
  records(): Conversation[] {
    if (!this.demoRecords) throw new ModelError('bad-options', 'The demo is not prepared yet: open the demo screen again.');
    return this.demoRecords;
  }

  /** Puts the demo model and dataset (the app's own files under `baseUrl`, e.g. https://host/app/demo/) on the device. */
  async install(baseUrl: string): Promise<DemoInstall> {
    const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    const get = async (path: string): Promise<Uint8Array> => {
      let res: Response;
      try {
        res = await fetch(new URL(path, base).href);
      } catch (cause) {
        throw new ModelError('missing-file', `The demo's ${path} could not be read from the app (${String(cause)}). Reload the page while online once, so that the app is stored for offline use.`, { file: path });
      }
      if (!res.ok) throw new ModelError('missing-file', `The demo's ${path} is missing from the app (HTTP ${res.status}).`, { file: path });
      return new Uint8Array(await res.arrayBuffer());
    };
    const models = this.wb.models;
    const stored = await models.getModel(DEMO_REPO, DEFAULT_REVISION);
    const config = await get('model/config.json');
    const storedConfig = stored?.complete ? await models.readFile(DEMO_REPO, DEFAULT_REVISION, 'config.json').catch(() => undefined) : undefined;
    const weights = await get('model/model.safetensors');
    const storedWeightsSize = stored?.files.find((f) => f.path === 'model.safetensors')?.size;
    if (!stored?.complete || !storedConfig || decoder.decode(storedConfig) !== decoder.decode(config) || storedWeightsSize !== weights.length) {
      // A new app version may ship another demo model: replace what is stored.
      if (stored) await models.deleteModel(DEMO_REPO, DEFAULT_REVISION);
      const files = new Map<string, Uint8Array>();
      for (const name of DEMO_MODEL_FILES) files.set(name, name === 'config.json' ? config : name === 'model.safetensors' ? weights : await get(`model/${name}`));
      await putModelFiles(models, DEMO_REPO, DEFAULT_REVISION, files);
    }
    const dataBytes = await get(DEMO_DATASET_FILE);
    const parsed = parseDatasetText(dataBytes, DEMO_DATASET_FILE);
    if (parsed.problems.length || parsed.records.length === 0) throw new ModelError('bad-file', `The demo's ${DEMO_DATASET_FILE} cannot be read: ${parsed.problems[0]?.reason ?? 'it has no record'}.`);
    this.demoRecords = parsed.records;
    const rows = JSON.parse(decoder.decode(dataBytes)) as { instruction: string; input?: string; output: string }[];
    return {
      repo: DEMO_REPO,
      revision: DEFAULT_REVISION,
      datasetId: DEMO_DATASET,
      datasetName: DEMO_DATASET_FILE,
      pairs: rows.map((r) => ({ question: r.input ? `${r.instruction}\n${r.input}` : r.instruction, answer: r.output })),
    };
  }
}
