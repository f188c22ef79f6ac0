// The shader builder's include step (src/engine/kernel.ts) and the library it draws on (shaders/lib/).
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildWgsl, expandIncludes, ro, rw } from '../../src/engine/kernel';
import { SHADER_LIB } from '../../src/engine/shader-lib';

const dir = (path: string) => new URL(`../../${path}`, import.meta.url);

describe('shader includes', () => {
  const lib = { a: 'fn a() {}\n{{include:c}}', b: '{{include:a}}\nfn b() {}', c: 'fn c() {}' };

  it('expands includes recursively, each file once per program', () => {
    const out = expandIncludes('{{include:b}}\n{{include:a}}\n{{include:c}}\nfn main() {}', 'test', lib);
    expect(out).toBe('fn a() {}\nfn c() {}\nfn b() {}\n\n\nfn main() {}');
  });

  it('names the kernel and the file when a library file is missing', () => {
    expect(() => expandIncludes('{{include:nope}}', 'my_kernel', lib)).toThrow(/my_kernel: no shaders\/lib\/nope.wgsl/);
  });

  it('expands before the placeholders are filled, so library code may use them', () => {
    const spec = { name: 't', source: '{{include:workgroup_sum}}\nfn main() {}', bindings: [rw('out'), ro('x')], defines: { WG: 64 } };
    const code = buildWgsl(spec, { WG: 64 });
    expect(code).toContain('array<f32, 64>');
    expect(code).not.toMatch(/\{\{/);
  });

  it('holds every file of shaders/lib, and every one is included somewhere', () => {
    const files = readdirSync(dir('shaders/lib')).filter((f) => f.endsWith('.wgsl')).map((f) => f.slice(0, -5));
    expect(Object.keys(SHADER_LIB).sort()).toEqual(files.sort());
    const sources = [...readdirSync(dir('shaders')), ...readdirSync(dir('shaders/lib')).map((f) => `lib/${f}`), ...readdirSync(dir('bench/shaders')).map((f) => `../bench/shaders/${f}`)]
      .filter((f) => f.endsWith('.wgsl'))
      .map((f) => readFileSync(dir(`shaders/${f}`), 'utf8'));
    // The weight readers (weight_<format>) are appended by the wrappers that read weights, by format.
    const wrappers = readdirSync(dir('src/engine/ops')).map((f) => readFileSync(dir(`src/engine/ops/${f}`), 'utf8'));
    const byFormat = (name: string) => name.startsWith('weight_') && wrappers.some((w) => w.includes('{{include:weight_${'));
    for (const name of files) expect(sources.some((s) => s.includes(`{{include:${name}}}`)) || byFormat(name), name).toBe(true);
  });
});
