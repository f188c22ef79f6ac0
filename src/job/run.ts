// The one place where a job becomes a running trainer and its result files: `graft train` and the app's Train
// screen both call runJob, handing it the model's files, the records, a checkpoint store and a sink. No DOM, no Node
// file system, no comlink. Its steps: docs/architecture.md ("One job, two entry points").
import type { GpuContext } from '../engine/context';
import { loadModel, type LoadedModel } from '../model/load';
import type { WeightOptions } from '../model/params';
import { ADAPTER_CONFIG, readAdapter } from '../model/adapter';
import { isBottleneckConfig, readBottleneckAdapter } from '../model/bottleneck-file';
import { parseConfig } from '../model/config';
import { readJson } from '../model/source';
import { usesReference } from '../train/objectives/preference-loss';
import type { TrainSettings } from '../train/settings';
import { Trainer } from '../train/trainer';
import { DEFAULT_MAX_POSITIONS } from '../model/transformer';
import { encodeJobData } from './data';
import { applyTaskTemplate } from '../data/tasks';
import { JobError } from './errors';
import { llamaFactoryJobFor } from './llamafactory';
import { predictionFiles, predictRefusal, predictTrained } from './predict';
import { buildResult } from './results';
import type { JobHooks, JobOutcome, JobSpec } from './types';

/**
 * Positions the model is loaded with: what training needs (cutoff_len, after prompt tuning's virtual tokens),
 * and at least what generation gets by default, so that the app can chat with the model after the run.
 */
function positionsFor(s: TrainSettings, modelPositions: number): number {
  const virtualTokens = s.finetuning_type === 'prompt' ? s.num_virtual_tokens : 0;
  const predictTokens = s.do_predict ? s.max_new_tokens : 0; // do_predict: the prompt (at most cutoff_len) and its answer
  return Math.max(s.cutoff_len + virtualTokens + predictTokens, Math.min(modelPositions, DEFAULT_MAX_POSITIONS));
}

/**
 * How the job's base is held on the GPU: its file precision, or with quantization_bit (QLoRA) the blocks' linears
 * quantized as they load (settings refuse it with full and freeze, which train the base).
 */
export function weightOptionsFor(s: Pick<TrainSettings, 'quantization_bit' | 'quantization_type' | 'double_quantization'>): WeightOptions {
  if (s.quantization_bit === undefined) return {};
  return { quantize: { format: s.quantization_bit === 8 ? 'int8' : s.quantization_type, doubleQuant: s.double_quantization } };
}

export async function runJob(ctx: GpuContext, spec: JobSpec, hooks: JobHooks = {}): Promise<JobOutcome> {
  const s = spec.settings;
  const emit = hooks.onEvent ?? (() => undefined);
  const pairs = spec.data.kind === 'pairs';
  let lm: LoadedModel | undefined;
  let reference: LoadedModel | undefined;
  let trainer: Trainer | undefined;
  let keep = false;
  try {
    const predictWhyNot = predictRefusal(s, spec.predict !== undefined);
    if (predictWhyNot) throw new JobError('bad-settings', `${predictWhyNot}.`);
    emit({ kind: 'phase', phase: 'loading', message: `Loading ${spec.model.id} onto the GPU` });
    await hooks.beforeLoad?.();
    const config = parseConfig(await readJson(spec.model.source, 'config.json', true, 'every model folder needs one'));
    lm = await loadModel(ctx, spec.model.source, { maxPositions: positionsFor(s, config.maxPositions), weights: weightOptionsFor(s) });

    emit({ kind: 'phase', phase: 'preparing', message: pairs ? 'Tokenizing the preference pairs' : 'Tokenizing the dataset' });
    const data = encodeJobData(spec.data, spec.datasetName, lm, s);
    if (data.problems.length) emit({ kind: 'encode-problems', problems: data.problems, what: pairs ? 'pairs' : 'records' });
    for (const text of data.notes) emit({ kind: 'note', text });

    // DPO with full or freeze training compares with a frozen copy of the starting model: loaded a second time,
    // used for the reference log-probs before the first step, then freed. The adapter methods compare with the
    // model with the adapter switched off: no copy.
    if (s.stage === 'dpo' && (s.finetuning_type === 'full' || s.finetuning_type === 'freeze') && usesReference(s.pref_loss)) {
      emit({ kind: 'phase', phase: 'loading', message: 'Loading the frozen reference model' });
      reference = await loadModel(ctx, spec.model.source, { maxPositions: s.cutoff_len });
    }
    // A reward model's head starts as Hugging Face initialises it: normal(0, config.json's initializer_range).
    const initializerRange = s.stage === 'rm' ? (await readJson(spec.model.source, 'config.json', true)).initializer_range : undefined;
    // LoRA (PEFT) or bottleneck, by its adapter_config.json; the trainer refuses one that does not fit finetuning_type.
    const a = spec.startingAdapter;
    const startingAdapter = a
      ? isBottleneckConfig(await readJson(a, ADAPTER_CONFIG, true, 'an adapter folder needs adapter_config.json and adapter_model.safetensors'))
        ? await readBottleneckAdapter(a, lm.config)
        : await readAdapter(a, lm.config)
      : undefined;
    // Prompt tuning's "text" init: PEFT tokenizes the text as tokenizer(text) does, with the special tokens.
    const promptInitIds = s.finetuning_type === 'prompt' && s.prompt_tuning_init === 'text' ? lm.tokenizer.encode(s.prompt_tuning_init_text!, { addSpecialTokens: true }) : undefined;

    trainer = Trainer.create({
      model: lm.model,
      settings: s,
      train: data.train,
      val: data.val,
      padTokenId: lm.tokenizer.padTokenId ?? lm.tokenizer.eosTokenIds[0] ?? 0,
      store: spec.checkpoints,
      ...(startingAdapter ? { startingAdapter } : {}),
      ...(promptInitIds ? { promptInitIds } : {}),
      ...(spec.resume ? { resume: spec.resume } : {}),
      ...(reference ? { reference: reference.model } : {}),
      ...(typeof initializerRange === 'number' ? { initializerRange } : {}),
    });
    const t = trainer;
    for (const text of t.notes) emit({ kind: 'note', text });
    if (pairs) {
      emit({ kind: 'phase', phase: 'preparing', message: 'Computing the reference log-probabilities' });
      await t.prepare();
      reference?.dispose();
      reference = undefined;
    }

    const history = t.history;
    await spec.sink.begin({ history, step: t.step, totalSteps: t.totalSteps, ...(t.resumeChanges.length ? { resumeChanges: t.resumeChanges } : {}) });
    const tasks = t.objective.tasks;
    emit({
      kind: 'started',
      trainableParameters: t.params.reduce((sum, p) => sum + p.shape.reduce((x, y) => x * y, 1), 0),
      sequences: data.train.length,
      valSequences: data.val.length,
      totalSteps: t.totalSteps,
      history,
      ...(spec.resume ? { resumedFrom: spec.resume.state.global_step } : {}),
      ...(tasks ? { tasks: tasks.names.map((name, k) => ({ name, examples: tasks.ofExample.filter((x) => x === k).length })) } : {}),
    });
    emit({ kind: 'phase', phase: hooks.control?.paused ? 'paused' : 'training' });

    let train;
    try {
      train = await t.run({
        ...(hooks.control ? { control: hooks.control } : {}),
        ...(hooks.signal ? { signal: hooks.signal } : {}),
        onStep: (record) => spec.sink.step(record),
        onWarning: (text) => emit({ kind: 'warning', text }),
        onEval: (record) => {
          spec.sink.evaluation(record);
          emit({ kind: 'eval', record });
        },
        onProgress: (progress) => emit({ kind: 'progress', progress }),
        onCheckpoint: (step, location) => emit({ kind: 'checkpoint', step, location }),
      });
    } finally {
      await spec.sink.flush();
    }
    if (train.status === 'stopped') return { status: 'stopped', train };

    emit({ kind: 'phase', phase: 'saving', message: 'Saving the result' });
    const result = await buildResult(t, lm, spec.model.source, spec.model.id, s);
    const lf = spec.llamaFactory ? llamaFactoryJobFor(spec.llamaFactory.settings, spec.datasetName, spec.data, lm.template.origin === 'default' ? 'graft-default' : 'model') : undefined;
    if (lf) result.llamaFactory = lf;
    if (s.do_predict) {
      const records = spec.predict?.records ? applyTaskTemplate(spec.predict.records, s.task_template).records : data.valRecords;
      emit({ kind: 'phase', phase: 'eval', message: `Predicting ${records.length} held-out record${records.length === 1 ? '' : 's'}` });
      const p = await predictTrained(lm, result, records, s, { segment: spec.predict!.segment, ...(hooks.signal ? { signal: hooks.signal } : {}) });
      result.predictions = predictionFiles(p);
      emit({ kind: 'note', text: `predict: ${Object.entries(p.metrics).filter(([k]) => /bleu|rouge/.test(k)).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')} on ${p.predictions.length} records` });
    }
    await spec.sink.save(result);
    t.dispose();
    trainer = undefined;
    keep = hooks.keepModel === true;
    return { status: 'completed', train, result, ...(keep ? { model: lm } : {}) };
  } finally {
    trainer?.dispose();
    reference?.dispose();
    if (!keep) lm?.dispose();
  }
}
