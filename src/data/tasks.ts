// Multi-task records the model can tell apart: a record with a `task` and no instruction ({task, input, output},
// the primer's multi-task format) gets its task into the prompt through `task_template` (Graft's setting, default
// "{task}: {input}"), and prompts that look the same under two tasks are reported. docs/data.md ("Tasks").
import type { Conversation } from './types';

export const DEFAULT_TASK_TEMPLATE = '{task}: {input}';

/** The prompt of an input-only record of `task` under `template` ("" leaves the input alone). */
export function renderTaskPrompt(template: string, task: string, input: string): string {
  if (template === '') return input;
  return template.replaceAll('{task}', task).replaceAll('{input}', input);
}

export interface TaskPromptResult {
  records: Conversation[];
  /** Records whose prompt now names their task. */
  rendered: number;
  /** Prompts that look the same under two tasks, in sentences. */
  warnings: string[];
}

const promptKey = (c: Conversation) => JSON.stringify([c.system ?? '', c.messages.slice(0, -1).map((m) => m.content)]);

/**
 * Puts each input-only record's task into its prompt (`template`, "" for none) and reports prompts that two
 * tasks share: the model sees the same text and is asked for two kinds of answer.
 */
export function applyTaskTemplate(records: readonly Conversation[], template: string): TaskPromptResult {
  let rendered = 0;
  const out = records.map((c) => {
    if (c.task === undefined || c.inputOnly !== true || template === '') return c;
    const messages = c.messages.slice();
    const k = messages.length - 2;
    messages[k] = { ...messages[k]!, content: renderTaskPrompt(template, c.task, messages[k]!.content) };
    rendered++;
    const { inputOnly: _x, ...rest } = c;
    return { ...rest, messages };
  });
  const tasksOf = new Map<string, Set<string>>();
  for (const c of out) {
    if (c.task === undefined) continue;
    const key = promptKey(c);
    let set = tasksOf.get(key);
    if (!set) tasksOf.set(key, (set = new Set()));
    set.add(c.task);
  }
  const shared = [...tasksOf.entries()].filter(([, t]) => t.size > 1);
  const warnings: string[] = [];
  if (shared.length > 0) {
    const [key, tasks] = shared[0]!;
    const text = (JSON.parse(key) as [string, string[]])[1].at(-1) ?? '';
    warnings.push(
      `${shared.length} prompt${shared.length === 1 ? ' is' : 's are'} the same under two or more tasks (e.g. "${text.length > 60 ? `${text.slice(0, 57)}...` : text}" for ${[...tasks].sort().join(' and ')}): ` +
        `the model sees the same text and is asked for different answers. ${template === '' ? 'Set task_template (e.g. "{task}: {input}") or give' : 'Give'} the records an instruction that says what to do.`,
    );
  }
  return { records: out, rendered, warnings };
}
