// One GPUDevice for many GpuContexts, so that a test file compiles each kernel once.
//
// Creating a pipeline on SwiftShader compiles the kernel on the CPU, and a fresh device starts with none: a
// training step's 30-odd kernels take 10-30 s on this machine, against 1-2 s for the step itself. Dawn keeps
// one pipeline per identical kernel per device as long as one is alive, so contexts made on one device (and
// kept alive) share them. A GpuContext counts only its own buffers, so a fresh context on a shared device
// reports what it would on a fresh device.
import { requestNodeAdapter } from '../../src/engine/adapter-node';
import { summarizeAdapter } from '../../src/engine/adapter-info';
import { GpuContext } from '../../src/engine/context';
import type { CliGpu } from '../../src/cli/gpu';

export interface OneDevice {
  /** Pass to GpuContext.create: its first requestDevice makes the device, every later one gets that device. */
  adapter: GPUAdapter;
  /** Dawn's GPU object (keep it alive while the device is used). */
  gpu: GPU;
  /** The real adapter. */
  realAdapter: GPUAdapter;
  swiftshaderIcd?: string;
  /** A fresh GpuContext on the device, kept alive (with its pipelines) until the process ends. */
  context(): Promise<GpuContext>;
  /** Destroys the device for real (GpuContext.destroy() leaves it alone). */
  destroy(): Promise<void>;
}

/**
 * The shared device. GpuContext.create asks the adapter for a device with the limits and features it wants;
 * the first request is passed on unchanged, later ones get the same device. `device.destroy()` (which
 * GpuContext.destroy() calls) is a no-op on it: a context that is closed stays closed, the device does not.
 */
export async function oneDevice(): Promise<OneDevice> {
  const { adapter: realAdapter, gpu, swiftshaderIcd } = await requestNodeAdapter();
  let device: Promise<GPUDevice> | undefined;
  let destroyDevice: (() => void) | undefined;
  const adapter = {
    info: realAdapter.info,
    limits: realAdapter.limits,
    features: realAdapter.features,
    requestDevice: (descriptor?: GPUDeviceDescriptor) =>
      (device ??= realAdapter.requestDevice(descriptor).then((d) => {
        const destroy = d.destroy.bind(d);
        destroyDevice = destroy;
        Object.defineProperty(d, 'destroy', { value: () => undefined, configurable: true });
        return d;
      })),
  } as unknown as GPUAdapter;
  const contexts: GpuContext[] = [];
  const out: OneDevice = {
    adapter,
    gpu,
    realAdapter,
    async context() {
      const ctx = await GpuContext.create(adapter, gpu);
      contexts.push(ctx);
      return ctx;
    },
    async destroy() {
      await device;
      destroyDevice?.();
    },
  };
  if (swiftshaderIcd) out.swiftshaderIcd = swiftshaderIcd;
  return out;
}

let shared: Promise<OneDevice> | undefined;

/**
 * The test process's one device: testContext() (test/helpers/gpu.ts) and the commands run in process
 * (sharedCliGpu) make their contexts on it, so a file that loads a model itself and runs `graft` commands
 * compiles each kernel once.
 */
export function sharedDevice(): Promise<OneDevice> {
  return (shared ??= oneDevice());
}

/** A command's GPU as src/cli/gpu.ts's openGpu gives it, but a fresh GpuContext on the process's one device. */
export async function sharedCliGpu(): Promise<CliGpu> {
  const one = await sharedDevice();
  const out: CliGpu = { ctx: await one.context(), adapter: summarizeAdapter(one.realAdapter) };
  if (one.swiftshaderIcd) out.swiftshaderIcd = one.swiftshaderIcd;
  return out;
}
