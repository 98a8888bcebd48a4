/// <reference types="@webgpu/types" />
/**
 * Recorded GPU programs: a list of compute dispatches with their uniforms and buffers, built
 * once (pipelines, one 256-byte uniform slot per dispatch, bind groups) and replayed in one
 * compute pass per call. Every kernel is a `Kernel`: its uniform fields, its storage buffers
 * and a WGSL body; the generated entry point linearises the workgroup grid (`wid`, at most
 * maxComputeWorkgroupsPerDimension along x) and returns past `u.total`.
 */

export type BufferAccess = "read" | "read_write";
export type ElementType = "f32" | "i32";

export interface Kernel {
  name: string;
  /** Uniform fields: u32 unless the name ends in ":f32" (then an f32 named without the suffix). */
  fields: readonly string[];
  /** Storage buffers, bound at 1, 2, ... in this order. */
  buffers: readonly (readonly [name: string, access: BufferAccess, type?: ElementType])[];
  workgroupSize: number;
  /** WGSL declared at module scope (helpers, workgroup memory). */
  helpers?: string;
  /** The entry point's body; `wid` (linear workgroup), `li` (local index) and `u` (uniforms) are in scope. */
  body: string;
}

const SLOT = 256;
const MAX_FIELDS = SLOT / 4 - 2;

/** The module text of a kernel. */
export function kernelSource(k: Kernel): string {
  if (k.fields.length > MAX_FIELDS) throw new Error(`kernel ${k.name}: too many uniform fields`);
  const fields = ["gx", "total", ...k.fields].map((f) => (f.endsWith(":f32") ? `  ${f.slice(0, -4)}: f32,` : `  ${f}: u32,`)).join("\n");
  const bindings = k.buffers
    .map(([name, access, type], i) => `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<${type ?? "f32"}>;`)
    .join("\n");
  return `struct U {\n${fields}\n}\n@group(0) @binding(0) var<uniform> u: U;\n${bindings}\n${k.helpers ?? ""}\n@compute @workgroup_size(${k.workgroupSize})\nfn main(@builtin(workgroup_id) wg3: vec3u, @builtin(local_invocation_index) li: u32) {\n  let wid = wg3.x + wg3.y * u.gx;\n  if (wid >= u.total) { return; }\n${k.body}\n}\n`;
}

/** Compiled pipelines of one device, by kernel name. */
export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  constructor(readonly device: GPUDevice) {}

  get(k: Kernel): GPUComputePipeline {
    let p = this.pipelines.get(k.name);
    if (!p) {
      const module = this.device.createShaderModule({ label: k.name, code: kernelSource(k) });
      p = this.device.createComputePipeline({ label: k.name, layout: "auto", compute: { module, entryPoint: "main" } });
      this.pipelines.set(k.name, p);
    }
    return p;
  }
}

interface Dispatch {
  kernel: Kernel;
  buffers: GPUBuffer[];
  uniforms: ArrayBuffer;
  x: number;
  y: number;
}

/** Uniform values of a dispatch, by field name (floats for ":f32" fields, integers >= 0 otherwise). */
export type Uniforms = Record<string, number>;

export class Program {
  private readonly list: Dispatch[] = [];
  private built: { bindGroups: GPUBindGroup[]; pipelines: GPUComputePipeline[]; uniform: GPUBuffer } | null = null;

  constructor(
    private readonly cache: PipelineCache,
    private readonly maxPerDimension: number,
  ) {}

  get size(): number {
    return this.list.length;
  }

  /** Append a dispatch of `workgroups` workgroups (nothing when 0). */
  add(kernel: Kernel, buffers: GPUBuffer[], uniforms: Uniforms, workgroups: number): void {
    if (this.built) throw new Error("Program.add after build");
    if (workgroups <= 0) return;
    if (buffers.length !== kernel.buffers.length) throw new Error(`kernel ${kernel.name}: ${buffers.length} buffers for ${kernel.buffers.length} bindings`);
    const x = Math.min(workgroups, this.maxPerDimension);
    const y = Math.ceil(workgroups / x);
    if (y > this.maxPerDimension) throw new Error(`kernel ${kernel.name}: ${workgroups} workgroups exceed the device's grid`);
    const data = new ArrayBuffer(SLOT);
    const u32 = new Uint32Array(data);
    const f32 = new Float32Array(data);
    u32[0] = x;
    u32[1] = workgroups;
    kernel.fields.forEach((field, i) => {
      const isFloat = field.endsWith(":f32");
      const name = isFloat ? field.slice(0, -4) : field;
      const v = uniforms[name];
      if (v === undefined) throw new Error(`kernel ${kernel.name}: uniform ${name} missing`);
      if (isFloat) f32[i + 2] = v;
      else {
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`kernel ${kernel.name}: uniform ${name} = ${v} is not a u32`);
        u32[i + 2] = v;
      }
    });
    for (const name of Object.keys(uniforms)) {
      if (!kernel.fields.includes(name) && !kernel.fields.includes(`${name}:f32`)) throw new Error(`kernel ${kernel.name}: unknown uniform ${name}`);
    }
    this.list.push({ kernel, buffers, uniforms: data, x, y });
  }

  /** Create the pipelines, the uniform buffer and the bind groups. */
  build(): void {
    if (this.built) return;
    const device = this.cache.device;
    const uniform = device.createBuffer({ size: Math.max(1, this.list.length) * SLOT, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const all = new Uint8Array(Math.max(1, this.list.length) * SLOT);
    this.list.forEach((d, i) => {
      all.set(new Uint8Array(d.uniforms), i * SLOT);
    });
    device.queue.writeBuffer(uniform, 0, all);
    const pipelines = this.list.map((d) => this.cache.get(d.kernel));
    const bindGroups = this.list.map((d, i) =>
      device.createBindGroup({
        layout: pipelines[i].getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: uniform, offset: i * SLOT, size: SLOT } }, ...d.buffers.map((buffer, j) => ({ binding: j + 1, resource: { buffer } }))],
      }),
    );
    this.built = { bindGroups, pipelines, uniform };
  }

  /** Record every dispatch into one compute pass of `encoder`. */
  encode(encoder: GPUCommandEncoder): void {
    this.build();
    const b = this.built!;
    const pass = encoder.beginComputePass();
    let last: GPUComputePipeline | null = null;
    this.list.forEach((d, i) => {
      if (b.pipelines[i] !== last) {
        pass.setPipeline(b.pipelines[i]);
        last = b.pipelines[i];
      }
      pass.setBindGroup(0, b.bindGroups[i]);
      pass.dispatchWorkgroups(d.x, d.y);
    });
    pass.end();
  }

  dispose(): void {
    this.built?.uniform.destroy();
    this.built = null;
  }
}
