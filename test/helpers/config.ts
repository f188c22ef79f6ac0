// parseConfig's refusals, for the tests of what config.json Graft will not run.
import { expect } from 'vitest';
import { parseConfig, UnsupportedModelError } from '../../src/model/config';

/** The message of the UnsupportedModelError parseConfig throws for cfg (the test fails if it throws none). */
export function refusal(cfg: unknown): string {
  let err: unknown;
  try {
    parseConfig(cfg);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UnsupportedModelError);
  return (err as Error).message;
}
