// Values the page and the worker share: names of the built-in things and limits. No imports, so that the page
// can read them without loading any of the worker's code.

/** A self-test passes when no output is further than this from the float64 reference. */
export const SELF_TEST_TOLERANCE = 1e-5;
/** Values in the default self-test: not a multiple of the workgroup size, more than one workgroup. */
export const SELF_TEST_DEFAULT_N = 65_539;

/** The built-in demo model's id in the model store (installed from the app's own files, public/demo/). */
export const DEMO_REPO = 'graft/demo-tiny-llama';
/** The files of public/demo/model/. */
export const DEMO_MODEL_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
export const DEMO_DATASET_FILE = 'demo_qa.json';
/**
 * The demo's datasetId: its six records are kept in the run itself, so that trying the demo never takes a place
 * among the Data screen's stored datasets (which keeps the last few) nor replaces the one open there.
 */
export const DEMO_DATASET = 'graft:demo';
/** A run's datasetId for the preference pairs collected on the Chat screen (not a Data-screen dataset). */
export const PREFERENCES_DATASET = 'graft:chat-preferences';
/** The trainer runs `stage: dpo` (src/train/objectives/dpo.ts): the Chat screen's preference pairs train it. */
export const DPO_TRAINING_AVAILABLE = true;
/** Checkpoints kept per run when the job does not say (save_total_limit): each holds weights and moments. */
export const DEFAULT_SAVE_TOTAL_LIMIT = 2;

/** The Data screen lists at most this many problems of a dataset. */
export const MAX_PROBLEMS = 500;
/** The token view shows at most this many tokens of a row. */
export const MAX_TOKENS_SHOWN = 4096;
