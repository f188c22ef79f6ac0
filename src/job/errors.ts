// A job that cannot run as asked: a sentence that says what to do, and a code the app and the command line
// can act on ('empty-dataset', 'no-adapter', ...).
import { CodedError } from '../engine/errors';
export class JobError extends CodedError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super('JobError', code, message, options);
  }
}
