// Small helpers for what the worker names and writes: file names from labels, ids, JSON and zip files.
import { zipFiles } from '../export/zip';
import type { ExportFile } from './protocol';

const encoder = new TextEncoder();

/** "HuggingFaceTB/SmolLM2-135M-Instruct" → "SmolLM2-135M-Instruct"; safe for file names. */
export function fileStem(text: string): string {
  const last = text.split('/').filter(Boolean).pop() ?? text;
  return last.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'graft';
}

/**
 * A name no other run or result on this device has: `wanted` itself, else "wanted 2", "wanted 3", … (compared
 * without case and surrounding spaces, so that the file names made from them differ too).
 */
export function uniqueLabel(wanted: string, taken: Iterable<string>): string {
  const base = wanted.trim().replace(/\s+/g, ' ') || 'Run';
  const used = new Set([...taken].map((t) => t.trim().toLowerCase()));
  if (!used.has(base.toLowerCase())) return base;
  for (let n = 2; ; n++) {
    const name = `${base} ${n}`;
    if (!used.has(name.toLowerCase())) return name;
  }
}

/** "2026-12-07" */
export function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** A new id: "<prefix>-<time>-<random>". */
export function newId(prefix: string): string {
  const rand = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0');
  return `${prefix}-${Date.now().toString(36)}-${rand}`;
}

/** Pretty-printed JSON with a final newline, as bytes. */
export const jsonBytes = (v: unknown): Uint8Array => encoder.encode(`${JSON.stringify(v, null, 2)}\n`);

/** Files as one zip holding the folder `stem`/. */
export function zipFolder(stem: string, files: ReadonlyMap<string, Uint8Array>): ExportFile {
  return { name: `${stem}.zip`, bytes: zipFiles(new Map([...files].map(([name, bytes]) => [`${stem}/${name}`, bytes]))), mime: 'application/zip' };
}
