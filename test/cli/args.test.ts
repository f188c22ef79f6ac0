// parseCommand's bare values (OptionSpec.bare): a string option given alone — last, or followed by another
// option — reads as `--flag <bare>`; given a value, it keeps that value; other string options still need one.
// graft train gives every true/false setting bare "true" (`--gradient_checkpointing`).
import { describe, expect, it } from 'vitest';
import { parseCommand, UsageError, type CommandSpec } from '../../src/cli/args';
import { trainSpec } from '../../src/cli/train-spec';

const spec: CommandSpec = {
  name: 't',
  summary: '',
  usage: 't [file]',
  positionals: ['<file>'],
  required: 0,
  options: { on: { type: 'string', bare: 'true', description: '' }, n: { type: 'string', description: '' } },
};

describe('parseCommand: bare values', () => {
  it('fills the bare value where the flag stands alone, and keeps a given value', () => {
    expect(parseCommand(spec, ['--on']).values.on).toBe('true');
    expect(parseCommand(spec, ['--on', '--n', '3']).values).toMatchObject({ on: 'true', n: '3' });
    expect(parseCommand(spec, ['--on', 'false', '--n', '3']).values).toMatchObject({ on: 'false', n: '3' });
    expect(parseCommand(spec, ['--on=false']).values.on).toBe('false');
    expect(parseCommand(spec, ['f.yaml', '--on']).positionals).toEqual(['f.yaml']);
    expect(parseCommand(spec, ['--', '--on']).positionals).toEqual(['--on']); // after --, nothing is a flag
    expect(() => parseCommand(spec, ['--n'])).toThrow(UsageError); // no bare value: still needs one
  });

  it('graft train: true/false settings take a bare flag, others do not', () => {
    expect(parseCommand(trainSpec, ['--gradient_checkpointing', '--max_steps', '3']).values).toMatchObject({ gradient_checkpointing: 'true', max_steps: '3' });
    expect(parseCommand(trainSpec, ['--use_rslora']).values.use_rslora).toBe('true');
    expect(() => parseCommand(trainSpec, ['--max_steps'])).toThrow(/--max_steps needs a value/);
  });
});
