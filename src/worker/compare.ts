// The Chat screen's GPU work beside training: the base model and a tuned one (an adapter switched per request,
// or a fine-tuned model) answering the same prompt, and a reward model scoring answers. Models stay on the GPU
// between requests (Workbench's cache), and every request waits for the GPU work queued before it.
import { encodeConversation } from '../data/encode';
import { DEFAULT_REVISION } from '../hub/client';
import type { LoadedModel } from '../model/load';
import { loadRewardModel } from '../model/reward-head';
import { ModelError, storeSource } from '../model/source';
import { answerPrompt } from './answer';
import { adapterSource, type Library } from './library';
import type { ChatResult, CompareRequest, ScoreRequest, ScoreResult } from './protocol';
import type { Workbench } from './workbench';

export class Compare {
  /** The answer being generated, for stop(). */
  private readonly generation: { ctl?: AbortController } = {};

  constructor(
    private readonly wb: Workbench,
    private readonly library: Library,
  ) {}

  /** Before other GPU work (the benchmark): refuses while a run trains; frees the models kept for comparing. */
  async yieldGpu(what: string): Promise<void> {
    this.wb.checkIdle();
    if (this.wb.generating) throw new ModelError('bad-options', `An answer is being generated. Wait for it, or stop it, before ${what}.`);
    await this.wb.idle();
    await this.wb.freeGpuModels();
  }

  /** Scores answers to a prompt with a reward model of a stage rm run. */
  async score(request: ScoreRequest): Promise<ScoreResult> {
    if (this.wb.active) throw new ModelError('bad-options', 'Training is running on the GPU. Score answers when it ends (or stop it).');
    const row = await this.library.tunedRow(request.rewardRepo);
    if (!row?.reward) throw new ModelError('bad-options', 'That reward model is no longer on this device. Train one with stage "rm" on the Method screen.');
    if (!request.prompt.trim()) throw new ModelError('bad-options', 'The prompt is empty: the reward model scores answers to a prompt.');
    if (request.answers.length === 0) throw new ModelError('bad-options', 'There is no answer to score: sample some first.');
    return this.wb.queue(async () => {
      const rm = await loadRewardModel(await this.wb.gpu(), storeSource(this.wb.tunedModels, request.rewardRepo, DEFAULT_REVISION));
      try {
        const encoded = request.answers.map((answer) =>
          encodeConversation({ messages: [{ role: 'user', content: request.prompt }, { role: 'assistant', content: answer }] }, rm.lm.tokenizer, rm.lm.template, { cutoffLen: rm.lm.maxPositions }),
        );
        const rewards = await rm.head.score(rm.lm.model, encoded.map((e) => e.inputIds), rm.padTokenId);
        return { rewards: [...rewards], tokens: encoded.map((e) => e.inputIds.length), truncated: encoded.map((e) => e.truncated) };
      } finally {
        rm.dispose();
      }
    });
  }

  /** Generates with the base model (tuned null) or a tuned one; `onToken(delta)` streams the text. */
  async generate(request: CompareRequest, onToken?: (textDelta: string, id: number) => void): Promise<ChatResult> {
    return this.wb.generate('Chat', this.generation, (signal) => this.generateNow(request, signal, onToken));
  }

  stop(): void {
    this.generation.ctl?.abort();
  }

  private async generateNow(request: CompareRequest, signal: AbortSignal, onToken?: (textDelta: string, id: number) => void): Promise<ChatResult> {
    const revision = request.baseRevision ?? DEFAULT_REVISION;
    let lm: LoadedModel;
    let adapter: string | null = null;
    const tuned = request.tuned;
    if (tuned?.kind === 'model') {
      const row = await this.library.tunedRow(tuned.repo);
      if (row?.reward) throw new ModelError('bad-options', `${row.label} is a reward model: it scores answers and does not write them. Pick it under "Rank sampled answers".`);
      lm = await this.wb.cachedModel('tuned', tuned.repo, DEFAULT_REVISION);
    } else {
      lm = await this.wb.cachedModel(request.baseStore ?? 'models', request.baseRepo, revision);
      if (tuned?.kind === 'adapter') {
        const row = await this.library.adapterRow(tuned.id);
        if (!row) throw new ModelError('bad-options', 'That adapter is no longer on this device.');
        if (!lm.adapters.includes(row.id)) await lm.loadAdapter(adapterSource(row), row.id);
        adapter = row.id;
      }
    }
    return answerPrompt(lm, request.prompt, request.options, { adapter, signal }, onToken);
  }
}
