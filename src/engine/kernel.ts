// Kernel specs: a WGSL body from shaders/*.wgsl plus a declaration of its bindings and parameters, declared once,
// here, and turned into the WGSL header, so shader, bind-group layout and call can not disagree; `{{NAME}}`
// placeholders and `{{include:<name>}}` (docs/kernels.md, "Files").
import { SHADER_LIB } from './shader-lib';

export type ScalarType = 'u32' | 'i32' | 'f32';

export interface BindingSpec {
  name: string;
  /** 'read' → var<storage, read>; 'read_write' → var<storage, read_write>. */
  access: 'read' | 'read_write';
  /** The array element type, e.g. 'f32', 'u32', 'vec4<f32>', or '{{T}}' to take it from a define. */
  type: string;
}

/** A read-only storage binding (`var<storage, read> name: array<type>`). */
export function ro(name: string, type = 'f32'): BindingSpec {
  return { name, access: 'read', type };
}

/** A writable storage binding (`var<storage, read_write> name: array<type>`). */
export function rw(name: string, type = 'f32'): BindingSpec {
  return { name, access: 'read_write', type };
}

export interface KernelSpec {
  name: string;
  /** The WGSL body (usually imported with `?raw`). It uses the binding names and `params.<name>`. */
  source: string;
  entry?: string;
  bindings: readonly BindingSpec[];
  /** The uniform parameters, in struct order. All are 4-byte scalars. */
  params?: readonly (readonly [string, ScalarType])[];
  /** Default values for the `{{NAME}}` placeholders. */
  defines?: Readonly<Record<string, string | number>>;
}

export interface Defines {
  [name: string]: string | number;
}

/** WGSL extensions a compile may enable, e.g. 'f16' or 'subgroups'. */
export type WgslEnable = 'f16' | 'subgroups' | 'chromium_experimental_subgroup_matrix';

export function substitute(source: string, defines: Defines, kernelName: string): string {
  const out = source.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in defines)) throw new Error(`Kernel ${kernelName}: no value for placeholder {{${key}}}`);
    return String(defines[key]);
  });
  return out;
}

/**
 * Replaces each `{{include:<name>}}` with shaders/lib/<name>.wgsl, whose own includes are expanded in turn.
 * A file is pulled in once per program: a later include of the same name (say, by another included file)
 * expands to nothing, so two shared files can both rely on a third.
 */
export function expandIncludes(
  source: string,
  kernelName: string,
  lib: Readonly<Record<string, string>> = SHADER_LIB,
  included: Set<string> = new Set(),
): string {
  return source.replace(/\{\{include:([\w-]+)\}\}/g, (_, name: string) => {
    const text = lib[name];
    if (text === undefined) throw new Error(`Kernel ${kernelName}: no shaders/lib/${name}.wgsl to include`);
    if (included.has(name)) return '';
    included.add(name);
    return expandIncludes(text, kernelName, lib, included);
  });
}

/** The complete WGSL program: enables, Params struct, binding declarations, body (includes expanded). */
export function buildWgsl(spec: KernelSpec, defines: Defines, enables: readonly WgslEnable[] = []): string {
  const lines: string[] = [];
  for (const e of enables) lines.push(`enable ${e};`);
  const params = spec.params ?? [];
  if (params.length > 0) {
    lines.push('struct Params {');
    for (const [name, type] of params) lines.push(`  ${name}: ${type},`);
    lines.push('}');
  }
  spec.bindings.forEach((b, i) => {
    lines.push(`@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${b.type}>;`);
  });
  if (params.length > 0) {
    lines.push(`@group(0) @binding(${spec.bindings.length}) var<uniform> params: Params;`);
  }
  lines.push(expandIncludes(spec.source, spec.name));
  return substitute(lines.join('\n'), defines, spec.name);
}

export function paramsByteLength(spec: KernelSpec): number {
  // A uniform struct of n 4-byte scalars is rounded up to 16 bytes.
  const n = spec.params?.length ?? 0;
  return Math.max(16, Math.ceil((n * 4) / 16) * 16);
}

/** Packs parameter values in declaration order. A missing or non-finite value is a bug and throws. */
export function packParams(spec: KernelSpec, values: Readonly<Record<string, number>>, into: DataView, at: number): void {
  (spec.params ?? []).forEach(([name, type], i) => {
    const v = values[name];
    if (v === undefined || !Number.isFinite(v)) {
      throw new Error(`Kernel ${spec.name}: parameter ${name} is ${String(v)}`);
    }
    const o = at + i * 4;
    if (type === 'f32') into.setFloat32(o, v, true);
    else if (type === 'u32') {
      if (v < 0 || v > 0xffffffff || !Number.isInteger(v)) throw new Error(`Kernel ${spec.name}: ${name}=${v} is not a u32`);
      into.setUint32(o, v, true);
    } else {
      if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new Error(`Kernel ${spec.name}: ${name}=${v} is not an i32`);
      into.setInt32(o, v, true);
    }
  });
  const extra = Object.keys(values).filter((k) => !(spec.params ?? []).some(([n]) => n === k));
  if (extra.length) throw new Error(`Kernel ${spec.name}: unknown parameters ${extra.join(', ')}`);
}

export function cacheKey(spec: KernelSpec, defines: Defines, enables: readonly WgslEnable[]): string {
  return `${spec.name}|${JSON.stringify(Object.entries(defines).sort())}|${enables.join(',')}`;
}
