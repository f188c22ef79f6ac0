// graft score: rate a prompt/answer pair with a reward model (a sequence-classification folder or hub repo), the
// pair encoded as in training; docs/cli.md ("graft score").
import { encodeConversation } from '../data/encode';
import { loadRewardModel } from '../model/reward-head';
import { numberOption, requiredString, stringOption, UsageError, type CommandSpec, type Parsed } from './args';
import { openGpu } from './gpu';
import { MODEL_OPTIONS, resolveModelArg, type CliEnv } from './model-arg';

export const scoreSpec: CommandSpec = {
  name: 'score',
  summary: 'Rate a prompt/answer pair with a reward model (graft train --stage rm).',
  usage: 'score --model <dir|repo> --prompt "..." --answer "..." [options]',
  details:
    '--model is a reward model: a ...ForSequenceClassification folder with num_labels 1 (what graft train\n' +
    '--stage rm writes into output_dir) or a hub id. The prompt becomes the user message and the answer the\n' +
    'assistant\'s turn, rendered with the model\'s chat template, as in training. Prints the reward; higher\n' +
    'means the model prefers the answer more.',
  options: {
    model: { type: 'string', short: 'm', value: '<dir|repo>', description: 'Reward model folder or hub model id.' },
    revision: MODEL_OPTIONS.revision,
    prompt: { type: 'string', short: 'p', value: '"..."', description: 'The prompt (the user message).' },
    answer: { type: 'string', short: 'a', value: '"..."', description: 'The answer to rate.' },
    system: { type: 'string', value: '"..."', description: 'A system prompt, when the model was trained with one.' },
    cutoff_len: { type: 'string', value: 'N', description: 'Cut the sequence to N tokens, as in training (default: the model\'s length).' },
    json: { type: 'boolean', description: 'Print {"reward", "tokens", "truncated"} as one JSON object.' },
  },
  examples: [
    'graft score --model runs/rm --prompt "How do I store medicine?" --answer "Out of reach of children."',
    'graft score --model runs/rm --prompt "Hi" --answer "Hello!" --json',
  ],
};

export async function runScore(args: Parsed, io: CliEnv): Promise<number> {
  const cmd = 'score';
  const v = args.values;
  const modelArg = requiredString(cmd, v, 'model', '<dir|repo>');
  const prompt = stringOption(cmd, v, 'prompt');
  const answer = stringOption(cmd, v, 'answer');
  if (prompt === undefined || prompt.trim() === '') throw new UsageError('graft score: --prompt "..." is required (see graft score --help)');
  if (answer === undefined || answer.trim() === '') throw new UsageError('graft score: --answer "..." is required (see graft score --help)');
  const system = stringOption(cmd, v, 'system');
  const cutoff = numberOption(cmd, v, 'cutoff_len', { integer: true, min: 1 });
  const revision = stringOption(cmd, v, 'revision');

  const resolved = await resolveModelArg(modelArg, io, revision !== undefined ? { revision } : {});
  const { ctx } = await (io.openGpu ?? openGpu)();
  const rm = await loadRewardModel(ctx, resolved.source, cutoff !== undefined ? { maxPositions: cutoff } : {});
  try {
    const { lm } = rm;
    const e = encodeConversation(
      {
        ...(system !== undefined && system.trim() !== '' ? { system } : {}),
        messages: [
          { role: 'user', content: prompt },
          { role: 'assistant', content: answer },
        ],
      },
      lm.tokenizer,
      lm.template,
      { cutoffLen: cutoff ?? lm.maxPositions },
    );
    const [reward] = await rm.head.score(lm.model, [e.inputIds], rm.padTokenId);
    if (v.json === true) io.stdout.write(`${JSON.stringify({ reward, tokens: e.inputIds.length, truncated: e.truncated })}\n`);
    else {
      io.stdout.write(`${reward}\n`);
      if (e.truncated) io.stderr.write(`graft score: note: the pair has ${e.fullLength} tokens; it was cut to ${e.inputIds.length}\n`);
    }
    return 0;
  } finally {
    rm.dispose();
    await ctx.sync().catch(() => undefined);
    ctx.destroy();
  }
}
