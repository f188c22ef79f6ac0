// GRAFT_VERSION (written into the files only Graft reads, e.g. a bottleneck adapter's graft_version) is
// package.json's version.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GRAFT_VERSION } from '../../src/version';

describe('GRAFT_VERSION', () => {
  it("is package.json's version", () => {
    expect(GRAFT_VERSION).toBe((JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version);
  });
});
