// Finding a WebGPU adapter in a browser or a Web Worker.
import { noAdapter, noWebGpu } from './errors';

export async function requestBrowserAdapter(): Promise<GPUAdapter> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw noWebGpu('browser');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw noAdapter(
      'The browser supports WebGPU but offered no adapter: the GPU may be blocklisted or WebGPU disabled. Check chrome://gpu, update the graphics driver, or enable chrome://flags/#enable-unsafe-webgpu.',
    );
  }
  return adapter;
}
