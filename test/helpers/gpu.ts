// The GPU for tests: a real WebGPU adapter through Dawn, or a loud failure that says how to get one.
// Kernel tests never skip and never run on a mock.
import { GpuContext } from '../../src/engine/context';
import { requestNodeAdapter } from '../../src/engine/adapter-node';

let ctx: Promise<GpuContext> | undefined;

export function testContext(): Promise<GpuContext> {
  ctx ??= (async () => {
    const { adapter, gpu } = await requestNodeAdapter();
    return GpuContext.create(adapter, gpu);
  })();
  return ctx;
}
