// The GPU context: one device, its kernel cache, a buffer pool, and the command encoder that collects a step's
// dispatches (recorded, submitted by flush(), errors checked before any read). Staged writes and the memory
// statistics: docs/kernels.md ("The GPU context").
import { REQUESTED_LIMITS, SUBGROUP_MATRIX_FEATURE, summarizeAdapter, type AdapterSummary } from './adapter-info';
import { GpuError, deviceLost, limitExceeded, outOfMemory, validation } from './errors';
import { bf16ArrayToF32, f16ArrayToF32 } from './half';
import {
  buildWgsl,
  cacheKey,
  packParams,
  paramsByteLength,
  type Defines,
  type KernelSpec,
  type WgslEnable,
} from './kernel';
import { DTYPE_BYTES, Tensor, numel, type DType } from './tensor';
import { StagingChunks } from './staging';

export interface CompiledKernel {
  spec: KernelSpec;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  paramBytes: number;
}

export interface ContextStats {
  dispatches: number;
  submits: number;
  readbacks: number;
  buffersCreated: number;
  bindGroupsCreated: number;
  bytesAllocated: number;
  peakBytesAllocated: number;
  /** bytesAllocated minus the free buffers of the pools: what live tensors and in-flight staging hold. */
  bytesInUse: number;
  peakBytesInUse: number;
  /** Writes recorded as staged copies into the recorded work (no submit). */
  stagedWrites: number;
  /** Milliseconds spent awaiting the GPU in sync() and read() (the rest of a step's wall time is CPU work). */
  waitMs: number;
}

type Bindable = Tensor | GPUBuffer;

/** One timed dispatch of a profile: its kernel (the spec's name) and its GPU time. */
export interface ProfiledDispatch {
  kernel: string;
  /** GPU nanoseconds between the start and the end of its compute pass (timestamp queries). */
  ns: number;
}

/** Queries per query set (WebGPU's limit is 4096): two a dispatch. */
const QUERY_SET_SIZE = 4096;

const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x4 /* COPY_SRC */ | 0x8; /* COPY_DST */
const UNIFORM_CHUNK = 64 * 1024;
/** One upload staging chunk; a single write above this size submits recorded work and writes directly. */
export const UPLOAD_CHUNK = 256 * 1024;
/** Staged bytes per recording before the context submits (bounds the staging memory to this). */
export const UPLOAD_STAGING_MAX = 16 * UPLOAD_CHUNK;

/** Pool size classes: 4 per octave above 4 KiB, so a reused buffer wastes at most ~19%. */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 16) * 16);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

export class GpuContext {
  readonly adapter: AdapterSummary;
  readonly hasF16: boolean;
  readonly hasSubgroups: boolean;
  /** chromium-experimental-subgroup-matrix (ops/matmul.ts's 'subgroup-matrix' kernel). */
  readonly hasSubgroupMatrix: boolean;
  /** timestamp-query: GPU time per dispatch and per step (`profile`). */
  readonly hasTimestamps: boolean;
  readonly stats: ContextStats = {
    dispatches: 0,
    submits: 0,
    readbacks: 0,
    buffersCreated: 0,
    bindGroupsCreated: 0,
    bytesAllocated: 0,
    peakBytesAllocated: 0,
    bytesInUse: 0,
    peakBytesInUse: 0,
    stagedWrites: 0,
    waitMs: 0,
  };
  /** Bytes of the free buffers in the pools (allocated, not in use). */
  private poolFreeBytes = 0;

  private lostError: GpuError | undefined;
  private readonly uncaptured: GPUError[] = [];
  private readonly pending: Promise<GpuError | undefined>[] = [];
  private readonly kernels = new Map<string, CompiledKernel>();
  private readonly pool = new Map<number, GPUBuffer[]>();
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private readonly uniforms = new StagingChunks(UNIFORM_CHUNK, () => this.createBuffer(UNIFORM_CHUNK, 0x40 /* UNIFORM */ | 0x8 /* COPY_DST */, 'kernel parameters'));
  private readonly uploads = new StagingChunks(UPLOAD_CHUNK, () => this.createBuffer(UPLOAD_CHUNK, 0x4 /* COPY_SRC */ | 0x8 /* COPY_DST */, 'upload staging'));
  private readonly uniformAlign: number;
  private readonly releaseAfterFlush: GPUBuffer[] = [];
  private readonly kernelIds = new Map<CompiledKernel, number>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 0;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  /** While a profile runs: the kernels timed so far in this recording, their query sets, and the reads in flight. */
  private profiling:
    | { names: string[]; sets: GPUQuerySet[]; used: number; reads: Promise<ProfiledDispatch[]>[]; free: GPUQuerySet[] }
    | undefined;
  /** Mappable readback buffers, by size class, reused across reads. */
  private readonly stagingPool = new Map<number, GPUBuffer[]>();

  private constructor(
    readonly device: GPUDevice,
    gpuAdapter: GPUAdapter,
    /** Keeps Node's Dawn instance alive as long as the context. */
    private readonly owner?: unknown,
  ) {
    this.adapter = summarizeAdapter(gpuAdapter);
    this.hasF16 = device.features.has('shader-f16');
    this.hasSubgroups = device.features.has('subgroups');
    this.hasSubgroupMatrix = device.features.has(SUBGROUP_MATRIX_FEATURE as GPUFeatureName);
    this.hasTimestamps = device.features.has('timestamp-query');
    this.uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    device.lost.then((info) => {
      if (info.reason !== 'destroyed') this.lostError = deviceLost(info.reason, info.message);
      else this.lostError ??= deviceLost('destroyed', 'the context was closed');
    });
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      this.uncaptured.push(ev.error);
    };
  }

  /** Requests a device with the adapter's real limits and the features Graft can use. */
  static async create(adapter: GPUAdapter, owner?: unknown): Promise<GpuContext> {
    const requiredLimits: Record<string, number> = {};
    for (const name of REQUESTED_LIMITS) {
      const v = (adapter.limits as unknown as Record<string, number>)[name];
      if (typeof v === 'number') requiredLimits[name] = v;
    }
    const requiredFeatures: GPUFeatureName[] = [];
    for (const f of ['shader-f16', 'subgroups', 'timestamp-query', SUBGROUP_MATRIX_FEATURE] as GPUFeatureName[]) {
      if (adapter.features.has(f)) requiredFeatures.push(f);
    }
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    return new GpuContext(device, adapter, owner);
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  get isLost(): boolean {
    return this.lostError !== undefined;
  }

  private assertAlive(): void {
    if (this.lostError) throw this.lostError;
  }

  // ---- buffers and tensors ----------------------------------------------------------------------------

  private createBuffer(bytes: number, usage: number, what: string): GPUBuffer {
    this.assertAlive();
    if (bytes > this.device.limits.maxBufferSize) {
      throw limitExceeded(what, bytes, this.device.limits.maxBufferSize);
    }
    this.device.pushErrorScope('out-of-memory');
    const buffer = this.device.createBuffer({ size: bytes, usage, label: what });
    this.bufferId(buffer);
    this.pending.push(this.device.popErrorScope().then((e) => (e ? outOfMemory(what, bytes) : undefined)));
    this.stats.buffersCreated++;
    this.stats.bytesAllocated += bytes;
    this.stats.peakBytesAllocated = Math.max(this.stats.peakBytesAllocated, this.stats.bytesAllocated);
    this.usageChanged();
    return buffer;
  }

  private usageChanged(): void {
    const s = this.stats;
    s.bytesInUse = s.bytesAllocated - this.poolFreeBytes;
    s.peakBytesInUse = Math.max(s.peakBytesInUse, s.bytesInUse);
  }

  /** Starts a new peak window: both peaks drop to the current values. */
  resetPeaks(): void {
    this.usageChanged();
    this.stats.peakBytesAllocated = this.stats.bytesAllocated;
    this.stats.peakBytesInUse = this.stats.bytesInUse;
  }

  private takeFree(list: GPUBuffer[], index: number): GPUBuffer {
    const [b] = list.splice(index, 1);
    this.poolFreeBytes -= b!.size;
    this.usageChanged();
    return b!;
  }

  private putFree(pool: Map<number, GPUBuffer[]>, b: GPUBuffer): void {
    let free = pool.get(b.size);
    if (!free) pool.set(b.size, (free = []));
    free.push(b);
    this.poolFreeBytes += b.size;
    this.usageChanged();
  }

  private acquireBuffer(bytes: number, what: string): GPUBuffer {
    const cls = sizeClass(bytes);
    const free = this.pool.get(cls);
    if (!free?.length) return this.createBuffer(cls, STORAGE_USAGE, what);
    // Take the oldest free buffer, not the last released: the choice then depends only on which buffers are
    // free, so a step that starts with the same free set gets the same buffers as the step before, and its
    // bind groups come from the cache.
    let best = 0;
    for (let i = 1; i < free.length; i++) if (this.bufferId(free[i]!) < this.bufferId(free[best]!)) best = i;
    return this.takeFree(free, best);
  }

  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  /** Called by Tensor.release(). Pooled buffers are reused; others are destroyed after queued work. */
  releaseBuffer(buffer: GPUBuffer, pooled: boolean): void {
    if (pooled) {
      this.putFree(this.pool, buffer);
    } else if (this.encoder) {
      this.releaseAfterFlush.push(buffer);
    } else {
      this.destroyBuffer(buffer);
    }
  }

  private destroyBuffer(buffer: GPUBuffer): void {
    this.stats.bytesAllocated -= buffer.size;
    buffer.destroy();
    this.usageChanged();
  }

  /** Frees every pooled buffer that is not in use. */
  trimPool(): void {
    this.flush();
    for (const pool of [this.pool, this.stagingPool]) {
      for (const list of pool.values()) {
        for (const b of list) {
          this.poolFreeBytes -= b.size;
          this.destroyBuffer(b);
        }
      }
    }
    this.pool.clear();
    this.stagingPool.clear();
    this.bindGroups.clear();
  }

  private checkBindingSize(bytes: number, what: string): void {
    const max = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > max) throw limitExceeded(what, bytes, max);
  }

  /**
   * A tensor whose contents are undefined until written. Temporaries come from the pool; pass
   * `{ persistent: true }` for long-lived tensors (weights, optimizer state) to allocate exactly.
   */
  empty(shape: readonly number[], dtype: DType = 'f32', opts: { persistent?: boolean; label?: string } = {}): Tensor {
    const bytes = Math.max(16, Math.ceil((numel(shape) * DTYPE_BYTES[dtype]) / 16) * 16);
    const what = opts.label ?? `a [${shape.join('×')}] ${dtype} tensor`;
    this.checkBindingSize(bytes, what);
    const buffer = opts.persistent ? this.createBuffer(bytes, STORAGE_USAGE, what) : this.acquireBuffer(bytes, what);
    return new Tensor(this, buffer, shape, dtype, !opts.persistent);
  }

  /** A tensor filled with zeros (the recorded work zeroes it, so it is ordered with other dispatches). */
  zeros(shape: readonly number[], dtype: DType = 'f32', opts: { persistent?: boolean; label?: string } = {}): Tensor {
    const t = this.empty(shape, dtype, opts);
    this.fill(t, 0);
    return t;
  }

  /** Clears a tensor to zero as part of the recorded work. */
  fill(t: Tensor, value: 0): void {
    void value;
    this.endPass();
    this.getEncoder().clearBuffer(t.buffer, 0, t.buffer.size);
  }

  /** A tensor holding `data`. For f16 and bf16 tensors pass the raw bits as a Uint16Array (and the dtype for bf16). */
  upload(
    shape: readonly number[],
    data: Float32Array | Int32Array | Uint32Array | Uint16Array,
    dtype?: DType,
    opts: { persistent?: boolean; label?: string } = {},
  ): Tensor {
    const dt: DType =
      dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : data instanceof Uint16Array ? 'f16' : 'f32');
    if (data.length !== numel(shape)) {
      throw new Error(`upload: ${data.length} values for shape [${shape.join(', ')}]`);
    }
    const t = this.empty(shape, dt, opts);
    this.write(t, data);
    return t;
  }

  /**
   * Overwrites a tensor's contents, ordered with the recorded work: dispatches recorded before see the old
   * contents, those recorded after the new. With work recorded, a small write is a staged copy in the same
   * command buffer (docs/kernels.md, "The GPU context"); otherwise (or when it is large) it is a queue.writeBuffer after
   * submitting what was recorded.
   */
  write(t: Tensor, data: Float32Array | Int32Array | Uint32Array | Uint16Array, elementOffset = 0): void {
    this.assertAlive();
    const bytes = data.byteLength;
    const at = elementOffset * DTYPE_BYTES[t.dtype];
    if (at + bytes > t.buffer.size) throw new Error('write: data does not fit the tensor');
    if (this.encoder && at % 4 === 0 && bytes > 0 && this.stageWrite(t.buffer, at, data)) return;
    this.flush();
    if (bytes % 4 === 0) {
      this.device.queue.writeBuffer(t.buffer, at, data.buffer, data.byteOffset, bytes);
    } else {
      const padded = new Uint8Array(Math.ceil(bytes / 4) * 4);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, bytes));
      this.device.queue.writeBuffer(t.buffer, at, padded);
    }
  }

  /**
   * Copies `data` into an upload chunk and records chunk → `dst` at byte `at` (a multiple of 4; the copy is
   * padded to 4 bytes with zeros, as a direct write is). False when it does not fit the staging budget.
   */
  private stageWrite(dst: GPUBuffer, at: number, data: Float32Array | Int32Array | Uint32Array | Uint16Array): boolean {
    const size = Math.ceil(data.byteLength / 4) * 4;
    if (size > UPLOAD_CHUNK) return false;
    const slot = this.uploads.take(size, UPLOAD_STAGING_MAX / UPLOAD_CHUNK);
    if (!slot) return false;
    const { chunk, offset } = slot;
    chunk.data.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    chunk.data.fill(0, offset + data.byteLength, offset + size);
    this.endPass();
    this.getEncoder().copyBufferToBuffer(chunk.buffer, offset, dst, at, size);
    this.stats.stagedWrites++;
    return true;
  }

  /** Records a copy of `src` into `dst` (whole tensors, or `bytes` from the start). */
  copy(src: Tensor, dst: Tensor, bytes = Math.min(src.byteLength, dst.byteLength)): void {
    this.endPass();
    this.getEncoder().copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, Math.ceil(bytes / 4) * 4);
  }

  // ---- kernels ----------------------------------------------------------------------------------------

  /** Compiles (once) and returns a kernel. Compile errors surface at the next flush or read. */
  kernel(spec: KernelSpec, defines: Defines = {}, enables: readonly WgslEnable[] = []): CompiledKernel {
    this.assertAlive();
    const all = { ...spec.defines, ...defines };
    const key = cacheKey(spec, all, enables);
    const cached = this.kernels.get(key);
    if (cached) return cached;
    const code = buildWgsl(spec, all, enables);
    const entries: GPUBindGroupLayoutEntry[] = spec.bindings.map((b, i) => ({
      binding: i,
      visibility: 4 /* COMPUTE */,
      buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' },
    }));
    if (spec.params?.length) {
      entries.push({ binding: spec.bindings.length, visibility: 4, buffer: { type: 'uniform' } });
    }
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: spec.name });
    const layout = this.device.createBindGroupLayout({ entries, label: spec.name });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entry ?? 'main' },
      label: spec.name,
    });
    this.pending.push(
      this.device.popErrorScope().then((e) => {
        if (!e) return undefined;
        // A kernel that failed to compile must not be served from the cache again.
        this.kernels.delete(key);
        return validation(`kernel ${spec.name} did not compile: ${e.message}`);
      }),
    );
    const k: CompiledKernel = { spec, pipeline, layout, paramBytes: paramsByteLength(spec) };
    this.kernels.set(key, k);
    return k;
  }

  /**
   * Records one dispatch. `bindings` names every binding of the spec; `params` gives every parameter.
   * `workgroups` is the grid; use `grid1d` for element-wise kernels.
   */
  dispatch(
    k: CompiledKernel,
    bindings: Readonly<Record<string, Bindable>>,
    params: Readonly<Record<string, number>>,
    workgroups: readonly [number, number?, number?],
  ): void {
    this.assertAlive();
    const entries: GPUBindGroupEntry[] = k.spec.bindings.map((b, i) => {
      const t = bindings[b.name];
      if (!t) throw new Error(`Kernel ${k.spec.name}: binding ${b.name} missing`);
      return { binding: i, resource: { buffer: t instanceof Tensor ? t.buffer : t } };
    });
    const extra = Object.keys(bindings).filter((n) => !k.spec.bindings.some((b) => b.name === n));
    if (extra.length) throw new Error(`Kernel ${k.spec.name}: unknown bindings ${extra.join(', ')}`);
    if (k.spec.params?.length) {
      const { buffer, offset } = this.uniformSlot(k, params);
      entries.push({ binding: k.spec.bindings.length, resource: { buffer, offset, size: k.paramBytes } });
    }
    const [x, y = 1, z = 1] = workgroups;
    const maxDim = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new Error(`Kernel ${k.spec.name}: grid ${x}×${y}×${z} exceeds ${maxDim} per dimension`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    const group = this.bindGroup(k, entries);
    const pass = this.profiling ? this.timedPass(k.spec.name) : this.getPass();
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiling) this.endPass();
    this.stats.dispatches++;
  }

  // ---- GPU time (timestamp queries) ---------------------------------------------------------------------

  /**
   * Starts timing every dispatch on the GPU: each gets a compute pass of its own with timestamps at its start and
   * end (so a profile costs a little: more passes). Needs timestamp-query (`hasTimestamps`). The results are the
   * same bits: only the pass boundaries move.
   */
  startProfile(): void {
    if (!this.hasTimestamps) throw new Error('GPU timing needs the timestamp-query feature, which this adapter does not offer');
    if (this.profiling) throw new Error('a GPU profile is running already');
    this.endPass();
    this.profiling = { names: [], sets: [], used: 0, reads: [], free: [] };
  }

  /** Whether a profile is running. */
  get profilingActive(): boolean {
    return this.profiling !== undefined;
  }

  /** Ends the profile: submits what is recorded and returns every timed dispatch in recording order. */
  async stopProfile(): Promise<ProfiledDispatch[]> {
    const p = this.profiling;
    if (!p) throw new Error('no GPU profile is running');
    this.flush();
    this.profiling = undefined;
    const out = (await Promise.all(p.reads)).flat();
    for (const set of [...p.free, ...p.sets]) set.destroy();
    return out;
  }

  private timedPass(kernel: string): GPUComputePassEncoder {
    const p = this.profiling!;
    this.endPass();
    const slot = p.names.length;
    const setIndex = Math.floor((2 * slot) / QUERY_SET_SIZE);
    while (p.sets.length <= setIndex) p.sets.push(p.free.pop() ?? this.device.createQuerySet({ type: 'timestamp', count: QUERY_SET_SIZE }));
    const at = (2 * slot) % QUERY_SET_SIZE;
    p.names.push(kernel);
    this.pass = this.getEncoder().beginComputePass({
      timestampWrites: { querySet: p.sets[setIndex]!, beginningOfPassWriteIndex: at, endOfPassWriteIndex: at + 1 },
    });
    return this.pass;
  }

  /** Before a submit: resolves this recording's timestamps into a readback that settles after the submit. */
  private resolveProfile(encoder: GPUCommandEncoder): void {
    const p = this.profiling;
    if (!p || p.names.length === 0) return;
    const names = p.names.splice(0);
    const queries = 2 * names.length;
    const bytes = 8 * queries;
    const resolve = this.device.createBuffer({ size: bytes, usage: 0x200 /* QUERY_RESOLVE */ | 0x4 /* COPY_SRC */, label: 'timestamps' });
    const back = this.device.createBuffer({ size: bytes, usage: 0x1 /* MAP_READ */ | 0x8 /* COPY_DST */, label: 'timestamps readback' });
    for (let i = 0; i < p.sets.length; i++) {
      const count = Math.min(QUERY_SET_SIZE, queries - i * QUERY_SET_SIZE);
      if (count > 0) encoder.resolveQuerySet(p.sets[i]!, 0, count, resolve, 8 * i * QUERY_SET_SIZE);
    }
    encoder.copyBufferToBuffer(resolve, 0, back, 0, bytes);
    // The query sets may be written again by the next recording (the resolve runs first, in queue order).
    p.free.push(...p.sets.splice(0));
    p.reads.push(
      (async () => {
        // Settles after the submit below (it runs synchronously after this returns); mapAsync then waits for the copy.
        await this.device.queue.onSubmittedWorkDone();
        await back.mapAsync(1 /* READ */);
        const t = new BigUint64Array(back.getMappedRange().slice(0));
        back.unmap();
        back.destroy();
        resolve.destroy();
        return names.map((kernel, i) => ({ kernel, ns: t[2 * i + 1]! > t[2 * i]! ? Number(t[2 * i + 1]! - t[2 * i]!) : 0 }));
      })(),
    );
  }

  /**
   * Bind groups are cached by kernel and buffers (and uniform offset): a training step records the same
   * dispatches over the same pooled buffers every time, so a steady-state step creates none. Entries of
   * destroyed buffers are never hit again (buffer ids are not reused); the cache is cleared when it grows large.
   */
  private bindGroup(k: CompiledKernel, entries: GPUBindGroupEntry[]): GPUBindGroup {
    let kernelId = this.kernelIds.get(k);
    if (kernelId === undefined) this.kernelIds.set(k, (kernelId = this.kernelIds.size));
    let key = String(kernelId);
    for (const e of entries) {
      const r = e.resource as GPUBufferBinding;
      key += `|${this.bufferId(r.buffer)}@${r.offset ?? 0}`;
    }
    let group = this.bindGroups.get(key);
    if (!group) {
      if (this.bindGroups.size >= 8192) this.bindGroups.clear();
      group = this.device.createBindGroup({ layout: k.layout, entries });
      this.bindGroups.set(key, group);
      this.stats.bindGroupsCreated++;
    }
    return group;
  }

  private uniformSlot(k: CompiledKernel, params: Readonly<Record<string, number>>): { buffer: GPUBuffer; offset: number } {
    const size = Math.ceil(k.paramBytes / this.uniformAlign) * this.uniformAlign;
    const { chunk, offset } = this.uniforms.take(size)!;
    packParams(k.spec, params, new DataView(chunk.data.buffer), offset);
    return { buffer: chunk.buffer, offset };
  }

  private getEncoder(): GPUCommandEncoder {
    this.assertAlive();
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder();
    }
    return this.encoder;
  }

  private getPass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.getEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
  }

  /** Submits everything recorded so far as one command buffer. */
  flush(): void {
    if (!this.encoder) return;
    this.assertAlive();
    this.endPass();
    this.resolveProfile(this.encoder);
    this.uniforms.flush(this.device.queue);
    this.uploads.flush(this.device.queue);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = undefined;
    this.stats.submits++;
    this.pending.push(this.device.popErrorScope().then((e) => (e ? validation(e.message) : undefined)));
    for (const b of this.releaseAfterFlush.splice(0)) this.destroyBuffer(b);
  }

  /** Throws the first error the device reported for work recorded so far. */
  async checkErrors(): Promise<void> {
    const results = await Promise.all(this.pending.splice(0));
    if (this.lostError) throw this.lostError;
    const first = results.find((e) => e !== undefined);
    if (first) throw first;
    const u = this.uncaptured.splice(0);
    if (u.length) {
      const e = u[0]!;
      throw e instanceof GPUOutOfMemoryError ? outOfMemory('GPU memory', 0) : validation(e.message);
    }
  }

  /** Submits recorded work and waits until the GPU has finished it. */
  async sync(): Promise<void> {
    this.flush();
    const t0 = now();
    try {
      await this.device.queue.onSubmittedWorkDone();
      await this.checkErrors();
    } finally {
      this.stats.waitMs += now() - t0;
    }
  }

  /** Copies a tensor back to the CPU. f16 and bf16 tensors are widened to f32 (exactly). */
  async read(t: Tensor): Promise<Float32Array | Int32Array | Uint32Array>;
  async read(t: Tensor): Promise<Float32Array | Int32Array | Uint32Array> {
    const bytes = Math.ceil(t.byteLength / 4) * 4;
    const cls = sizeClass(bytes);
    const free = this.stagingPool.get(cls);
    const staging = free?.length
      ? this.takeFree(free, free.length - 1)
      : this.createBuffer(cls, 0x1 /* MAP_READ */ | 0x8 /* COPY_DST */, 'a readback buffer');
    this.endPass();
    this.getEncoder().copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
    this.flush();
    this.stats.readbacks++;
    const t0 = now();
    try {
      await this.checkErrors();
      await staging.mapAsync(1 /* READ */);
    } catch (e) {
      this.destroyBuffer(staging);
      if (this.lostError) throw this.lostError;
      throw e;
    } finally {
      this.stats.waitMs += now() - t0;
    }
    const raw = staging.getMappedRange(0, bytes).slice(0, t.byteLength);
    staging.unmap();
    this.putFree(this.stagingPool, staging);
    switch (t.dtype) {
      case 'f32':
        return new Float32Array(raw);
      case 'i32':
        return new Int32Array(raw);
      case 'u32':
        return new Uint32Array(raw);
      case 'f16':
        return f16ArrayToF32(new Uint16Array(raw));
      case 'bf16':
        return bf16ArrayToF32(new Uint16Array(raw));
    }
  }

  /** Reads an f32 tensor as a Float32Array. */
  async readF32(t: Tensor): Promise<Float32Array> {
    const v = await this.read(t);
    if (!(v instanceof Float32Array)) throw new Error(`readF32 on a ${t.dtype} tensor`);
    return v;
  }

  /** Closes the context; every later call fails with a 'device-lost' error saying so. */
  destroy(): void {
    this.lostError ??= deviceLost('destroyed', 'the GPU context was closed');
    this.device.destroy();
    void this.owner;
  }
}

function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}
