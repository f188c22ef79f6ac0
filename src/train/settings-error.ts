// The error of settings that cannot run (parseSettings, parseJobYaml, and the methods and objectives that check
// settings against a model or dataset): every problem, each with its key and, from a job file, its line.
/** A job that cannot run, with every problem found (not only the first). */
export class SettingsError extends Error {
  readonly code = 'bad-settings';
  constructor(
    readonly source: string,
    readonly problems: SettingsProblem[],
  ) {
    super(
      problems.length === 1
        ? `${source}: ${formatProblem(problems[0]!)}`
        : `${source} has ${problems.length} problems:\n${problems.map((p) => `  - ${formatProblem(p)}`).join('\n')}`,
    );
    this.name = 'SettingsError';
  }
}

export interface SettingsProblem {
  /** The key concerned; undefined for problems of the file as a whole. */
  key?: string;
  /** 1-based line in the job file, when the settings came from one. */
  line?: number;
  message: string;
}

function formatProblem(p: SettingsProblem): string {
  const where = [p.line !== undefined ? `line ${p.line}` : '', p.key ?? ''].filter(Boolean).join(', ');
  return where ? `${where}: ${p.message}` : p.message;
}
