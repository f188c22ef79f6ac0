// TensorFlow.js's WebGPU backend on Graft's own device, for side-by-side benchmarks in Node.
//
// `@tensorflow/tfjs-backend-webgpu` registers its 'webgpu' backend only when `navigator.gpu` exists, and its
// WebGPUBackend constructor checks the same, but it takes the GPUDevice to run on as an argument. So in Node
// we give `navigator` (absent before Node 21, present without `gpu` after) Dawn's GPU object, construct the
// backend on the GPUDevice that Graft's GpuContext already holds, and register it as 'webgpu-graft'. Both
// libraries then record into the same queue of the same device: one adapter, one set of limits, and a
// `device.queue.onSubmittedWorkDone()` that waits for either's work. Dawn's constants (GPUBufferUsage,
// GPUMapMode, ...) are already globals: src/engine/adapter-node.ts installs them.
//
// The package's Node entry (dist/tf-backend-webgpu.node.js) is CommonJS and requires '@tensorflow/tfjs-core'
// itself; importing tfjs-core here resolves to the same CommonJS module, so the backend registers its
// kernels in the engine that `tf` below drives.
import type * as TfCore from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';

export type Tf = typeof TfCore;

export interface TfjsOnDevice {
  tf: Tf;
  backend: WebGPUBackend;
  /** The registered backend's name ('webgpu-graft'). */
  name: string;
  version: string;
  /** Submits what TF.js has recorded but not yet submitted (it batches 15 dispatches per submit). */
  flush(): void;
}

function installNavigatorGpu(gpu: GPU): void {
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (!g.navigator) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  } else if (!g.navigator.gpu) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  }
}

/**
 * Starts TF.js's WebGPU backend on `device` (the device of a Graft GpuContext) and makes it the active
 * backend. `gpu` is Dawn's GPU object (only its presence is checked), `info` the adapter's GPUAdapterInfo
 * (TF.js tunes a few choices for Intel GPUs from it).
 */
export async function tfjsOnDevice(device: GPUDevice, gpu: GPU, info: GPUAdapterInfo): Promise<TfjsOnDevice> {
  installNavigatorGpu(gpu);
  const tf = (await import('@tensorflow/tfjs-core')) as unknown as Tf & { default?: Tf };
  const core: Tf = (tf.default ?? tf) as Tf;
  const webgpu = (await import('@tensorflow/tfjs-backend-webgpu')) as unknown as {
    WebGPUBackend?: new (d: GPUDevice, i?: GPUAdapterInfo) => WebGPUBackend;
    default?: { WebGPUBackend: new (d: GPUDevice, i?: GPUAdapterInfo) => WebGPUBackend };
  };
  const Backend = webgpu.WebGPUBackend ?? webgpu.default?.WebGPUBackend;
  if (!Backend) throw new Error('@tensorflow/tfjs-backend-webgpu exports no WebGPUBackend');
  // Small ops on CPU-resident data would otherwise run on TF.js's CPU backend.
  core.env().set('WEBGPU_CPU_FORWARD', false);
  const name = 'webgpu-graft';
  let backend: WebGPUBackend | undefined;
  if (!core.findBackend(name)) {
    core.registerBackend(name, () => (backend = new Backend(device, info)), 1);
  }
  // Kernels are registered for the backend name 'webgpu'; copy them to ours.
  for (const k of core.getKernelsForBackend('webgpu')) {
    try {
      core.registerKernel({ ...k, backendName: name });
    } catch {
      // already registered (a second call)
    }
  }
  const ok = await core.setBackend(name);
  if (!ok) throw new Error(`TF.js could not start its WebGPU backend on this device`);
  backend ??= core.findBackend(name) as WebGPUBackend;
  await core.ready();
  const b = backend as unknown as { commandEncoder: unknown; endComputePassEncoder(): void; submitQueue(): void };
  return {
    tf: core,
    backend,
    name,
    version: core.version_core,
    flush: () => {
      if (b.commandEncoder) {
        b.endComputePassEncoder();
        b.submitQueue();
      }
    },
  };
}

export interface TfjsWasm {
  tf: Tf;
  /** The registered backend's name ('wasm'). */
  name: string;
  version: string;
  /** SIMD and threads, as the backend found them. */
  features: string;
}

/**
 * TF.js's WebAssembly backend (`@tensorflow/tfjs-backend-wasm`: XNNPACK on the CPU), in the same tfjs-core as
 * the WebGPU backend above; its .wasm files load from node_modules. Leaves 'wasm' the active backend: callers
 * switch with `tf.setBackend(name)` before each library's work.
 */
export async function tfjsWasm(): Promise<TfjsWasm> {
  const tf = (await import('@tensorflow/tfjs-core')) as unknown as Tf & { default?: Tf };
  const core: Tf = (tf.default ?? tf) as Tf;
  await import('@tensorflow/tfjs-backend-wasm');
  const ok = await core.setBackend('wasm');
  if (!ok) throw new Error('TF.js could not start its wasm backend');
  await core.ready();
  const simd = core.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const threads = core.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  return { tf: core, name: 'wasm', version: core.version_core, features: `WebAssembly on the CPU, SIMD ${simd ? 'yes' : 'no'}, threads ${threads ? 'yes' : 'no'}` };
}
