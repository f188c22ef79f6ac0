// What the navigation marks as done and when the Method screen lets the person go on, as plain functions (the
// Svelte parts only read them): a model is done when it is chosen and on this device, a dataset when it has a
// record to train on, and the settings hold the way to the Train screen while one of them is wrong.
import type { SettingsProblem } from '../worker/api';

export interface JourneyFacts {
  /** A model is chosen on the Model screen. */
  modelChosen: boolean;
  /** The chosen model is complete on this device (undefined while the list of stored models is not read yet). */
  modelStored: boolean | undefined;
  /** A dataset is chosen on the Data screen. */
  datasetChosen: boolean;
  /** Records of the chosen dataset that can be trained on (undefined while not known). */
  datasetUsable: number | undefined;
}

/** Whether the navigation marks a step done (✓). */
export function stepDone(id: string, f: JourneyFacts): boolean {
  if (id === 'model') return f.modelChosen && f.modelStored === true;
  if (id === 'data') return f.datasetChosen && (f.datasetUsable ?? 0) > 0;
  return false;
}

/** The settings' own problems: not the missing model or dataset, which the earlier screens are for. */
export function settingsProblems(problems: readonly SettingsProblem[]): SettingsProblem[] {
  return problems.filter((p) => !((p.key === 'model_name_or_path' || p.key === 'dataset') && /^is missing/.test(p.message)));
}

/** The Method screen's "Next: train" is held while a setting is wrong (undefined: not checked yet). */
export function settingsBlockTraining(check: { problems: readonly SettingsProblem[] } | undefined): boolean {
  return !!check && settingsProblems(check.problems).length > 0;
}
