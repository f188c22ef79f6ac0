// The GPU for the CLI: Dawn's adapter (SwiftShader when there is no GPU) and one context per command.
import { requestNodeAdapter } from '../engine/adapter-node';
import { summarizeAdapter, type AdapterSummary } from '../engine/adapter-info';
import { GpuContext } from '../engine/context';

export interface CliGpu {
  ctx: GpuContext;
  adapter: AdapterSummary;
  /** Set when Graft fell back to Chromium's SwiftShader Vulkan driver. */
  swiftshaderIcd?: string;
}

export async function openGpu(): Promise<CliGpu> {
  const { adapter, gpu, swiftshaderIcd } = await requestNodeAdapter();
  const ctx = await GpuContext.create(adapter, gpu);
  const out: CliGpu = { ctx, adapter: summarizeAdapter(adapter) };
  if (swiftshaderIcd) out.swiftshaderIcd = swiftshaderIcd;
  return out;
}

/** Just the adapter's description, without creating a device. */
export async function describeGpu(): Promise<{ adapter: AdapterSummary; swiftshaderIcd?: string }> {
  const { adapter, swiftshaderIcd } = await requestNodeAdapter();
  const out: { adapter: AdapterSummary; swiftshaderIcd?: string } = { adapter: summarizeAdapter(adapter) };
  if (swiftshaderIcd) out.swiftshaderIcd = swiftshaderIcd;
  return out;
}
