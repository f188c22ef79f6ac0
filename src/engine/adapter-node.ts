// Finding a WebGPU adapter in Node through Dawn (npm "webgpu").
//
// Dawn looks for Vulkan drivers the usual way. On a machine without a GPU, Debian's `chromium` package ships
// SwiftShader's Vulkan driver; when no other adapter is found we point the Vulkan loader at it
// (VK_ICD_FILENAMES is read each time Dawn creates an instance, so this works inside one process).
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noAdapter, noWebGpu } from './errors';

const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib64/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
];

type DawnModule = { create(flags: string[]): GPU; globals: Record<string, unknown> };

let dawn: DawnModule | undefined;

async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (cause) {
    throw Object.assign(noWebGpu('node'), { cause });
  }
  // Dawn's constants (GPUBufferUsage, GPUMapMode, ...) are what browser code expects as globals.
  for (const [k, v] of Object.entries(dawn.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return dawn;
}

export function findSwiftShaderIcd(): string | undefined {
  return SWIFTSHADER_ICDS.find((p) => existsSync(p));
}

export interface NodeAdapter {
  adapter: GPUAdapter;
  /** Dawn's GPU object; kept alive as long as the adapter is used. */
  gpu: GPU;
  /** Set when Graft fell back to SwiftShader. */
  swiftshaderIcd?: string;
}

/** Whether the machine has a GPU device node (a DRM render node or an NVIDIA device). */
function hasGpuDeviceNode(): boolean {
  if (existsSync('/dev/nvidia0') || existsSync('/dev/dxg')) return true;
  try {
    return readdirSync('/dev/dri').some((n) => n.startsWith('renderD'));
  } catch {
    return false;
  }
}

/**
 * The Vulkan loader prints "XDG_RUNTIME_DIR is invalid or not set" to stderr (twice) when the variable is
 * missing, as it is in containers and CI; give it a private folder so that stderr keeps only Graft's messages.
 */
function quietVulkanLoader(): void {
  if (process.env.XDG_RUNTIME_DIR) return;
  try {
    process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), 'graft-xdg-'));
  } catch {
    // only cosmetic
  }
}

export async function requestNodeAdapter(): Promise<NodeAdapter> {
  quietVulkanLoader();
  const { create } = await loadDawn();
  // With no GPU device node there is nothing but software drivers: go straight to SwiftShader, which
  // spares the warnings Dawn prints while it rejects Mesa's lavapipe.
  const icdFirst = findSwiftShaderIcd();
  if (process.platform === 'linux' && !process.env.VK_ICD_FILENAMES && icdFirst && !hasGpuDeviceNode()) {
    process.env.VK_ICD_FILENAMES = icdFirst;
    const gpu = create([]);
    const adapter = await gpu.requestAdapter();
    if (adapter) return { adapter, gpu, swiftshaderIcd: icdFirst };
    delete process.env.VK_ICD_FILENAMES;
  }
  let gpu = create([]);
  let adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (adapter) return { adapter, gpu };
  const icd = findSwiftShaderIcd();
  if (icd && process.env.VK_ICD_FILENAMES !== icd) {
    process.env.VK_ICD_FILENAMES = icd;
    gpu = create([]);
    adapter = await gpu.requestAdapter();
    if (adapter) return { adapter, gpu, swiftshaderIcd: icd };
  }
  throw noAdapter(
    icd
      ? `Dawn found no usable Vulkan driver, not even SwiftShader at ${icd}. Install the Vulkan loader: apt-get install -y libvulkan1.`
      : 'On a machine without a GPU install a software one: apt-get install -y chromium libvulkan1 (Graft then uses Chromium\'s SwiftShader Vulkan driver). On a machine with a GPU, install its Vulkan driver.',
  );
}
