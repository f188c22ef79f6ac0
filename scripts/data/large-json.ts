// Loads a 100 MB JSON dataset (alpaca records written as Python's json.dump does: one line, ", " and ": "
// separators, non-ASCII escaped) through the parser the CLI and the app use, and prints the time and the peak
// memory (max RSS) of the process that parses (a child, so the writing does not count). Not a test: run it by
// hand, `npx tsx scripts/data/large-json.ts [MB]`.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDatasetText } from '../../src/data/parse';

function parseFile(file: string): void {
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  const data = new Uint8Array(readFileSync(file));
  const d = parseDatasetText(data, 'big.json');
  const seconds = (performance.now() - t0) / 1000;
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(
    JSON.stringify({
      file_mb: +(data.length / 1e6).toFixed(1),
      records: d.records.length,
      problems: d.problems.length,
      container: d.container,
      seconds: +seconds.toFixed(2),
      rss_before_mb: +(before / 1e6).toFixed(0),
      peak_rss_mb: +(peak / 1e6).toFixed(0),
    }),
  );
}

if (process.argv[2] === '--parse') parseFile(process.argv[3]!);
else {
  const targetMb = Number(process.argv[2] ?? 100);
  const dir = mkdtempSync(join(tmpdir(), 'graft-large-'));
  const file = join(dir, 'big.json');
  const ascii = (s: string) => s.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const parts: string[] = [];
  let bytes = 2;
  for (let i = 0; bytes < targetMb * 1e6; i++) {
    const r = `{"instruction": "${ascii(`问题 ${i}: 用简单的语言解释第 ${i} 个概念。`)}", "input": "${'context '.repeat(20)}", "output": "${ascii(`答案 ${i}: `)}${'The answer explains the idea in plain words. '.repeat(4)}"}`;
    parts.push(r);
    bytes += r.length + 2;
  }
  writeFileSync(file, `[${parts.join(', ')}]`);
  parts.length = 0;
  process.stdout.write(execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, '--parse', file]));
  rmSync(dir, { recursive: true });
}
