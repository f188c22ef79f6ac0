// A job that cannot run as asked: a sentence that says what to do, and a code the app and the command line
// can act on ('empty-dataset', 'no-adapter', ...).
export class JobError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JobError';
    this.code = code;
  }
}
