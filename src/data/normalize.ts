// One parsed JSON record → a Conversation, for the three SFT formats (alpaca, sharegpt, openai; docs/data.md, "SFT
// records"). Each rule that a record can break has its own reason, written for the person who has to fix the file.
import type { ChatMessage, Conversation, DatasetFormat } from './types';
import { alpacaHistory, describe, fail, isObject, RecordError } from './record-rules';

export type NormaliseResult =
  | { ok: true; format: DatasetFormat; conversation: Conversation }
  | { ok: false; format?: DatasetFormat; reason: string };

/** Which format a record is in, from its fields; null when it is none of them. */
export function detectFormat(record: unknown): DatasetFormat | null {
  if (!isObject(record)) return null;
  if ('conversations' in record) return 'sharegpt';
  if ('messages' in record) return 'openai';
  if ('instruction' in record || 'output' in record) return 'alpaca';
  return null;
}

function optionalSystem(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(`"${field}" must be a string, not ${describe(v)}`);
  return (v as string).trim() === '' ? undefined : (v as string);
}

/** Checks the user/assistant alternation every format must end up with. */
function checkTurns(messages: ChatMessage[], what: string): void {
  if (messages.length === 0) fail(`${what} is empty`);
  messages.forEach((m, i) => {
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (m.role !== expected) {
      fail(`${what}: turn ${i + 1} is from ${m.role === 'system' ? 'the system (a system prompt is only allowed first)' : `the ${m.role}`}, but the turns must alternate user, assistant, user, ...`);
    }
    if (m.role === 'assistant' && m.content.trim() === '') fail(`${what}: answer ${Math.ceil(i / 2)} (turn ${i + 1}) is empty`);
  });
  if (messages[messages.length - 1]!.role !== 'assistant') fail(`${what} ends with a user turn; it must end with an assistant answer to learn from`);
}

function alpaca(r: Record<string, unknown>): Conversation {
  const { input, output } = r;
  // Without an instruction the input alone is the prompt, as LLaMA-Factory joins the non-empty prompt columns
  // (multi-task files are often {task, input, output}).
  const instruction = r.instruction === undefined && typeof input === 'string' && input.trim() !== '' ? '' : r.instruction;
  if (instruction === undefined) fail('"instruction" is missing');
  if (typeof instruction !== 'string') fail(`"instruction" must be a string, not ${describe(instruction)}`);
  if (input !== undefined && input !== null && typeof input !== 'string') fail(`"input" must be a string, not ${describe(input)}`);
  if (output === undefined) fail('"output" is missing');
  if (typeof output !== 'string') fail(`"output" must be a string, not ${describe(output)}`);
  const inp = typeof input === 'string' ? input : '';
  const user = inp !== '' ? (instruction === '' ? inp : `${instruction as string}\n${inp}`) : (instruction as string);
  if (user.trim() === '') fail('"instruction" and "input" are both empty');
  if ((output as string).trim() === '') fail('"output" is empty: there is no answer to learn from');

  const messages = alpacaHistory(r.history, true);
  messages.push({ role: 'user', content: user }, { role: 'assistant', content: output as string });
  const system = optionalSystem(r.system, 'system');
  const c: Conversation = system !== undefined ? { system, messages } : { messages };
  if (instruction === '' && inp !== '') c.inputOnly = true;
  return c;
}

const SHAREGPT_ROLES: Record<string, ChatMessage['role']> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  system: 'system',
};

function sharegpt(r: Record<string, unknown>): Conversation {
  const turns = r.conversations;
  if (!Array.isArray(turns)) fail(`"conversations" must be a list of {from, value} turns, not ${describe(turns)}`);
  const messages: ChatMessage[] = (turns as unknown[]).map((t, i) => {
    if (!isObject(t)) return fail(`"conversations" turn ${i + 1} must be an object with "from" and "value"`);
    if (typeof t.from !== 'string') return fail(`"conversations" turn ${i + 1} has no "from"`);
    const role = SHAREGPT_ROLES[t.from];
    if (!role) return fail(`"conversations" turn ${i + 1} is from "${t.from}"; the roles understood are human/user, gpt/assistant and system`);
    if (typeof t.value !== 'string') return fail(`"conversations" turn ${i + 1} has no text "value"`);
    return { role, content: t.value };
  });
  let system = optionalSystem(r.system, 'system');
  if (messages[0]?.role === 'system') system = optionalSystem(messages.shift()!.content, 'system') ?? system;
  checkTurns(messages, '"conversations"');
  return system !== undefined ? { system, messages } : { messages };
}

function openaiContent(c: unknown, where: string): string {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) {
    return c
      .map((part, j) => {
        if (isObject(part) && part.type === 'text' && typeof part.text === 'string') return part.text;
        return fail(`${where} part ${j + 1} is not text (${isObject(part) ? `type "${String(part.type)}"` : describe(part)}); only text can be trained on`);
      })
      .join('');
  }
  return fail(`${where} has no text "content"`);
}

function openai(r: Record<string, unknown>): Conversation {
  const list = r.messages;
  if (!Array.isArray(list)) fail(`"messages" must be a list of {role, content}, not ${describe(list)}`);
  const messages: ChatMessage[] = (list as unknown[]).map((m, i) => {
    if (!isObject(m)) return fail(`"messages" item ${i + 1} must be an object with "role" and "content"`);
    const role = m.role;
    if (role !== 'user' && role !== 'assistant' && role !== 'system') {
      return fail(`"messages" item ${i + 1} has role ${JSON.stringify(role)}; the roles understood are system, user and assistant`);
    }
    return { role, content: openaiContent(m.content, `"messages" item ${i + 1}`) };
  });
  const systems: string[] = [];
  while (messages[0]?.role === 'system') systems.push(messages.shift()!.content);
  let system = optionalSystem(r.system, 'system');
  if (systems.length > 0) system = optionalSystem(systems.join('\n'), 'system') ?? system;
  checkTurns(messages, '"messages"');
  return system !== undefined ? { system, messages } : { messages };
}

/**
 * Normalises one record. With `format` stated, a record in another format is a problem; without it the format
 * is detected per record (a file may mix ShareGPT and OpenAI records).
 */
export function normaliseRecord(record: unknown, format?: DatasetFormat): NormaliseResult {
  if (!isObject(record)) return { ok: false, reason: `a record must be a JSON object, not ${describe(record)}` };
  const detected = detectFormat(record);
  if (detected === null) {
    return {
      ok: false,
      reason: `unknown record (fields ${Object.keys(record).slice(0, 6).map((k) => `"${k}"`).join(', ') || 'none'}): expected "instruction"/"output" (alpaca), "conversations" (ShareGPT) or "messages" (OpenAI)`,
    };
  }
  if (format !== undefined && detected !== format) {
    return { ok: false, format: detected, reason: `this is a ${detected} record, but the dataset was declared ${format}` };
  }
  try {
    const conversation = detected === 'alpaca' ? alpaca(record) : detected === 'sharegpt' ? sharegpt(record) : openai(record);
    const task = record.task;
    if (task !== undefined && task !== null) {
      if (typeof task !== 'string' || task.trim() === '') fail(`"task" must name the record's task (a non-empty string), not ${typeof task === 'string' ? 'an empty one' : describe(task)}`);
      conversation.task = (task as string).trim();
    }
    return { ok: true, format: detected, conversation };
  } catch (e) {
    if (e instanceof RecordError) return { ok: false, format: detected, reason: e.message };
    throw e;
  }
}

/** The messages a chat template renders: the system prompt (if any) first, then the turns. */
export function templateMessages(c: Conversation, turns = c.messages.length): ChatMessage[] {
  const head: ChatMessage[] = c.system !== undefined ? [{ role: 'system', content: c.system }] : [];
  return [...head, ...c.messages.slice(0, turns)];
}
