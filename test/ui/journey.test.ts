// The navigation's marks and the Method screen's way on (src/ui/journey.ts): Model ✓ only for a model that is on
// this device, Data ✓ only for a dataset with a record to train on, "Next: train" held while a setting is wrong
// (not while only the model or dataset is missing: the earlier screens are for those).
import { describe, expect, it } from 'vitest';
import { settingsBlockTraining, settingsProblems, stepDone, type JourneyFacts } from '../../src/ui/journey';

const facts = (f: Partial<JourneyFacts>): JourneyFacts => ({ modelChosen: false, modelStored: undefined, datasetChosen: false, datasetUsable: undefined, ...f });

describe('stepDone', () => {
  it('marks the model only when it is chosen and on this device', () => {
    expect(stepDone('model', facts({}))).toBe(false);
    expect(stepDone('model', facts({ modelChosen: true }))).toBe(false);
    expect(stepDone('model', facts({ modelChosen: true, modelStored: false }))).toBe(false);
    expect(stepDone('model', facts({ modelChosen: true, modelStored: true }))).toBe(true);
    expect(stepDone('model', facts({ modelChosen: false, modelStored: true }))).toBe(false);
  });

  it('marks the data only when the dataset has a usable record', () => {
    expect(stepDone('data', facts({ datasetChosen: true }))).toBe(false);
    expect(stepDone('data', facts({ datasetChosen: true, datasetUsable: 0 }))).toBe(false);
    expect(stepDone('data', facts({ datasetChosen: true, datasetUsable: 24 }))).toBe(true);
    expect(stepDone('data', facts({ datasetChosen: false, datasetUsable: 24 }))).toBe(false);
  });

  it('marks no other step', () => {
    const all = facts({ modelChosen: true, modelStored: true, datasetChosen: true, datasetUsable: 3 });
    for (const id of ['start', 'method', 'train', 'chat', 'export']) expect(stepDone(id, all)).toBe(false);
  });
});

describe('settingsBlockTraining', () => {
  const missingModel = { key: 'model_name_or_path', message: 'is missing: name the model (a hub id such as HuggingFaceTB/SmolLM2-135M-Instruct)' };
  const missingData = { key: 'dataset', message: 'is missing: name the dataset file or hub dataset to train on' };
  const badRate = { key: 'learning_rate', message: 'must be a positive number, got -1' };

  it('lets the person go on before the check and when only the model or dataset is missing', () => {
    expect(settingsBlockTraining(undefined)).toBe(false);
    expect(settingsBlockTraining({ problems: [] })).toBe(false);
    expect(settingsBlockTraining({ problems: [missingModel, missingData] })).toBe(false);
  });

  it('holds the way while a setting is wrong', () => {
    expect(settingsBlockTraining({ problems: [badRate] })).toBe(true);
    expect(settingsBlockTraining({ problems: [missingModel, badRate] })).toBe(true);
    expect(settingsProblems([missingModel, badRate, missingData, { key: 'dataset', message: 'names no file on this device' }])).toEqual([badRate, { key: 'dataset', message: 'names no file on this device' }]);
    // A problem of the job as a whole counts too.
    expect(settingsBlockTraining({ problems: [{ message: 'stage "kto" is not supported' }] })).toBe(true);
  });
});
