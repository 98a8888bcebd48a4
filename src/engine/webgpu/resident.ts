/// <reference types="@webgpu/types" />
/**
 * The WebGPU engine's resident training state (a ResidentState, src/engine/sheet-engine.ts):
 * per leaf, the parameters, AdamW moments m and v and a gradient accumulator live in GPU
 * buffers across steps. WebGPU sheets bind the parameters directly and add each micro-batch's
 * gradient to the accumulator in the backward's submission (sheet.ts); the gradient norm is a
 * fixed-order reduction to one float, AdamW one dispatch per leaf with the step's scalars in a
 * small buffer (one write per update), and nothing else crosses to the host until `read`.
 */
import type { NativeForwardResult } from "../native-sheet.ts";
import type { ResidentAdamWArgs, ResidentState, SheetKernel } from "../sheet-engine.ts";
import type { WebGPUContext } from "./device.ts";
import { adamwScalars } from "./host-optim.ts";
import { ADAMW, CHUNK_SUM, HYPER, OPTIM_GROUP, SUM_CHUNK } from "./kernels-optim.ts";
import { AXPY, POINTWISE_GROUP } from "./kernels-pointwise.ts";
import { type PipelineCache, Program } from "./program.ts";
import { Readback, type Slice, upload } from "./readback.ts";
import { type ResidentBackwardArgs, type ResidentForwardArgs, WebGPUSheet } from "./sheet.ts";

const STORAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST
/** Most bytes one `read` maps at a time. */
const READ_BYTES = 256 * 2 ** 20;

let nextId = 0;

/** A reduction recorded once: its program and where its one float lands. */
interface Reduction {
  program: Program;
  result: Slice;
}

export class WebGPUResident implements ResidentState {
  /** Distinguishes the programs sheets record against this state. */
  readonly id = nextId++;
  /** Elements per leaf. */
  readonly sizes: number[];
  /** Per leaf: parameters, moments and the gradient accumulator [sizes[l]]. */
  readonly params: GPUBuffer[];
  readonly m: GPUBuffer[];
  readonly v: GPUBuffer[];
  readonly acc: GPUBuffer[];
  private readonly device: GPUDevice;
  private readonly owned: GPUBuffer[] = [];
  private readonly hyper: GPUBuffer;
  private readonly partA: GPUBuffer;
  private readonly partB: GPUBuffer;
  private readonly readback: Readback;
  private readonly optimiser: Program;
  private readonly squares: Reduction;
  private readonly nonFinite: Reduction;
  private disposed = false;

  constructor(
    private readonly ctx: WebGPUContext,
    private readonly cache: PipelineCache,
    leaves: { params: Float32Array[]; m: Float32Array[]; v: Float32Array[] },
  ) {
    this.device = ctx.device;
    const n = leaves.params.length;
    for (const key of ["m", "v"] as const) {
      const list = leaves[key];
      if (!Array.isArray(list) || list.length !== n || list.some((x, i) => !(x instanceof Float32Array) || x.length !== leaves.params[i].length)) {
        throw new Error(`resident state: ${key} must be one Float32Array per parameter leaf, of its length`);
      }
    }
    this.sizes = leaves.params.map((p) => p.length);
    const max = Math.min(Number(ctx.limits.maxStorageBufferBindingSize), Number(ctx.limits.maxBufferSize));
    const make = (count: number, label: string, from?: Float32Array): GPUBuffer => {
      const size = Math.max(16, Math.ceil((count * 4) / 16) * 16);
      if (size > max) throw new Error(`resident state: ${label} needs ${size} bytes, more than the WebGPU device binds (${max})`);
      const b = this.device.createBuffer({ label, size, usage: STORAGE });
      this.owned.push(b);
      if (from) upload(this.device, b, from);
      return b;
    };
    this.params = this.sizes.map((c, l) => make(c, `resident param ${l}`, leaves.params[l]));
    this.m = this.sizes.map((c, l) => make(c, `resident m ${l}`, leaves.m[l]));
    this.v = this.sizes.map((c, l) => make(c, `resident v ${l}`, leaves.v[l]));
    this.acc = this.sizes.map((c, l) => make(c, `resident gradient ${l}`)); // zero at creation
    this.hyper = make(HYPER.keep + n, "adamw scalars");
    const chunks = this.sizes.reduce((a, c) => a + Math.ceil(c / SUM_CHUNK), 0);
    this.partA = make(Math.max(1, chunks), "partial sums");
    this.partB = make(Math.max(1, Math.ceil(chunks / SUM_CHUNK)), "partial sums'");
    this.readback = new Readback(this.device, "resident state");
    this.optimiser = this.program();
    this.sizes.forEach((count, l) => {
      this.optimiser.add(ADAMW, [this.params[l], this.acc[l], this.m[l], this.v[l], this.hyper], { count, leaf: l }, Math.ceil(count / OPTIM_GROUP));
    });
    this.squares = this.reduction(this.acc, 1);
    this.nonFinite = this.reduction(this.params, 2);
  }

  private program(): Program {
    return new Program(this.cache, Number(this.ctx.limits.maxComputeWorkgroupsPerDimension));
  }

  /**
   * The sum over all leaves of f(x) (CHUNK_SUM mode 1: x^2, 2: non-finite count): each leaf's
   * chunks into partA, then chunks of chunks, alternating buffers, until one value is left.
   */
  private reduction(src: GPUBuffer[], mode: 1 | 2): Reduction {
    const p = this.program();
    let n = 0;
    src.forEach((x, l) => {
      const count = Math.ceil(this.sizes[l] / SUM_CHUNK);
      p.add(CHUNK_SUM, [x, this.partA], { count, n: this.sizes[l], xOff: 0, oOff: n, mode }, Math.ceil(count / OPTIM_GROUP));
      n += count;
    });
    let [from, to] = [this.partA, this.partB];
    while (n > 1) {
      const count = Math.ceil(n / SUM_CHUNK);
      p.add(CHUNK_SUM, [from, to], { count, n, xOff: 0, oOff: 0, mode: 0 }, Math.ceil(count / OPTIM_GROUP));
      n = count;
      [from, to] = [to, from];
    }
    p.build();
    return { program: p, result: { src: from, offset: 0, count: 1 } };
  }

  private check(what: string): void {
    if (this.disposed) throw new Error(`${what}: the resident state was disposed`);
  }

  private sheetOf(kernel: SheetKernel, what: string): WebGPUSheet {
    this.check(what);
    if (!(kernel instanceof WebGPUSheet)) throw new Error(`${what}: a WebGPU resident state runs only WebGPU sheets`);
    return kernel;
  }

  async forward(kernel: SheetKernel, args: ResidentForwardArgs): Promise<NativeForwardResult> {
    return this.sheetOf(kernel, "forward").forwardResident(this, args);
  }

  async backward(kernel: SheetKernel, args: ResidentBackwardArgs): Promise<void> {
    return this.sheetOf(kernel, "backward").backwardResident(this, args);
  }

  async accumulate(grads: Float32Array[]): Promise<void> {
    this.check("accumulate");
    if (grads.length !== this.sizes.length || grads.some((g, l) => !(g instanceof Float32Array) || g.length !== this.sizes[l])) {
      throw new Error("accumulate: grads must be one Float32Array per leaf, of its length");
    }
    const p = this.program();
    const temp = grads.map((g, l) => {
      const b = this.device.createBuffer({ label: `host gradient ${l}`, size: Math.max(16, Math.ceil((g.length * 4) / 16) * 16), usage: STORAGE });
      upload(this.device, b, g);
      p.add(AXPY, [b, b, this.acc[l]], { count: g.length, xOff: 0, yOff: 0, oOff: 0, flags: 1 }, Math.ceil(g.length / POINTWISE_GROUP));
      return b;
    });
    try {
      await this.readback.submit((encoder) => p.encode(encoder));
    } finally {
      p.dispose();
      for (const b of temp) b.destroy();
    }
  }

  async gradSquares(): Promise<number> {
    this.check("gradSquares");
    const [out] = await this.readback.run((encoder) => this.squares.program.encode(encoder), [this.squares.result]);
    return out[0];
  }

  async adamw(args: ResidentAdamWArgs): Promise<void> {
    this.check("adamw");
    const s = adamwScalars(args, this.sizes.length);
    const hyper = new Float32Array(HYPER.keep + this.sizes.length);
    for (const key of ["lr", "beta1", "beta2", "eps", "bc1", "bc2", "scale", "c1", "c2"] as const) hyper[HYPER[key]] = s[key];
    hyper.set(s.keep, HYPER.keep);
    upload(this.device, this.hyper, hyper);
    await this.readback.submit((encoder) => {
      this.optimiser.encode(encoder);
      for (const b of this.acc) encoder.clearBuffer(b);
    });
  }

  async finite(): Promise<boolean> {
    this.check("finite");
    const [out] = await this.readback.run((encoder) => this.nonFinite.program.encode(encoder), [this.nonFinite.result]);
    return out[0] === 0;
  }

  async read(into: { params: Float32Array[]; m: Float32Array[]; v: Float32Array[] }): Promise<void> {
    this.check("read");
    const jobs: [Float32Array, GPUBuffer][] = [];
    for (const key of ["params", "m", "v"] as const) {
      const list = into[key];
      if (list.length !== this.sizes.length || list.some((x, l) => x.length !== this.sizes[l])) throw new Error(`read: ${key} must be one Float32Array per leaf, of its length`);
      list.forEach((x, l) => {
        jobs.push([x, this[key][l]]);
      });
    }
    // as few mappings as fit in READ_BYTES each
    for (let i = 0; i < jobs.length; ) {
      const batch: [Float32Array, GPUBuffer][] = [];
      let bytes = 0;
      while (i < jobs.length && (batch.length === 0 || bytes + jobs[i][0].byteLength <= READ_BYTES)) {
        bytes += jobs[i][0].byteLength;
        batch.push(jobs[i++]);
      }
      const out = await this.readback.run(() => {}, batch.map(([x, src]) => ({ src, offset: 0, count: x.length })));
      batch.forEach(([x], j) => {
        x.set(out[j]);
      });
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of [this.optimiser, this.squares.program, this.nonFinite.program]) p.dispose();
    for (const b of this.owned) b.destroy();
    this.readback.dispose();
  }
}
