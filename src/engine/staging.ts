// Staging chunks: CPU copies of GPU buffers, filled front to back while work is recorded and written to the GPU
// just before it is submitted (GpuContext.flush). The context keeps two sets: the kernels' parameters (uniform
// buffers) and the uploads staged into the recorded work (copy sources).

export interface StagingChunk {
  buffer: GPUBuffer;
  data: Uint8Array<ArrayBuffer>;
}

export class StagingChunks {
  private readonly chunks: StagingChunk[] = [];
  private current = 0;
  private offset = 0;

  constructor(
    /** Bytes per chunk. */
    readonly chunkSize: number,
    /** Makes a chunk's GPU buffer, the first time the chunk is needed. */
    private readonly create: () => GPUBuffer,
  ) {}

  /**
   * Room for `bytes` (at most chunkSize) at the end of the current chunk, or at the start of the next one when
   * they do not fit; undefined when that would use more than `maxChunks` chunks.
   */
  take(bytes: number, maxChunks = Infinity): { chunk: StagingChunk; offset: number } | undefined {
    if (this.offset + bytes > this.chunkSize) {
      if (this.current + 2 > maxChunks) return undefined;
      this.current++;
      this.offset = 0;
    }
    let chunk = this.chunks[this.current];
    if (!chunk) {
      chunk = { buffer: this.create(), data: new Uint8Array(this.chunkSize) };
      this.chunks.push(chunk);
    }
    const offset = this.offset;
    this.offset += bytes;
    return { chunk, offset };
  }

  /** Writes what each chunk holds into its buffer and starts over (before the recorded work is submitted). */
  flush(queue: GPUQueue): void {
    for (let i = 0; i <= this.current && i < this.chunks.length; i++) {
      const c = this.chunks[i]!;
      const used = i < this.current ? this.chunkSize : this.offset;
      if (used > 0) queue.writeBuffer(c.buffer, 0, c.data, 0, used);
    }
    this.current = 0;
    this.offset = 0;
  }
}
