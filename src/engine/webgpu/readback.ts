/// <reference types="@webgpu/types" />
/**
 * Submitting recorded work and reading results back: one command encoder per call, the
 * requested buffer ranges copied into one staging buffer (kept and grown) and mapped once. Also
 * counts the process's host <-> device traffic through these paths (the WebGPU sheet and the
 * resident training state), so tests can see which path a step took and what crossed.
 */

const MAP_READ_DST = 0x01 | 0x08; // MAP_READ | COPY_DST (GPUBufferUsage, without needing the globals at import)

/** A float range of a buffer to read back. */
export interface Slice {
  src: GPUBuffer;
  offset: number;
  count: number;
}

/** Host <-> device traffic since the process started (or the last reset). */
export const traffic = { writes: 0, writtenBytes: 0, submits: 0, maps: 0, readBytes: 0 };

export function resetTraffic(): void {
  Object.assign(traffic, { writes: 0, writtenBytes: 0, submits: 0, maps: 0, readBytes: 0 });
}

/** queue.writeBuffer, counted. */
export function upload(device: GPUDevice, buffer: GPUBuffer, data: Float32Array | Int32Array): void {
  // the cast: the browser's DOM typings reject a view typed over SharedArrayBuffer; these views never are
  device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer>);
  traffic.writes++;
  traffic.writtenBytes += data.byteLength;
}

const padded = (bytes: number) => Math.max(16, Math.ceil(bytes / 16) * 16);

export class Readback {
  private staging: GPUBuffer | null = null;
  private stagingBytes = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly what: string,
  ) {}

  private stagingFor(bytes: number): GPUBuffer {
    if (!this.staging || this.stagingBytes < bytes) {
      this.staging?.destroy();
      this.stagingBytes = padded(bytes);
      this.staging = this.device.createBuffer({ label: `${this.what} readback`, size: this.stagingBytes, usage: MAP_READ_DST });
    }
    return this.staging;
  }

  /** Submit `record` (one encoder) without reading anything back; throws the first validation or out-of-memory error. */
  async submit(record: (encoder: GPUCommandEncoder) => void): Promise<void> {
    await this.run(record, []);
  }

  /** Submit `record`, copy the slices into the staging buffer and read them back as Float32Arrays (one mapping). */
  async run(record: (encoder: GPUCommandEncoder) => void, slices: Slice[]): Promise<Float32Array[]> {
    const total = slices.reduce((a, s) => a + s.count, 0);
    this.device.pushErrorScope("out-of-memory");
    this.device.pushErrorScope("validation");
    let thrown: unknown = null;
    let staging: GPUBuffer | null = null;
    try {
      staging = total > 0 ? this.stagingFor(total * 4) : null;
      const encoder = this.device.createCommandEncoder();
      record(encoder);
      let at = 0;
      for (const s of slices) {
        if (s.count > 0) encoder.copyBufferToBuffer(s.src, s.offset * 4, staging!, at * 4, s.count * 4);
        at += s.count;
      }
      this.device.queue.submit([encoder.finish()]);
      traffic.submits++;
    } catch (e) {
      thrown = e;
    }
    const invalid = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    if (thrown) throw thrown;
    const err = invalid ?? oom;
    if (err) throw new Error(`${this.what}: ${err.message.split("\n")[0]}`);
    if (!staging) return slices.map(() => new Float32Array(0));
    await staging.mapAsync(GPUMapMode.READ, 0, padded(total * 4));
    traffic.maps++;
    traffic.readBytes += total * 4;
    const all = new Float32Array(staging.getMappedRange(0, padded(total * 4)));
    const out: Float32Array[] = [];
    let at = 0;
    for (const s of slices) {
      out.push(all.slice(at, at + s.count));
      at += s.count;
    }
    staging.unmap();
    return out;
  }

  dispose(): void {
    this.staging?.destroy();
    this.staging = null;
  }
}
