// The training objectives by stage: sft, dpo (with its variants), rm.
import { DpoObjective, type DpoObjectiveOptions } from './dpo';
import type { Objective } from './objective';
import { RewardObjective, type RewardObjectiveOptions } from './rm';
import { SftObjective, type TrainExample } from './sft';

export type { Objective, StepPlan, MicroStepEnv, BackwardHookInfo } from './objective';
export { SftObjective, type TrainExample } from './sft';
export { DpoObjective, DEFAULT_SIMPO_GAMMA, pairFields } from './dpo';
export { RewardObjective, DEFAULT_INITIALIZER_RANGE, headSeed } from './rm';
export { pairBatch, type TrainPair } from './pairs';
export * from './preference-loss';
export { preferenceLoss, rowSums, expandRows, PAIR_METRICS, type PairLossKernelParams } from './preference-kernels';

/** What createObjective takes: the inputs of every stage's objective (DPO's method and reference, RM's head). */
export type ObjectiveOptions = DpoObjectiveOptions & Pick<RewardObjectiveOptions, 'initializerRange'>;

/** The objective of settings.stage. */
export function createObjective(o: ObjectiveOptions): Objective {
  const common = { model: o.model, settings: o.settings, padTokenId: o.padTokenId };
  const val = o.val ? { val: o.val } : {};
  switch (o.settings.stage) {
    case 'sft':
      return new SftObjective({ ...common, train: o.train as readonly TrainExample[], ...(val as { val?: readonly TrainExample[] }) });
    case 'dpo':
      return new DpoObjective({ ...common, ...val, train: o.train, method: o.method, ...(o.reference ? { reference: o.reference } : {}) });
    case 'rm':
      return new RewardObjective({ ...common, ...val, train: o.train, ...(o.initializerRange !== undefined ? { initializerRange: o.initializerRange } : {}) });
  }
}
