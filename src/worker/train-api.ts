// The worker's training half as the page calls it (TrainApi in ./protocol.ts): runs (./runs.ts), the results
// kept on the device (./library.ts), comparing and scoring (./compare.ts), preference pairs
// (./preferences.ts), exports (./exports.ts), the demo (./demo.ts) and the Evaluate screen (./evaluate.ts), over
// one Workbench (./workbench.ts):
// the stores, the workbench database and the GPU queue they share.
import { loadJiebaWeb } from '../eval/jieba-web';
import type { Segmenter } from '../eval/metrics';
import { Compare } from './compare';
import { Demo } from './demo';
import { Evaluate } from './evaluate';
import { Exports } from './exports';
import { Library } from './library';
import { Preferences } from './preferences';
import type { TrainApi } from './protocol';
import { Runs } from './runs';
import { Workbench, type WorkbenchDeps } from './workbench';

type WithCallback = <A extends unknown[], T>(fn: ((...args: A) => unknown) | undefined, run: (call?: (...args: A) => void) => Promise<T>) => Promise<T>;

/** Callbacks as they are: for calls within one thread (tests, Node). */
const direct: WithCallback = <A extends unknown[], T>(fn: ((...args: A) => unknown) | undefined, run: (call?: (...args: A) => void) => Promise<T>) =>
  run(fn ? (...args: A) => void fn(...args) : undefined);

export interface TrainServices extends TrainApi {
  /** Before other GPU work (the benchmark): refuses while a run trains; frees the models kept for comparing. */
  yieldGpu(what: string): Promise<void>;
}

/**
 * The training methods over one workbench. `withCallback` wraps callbacks from the page (comlink proxies) so
 * that a page that went away never breaks a run (engine.worker.ts passes its own); by default they are called
 * as they are.
 */
export function createTrainServices(deps: WorkbenchDeps & { segmenter?: () => Promise<Segmenter> }, withCallback: WithCallback = direct): TrainServices {
  const wb = new Workbench(deps);
  const library = new Library(wb);
  const preferences = new Preferences(wb);
  const demo = new Demo(wb);
  const runs = new Runs(wb, library, preferences, demo);
  const compare = new Compare(wb, library);
  const exports = new Exports(wb, library, runs);
  // The Evaluate screen's ROUGE needs jieba: the browser's build by default, the Node one in tests (jieba-node.ts).
  const evaluate = new Evaluate(wb, library, runs, deps.segmenter ?? loadJiebaWeb);
  return {
    startTraining: (request, onEvent) => withCallback(onEvent, (call) => runs.start(request, call)),
    continueRun: (runId, onEvent) => withCallback(onEvent, (call) => runs.continue(runId, call)),
    pauseTraining: () => runs.pause(),
    resumeTraining: () => runs.resume(),
    stopTraining: () => runs.stop(),
    activeRun: () => runs.active(),
    listRuns: () => runs.list(),
    unfinishedRun: () => runs.unfinished(),
    discardRun: (id) => runs.discard(id),
    listTuned: () => library.listTuned(),
    deleteTuned: (ref) => library.deleteTuned(ref),
    renameTuned: (ref, label) => library.renameTuned(ref, label),
    importAdapter: (files, baseRepo, baseRevision, label) => library.importAdapter(files, baseRepo, baseRevision, label),
    scoreAnswers: (request) => compare.score(request),
    compareGenerate: (request, onToken) => withCallback(onToken, (call) => compare.generate(request, call)),
    stopCompare: async () => compare.stop(),
    addPreference: (p) => preferences.add(p),
    listPreferences: () => preferences.list(),
    deletePreference: (id) => preferences.delete(id),
    exportAdapter: (id, as) => exports.adapter(id, as),
    exportMergedModel: (ref) => exports.mergedModel(ref),
    exportLlamaFactoryJob: (runId) => exports.llamaFactoryJob(runId),
    exportTrainingReport: (runId, png) => exports.trainingReport(runId, png),
    exportPreferences: () => preferences.export(),
    installDemo: (baseUrl) => demo.install(baseUrl),
    evaluate: (request, onEvent) => withCallback(onEvent, (call) => evaluate.evaluate(request, call)),
    stopEvaluation: async () => evaluate.stop(),
    yieldGpu: (what) => compare.yieldGpu(what),
  };
}
