// The shapes data takes on its way from a file to a batch: records → conversations → token ids + labels.

export type Role = 'user' | 'assistant' | 'system';

// A type alias rather than an interface, so that it is assignable to the chat template's open message type.
export type ChatMessage = {
  role: Role;
  content: string;
};

/** Where a record sits in its file: `line` (JSON Lines, 1-based) and/or `index` (0-based record number). */
export interface RecordSource {
  line?: number;
  index?: number;
}

/**
 * One training example, whatever format it came in. `messages` alternate user / assistant, start with a user
 * turn and end with an assistant turn (the answer); a system prompt is kept in `system`, not in `messages`.
 */
export interface Conversation {
  system?: string;
  messages: ChatMessage[];
  /** Multi-task training: the record's task (its `task` field, or the name of the dataset it came from). */
  task?: string;
  /**
   * The prompt is the record's `input` alone (an alpaca record without an instruction): task_template may put the
   * task in front of it (tasks.ts).
   */
  inputOnly?: boolean;
  /** Where the record came from, for messages that name it. */
  source?: RecordSource;
}

/** The record formats Graft reads (LLaMA-Factory's names: alpaca, sharegpt; `openai` = `messages` records). */
export type DatasetFormat = 'alpaca' | 'sharegpt' | 'openai';

/** A record that was skipped, with where it is and why. */
export interface DatasetProblem extends RecordSource {
  reason: string;
}

/** Describes a record's position for people: "line 7", "record 3" (0-based, as in the file's array). */
export function describeSource(source: RecordSource | undefined): string {
  if (!source) return 'a record';
  if (source.line !== undefined) return `line ${source.line}`;
  if (source.index !== undefined) return `record ${source.index}`;
  return 'a record';
}
