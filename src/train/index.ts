// Training: settings (LLaMA-Factory's names), schedules, methods (LoRA / full / freeze), AdamW, the SFT trainer,
// checkpoints. Browser-safe: the Node checkpoint store is imported from './checkpoint-store-node' directly.
export * from './settings';
export type * from './settings-types';
export { TASK_KEYS } from './settings-spec';
export { yamlScalar, type SettingsYamlOptions } from './settings-yaml';
export * from './schedule';
export * from './metrics';
export * from './methods';
export { AdamW, type AdamWSettings, type AdamWState, type AdamWParamState } from './optimizer';
export { shiftedTargets, countTargets, sumInto } from './loss';
export * from './checkpoint';
export * from './checkpoint-store';
export { IdbCheckpointStore, DEFAULT_CHECKPOINT_DB, type IdbCheckpointStoreOptions } from './checkpoint-store-idb';
export { Trainer, TrainControl, type TrainExample, type TrainerHooks, type TrainerOptions, type RunOptions, type TrainResult } from './trainer';
// The objectives (sft, dpo and its preference losses, rm). TrainExample comes from './trainer' above (the same type).
export {
  createObjective,
  SftObjective,
  DpoObjective,
  RewardObjective,
  DEFAULT_SIMPO_GAMMA,
  DEFAULT_INITIALIZER_RANGE,
  headSeed,
  pairFields,
  pairBatch,
  preferenceLoss,
  rowSums,
  expandRows,
  PAIR_METRICS,
  type ObjectiveOptions,
  type Objective,
  type StepPlan,
  type MicroStepEnv,
  type BackwardHookInfo,
  type TrainPair,
  type PairLossKernelParams,
} from './objectives';
export * from './objectives/preference-loss';
