// Number formatting for the page.
import { formatBytes } from '../worker/api';

export { formatBytes };

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** 2.4e-7 style for small errors, 0 for exact. */
export function formatError(x: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return String(x);
  return x.toExponential(1);
}

export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}
