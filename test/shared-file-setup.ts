// Runs before every test file of the 'shared' project (vitest.config.ts), whose files run one after another in
// one process: after the file, its GPU context's buffers and the models its helpers loaded are freed, so the
// next file starts with a context of its own, as in a process of its own, and only the device's compiled
// pipelines carry over.
import { afterAll } from 'vitest';
import { endTestFile } from './helpers/gpu';

afterAll(endTestFile);
