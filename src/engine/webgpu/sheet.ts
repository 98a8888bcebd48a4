/// <reference types="@webgpu/types" />
/**
 * The column sheet on WebGPU: the same forward and hand-derived backward as the native kernels
 * (native/sheet_kernels.cc), with the same NativeSheetConfig, parameter leaves and arguments
 * (src/engine/native-sheet.ts), so the training seam can run either (src/engine/sheet-engine.ts).
 *
 * Layout: every tensor in the API's natural layout [B][N][F] in its own GPU buffer; the
 * per-column linears are batched GEMMs over columns (a tied weight is a zero column stride, and
 * then one GEMM over all B N rows). The tape keeps per step what the native one keeps (states,
 * LayerNorm statistics, y, fc1's pre-activation u, q, k, v and with value_proj the attention
 * output); the backward recomputes LayerNorm outputs, GELU(u) and the attention maps. Dense
 * attention stores at most a chunk of batch elements' [H, N, N] maps at a time (chunks sized to
 * stay under the binding limit). The forward and the backward of a batch size are recorded once
 * (pipelines, uniforms, bind groups) and replayed: a call uploads its inputs, submits one compute
 * pass and reads the results back in one mapping. The parameters are the sheet's own buffers,
 * uploaded from host leaves by every forward, or a resident state's (resident.ts: recorded
 * against its buffers, nothing uploaded); with a resident state the backward also adds the
 * gradients to its accumulator in the same submission and reads back only dx0 (and ddrive).
 */
import type { NativeBackwardArgs, NativeForwardArgs, NativeForwardResult, NativeSheetConfig, SheetLeafName } from "../native-sheet.ts";
import type { SheetKernel } from "../sheet-engine.ts";
import type { WebGPUContext } from "./device.ts";
import { GEMM, type GemmShape, gemmUniforms } from "./kernels-gemm.ts";
import { HEAD_MEAN, SPARSE_AV, SPARSE_DA, SPARSE_DQ, SPARSE_GATHER_BACK, SPARSE_SCORES } from "./kernels-attention.ts";
import { ADD_SIGN, AXPY, GELU, POINTWISE_GROUP, ROWSUM } from "./kernels-pointwise.ts";
import { LN_BACKWARD, LN_FORWARD, ROW_ACTIVITY, SOFTMAX, SOFTMAX_BACKWARD } from "./kernels-rows.ts";
import { SheetLayout } from "./layout.ts";
import { type PipelineCache, Program } from "./program.ts";
import { Readback, type Slice, upload } from "./readback.ts";
import type { WebGPUResident } from "./resident.ts";

/** The forward's arguments when the parameters come from a resident state, and the backward's when the gradients go there. */
export type ResidentForwardArgs = Omit<NativeForwardArgs, "params">;
export type ResidentBackwardArgs = Omit<NativeBackwardArgs, "grads">;

/**
 * The parameter buffers a recording binds, by leaf: the sheet's own (uploaded from host leaves
 * by every forward, key "h") or a resident state's (key "r<id>").
 */
interface ParamSource {
  key: string;
  params: Map<SheetLeafName, GPUBuffer>;
  resident: WebGPUResident | null;
}

/** Checks of a config, with the native addon's messages. */
export function validateSheetConfig(c: NativeSheetConfig): void {
  const int = (key: keyof NativeSheetConfig, lo: number) => {
    const v = c[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < lo) throw new Error(`createSheet: config.${key} must be an integer >= ${lo}${typeof v === "number" ? ` (got ${v})` : ""}`);
  };
  for (const key of ["batch", "columns", "dim", "qk_dim", "heads", "mlp_dim", "depth"] as const) int(key, 1);
  int("sources", 0);
  for (const key of ["recurrent", "untie_norm", "untie_attn", "untie_mlp", "value_proj", "attn_bias", "skip_attn", "inject_every"] as const) {
    if (typeof c[key] !== "boolean") throw new Error(`createSheet: config.${key} must be a boolean`);
  }
  for (const key of ["attn_scale", "norm_eps"] as const) {
    const v = c[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new Error(`createSheet: config.${key} must be a finite number > 0`);
  }
  if (c.dim % c.heads !== 0) throw new Error(`createSheet: config.dim (${c.dim}) must be divisible by config.heads (${c.heads})`);
  if (c.sources > c.columns) throw new Error(`createSheet: config.sources (${c.sources}) must be at most config.columns (${c.columns})`);
}

/** Every kernel the sheet records (for the device-limit check). */
const KERNELS = [GEMM, HEAD_MEAN, SPARSE_AV, SPARSE_DA, SPARSE_DQ, SPARSE_GATHER_BACK, SPARSE_SCORES, ADD_SIGN, AXPY, GELU, ROWSUM, LN_BACKWARD, LN_FORWARD, ROW_ACTIVITY, SOFTMAX, SOFTMAX_BACKWARD];

/** Throw naming the first device limit the kernels exceed (compatibility-mode devices can be small). */
export function checkLimits(limits: GPUSupportedLimits): void {
  const buffers = Math.max(...KERNELS.map((k) => k.buffers.length));
  const threads = Math.max(...KERNELS.map((k) => k.workgroupSize));
  const need: [keyof GPUSupportedLimits, number][] = [
    ["maxStorageBuffersPerShaderStage", buffers],
    ["maxComputeInvocationsPerWorkgroup", threads],
    ["maxComputeWorkgroupSizeX", threads],
  ];
  for (const [key, value] of need) {
    const have = Number(limits[key]);
    if (have < value) throw new Error(`createSheet: the WebGPU device's ${key} is ${have}; the sheet's kernels need ${value}`);
  }
}

const STORAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST (GPUBufferUsage, without needing the globals at import)

/** Options of a WebGPU sheet beyond the shared config. */
export interface WebGPUSheetOptions {
  /**
   * Most bytes of attention maps [chunk, H, N, W] held at once (default 256 MiB, and never more
   * than the device binds): the batch is processed in chunks of as many elements as fit.
   */
  mapBytes?: number;
}

export class WebGPUSheet implements SheetKernel {
  private readonly device: GPUDevice;
  private readonly L: SheetLayout;
  private readonly Bmax: number;
  private readonly R: number; // rows Bmax * N (stat buffer stride)
  private readonly chunk: number; // batch elements per attention chunk
  private bytes = 0;
  private readonly owned: GPUBuffer[] = [];
  private disposed = false;
  private busy = false;
  private tape = false;
  /** The parameters the taped forward read (the backward must read the same). */
  private tapeSource: ParamSource | null = null;
  /** The connectivity last uploaded (uploaded again only when it changes). */
  private lastIdx: Int32Array | null = null;
  private lastBatch = 0;
  private hasWiring = false;

  // parameters (the set the recording in progress binds: own or resident) and gradients, by leaf
  private readonly own: ParamSource = { key: "h", params: new Map(), resident: null };
  private residentSource: ParamSource | null = null;
  private P = this.own.params;
  private readonly G = new Map<SheetLeafName, GPUBuffer>();
  // tape
  private readonly xs: GPUBuffer[];
  private readonly xin: GPUBuffer[];
  private readonly stat: GPUBuffer[];
  private readonly yy: GPUBuffer[];
  private readonly outl: GPUBuffer[];
  private readonly uu: GPUBuffer[];
  private readonly qn: GPUBuffer[];
  private readonly kn: GPUBuffer[];
  private readonly vn: GPUBuffer[];
  private readonly drive: GPUBuffer | null;
  // scratch
  private readonly hD: GPUBuffer;
  private readonly hD2: GPUBuffer;
  private readonly gM: GPUBuffer;
  private readonly dM: GPUBuffer;
  private readonly outn: GPUBuffer;
  private readonly dst: GPUBuffer;
  private readonly dy: GPUBuffer;
  private readonly dout: GPUBuffer;
  private readonly pw: GPUBuffer;
  private readonly dq: GPUBuffer;
  private readonly dk: GPUBuffer;
  private readonly dv: GPUBuffer;
  private readonly ddrv: GPUBuffer | null;
  private readonly attA: GPUBuffer;
  private readonly attG: GPUBuffer;
  private readonly amean: GPUBuffer;
  private readonly activity: GPUBuffer;
  private readonly wir: GPUBuffer;
  private readonly scalars: GPUBuffer;
  private readonly idx: GPUBuffer;
  private readonly revStart: GPUBuffer;
  private readonly revList: GPUBuffer;
  private readonly dummy: GPUBuffer;
  private attnOut: GPUBuffer | null = null;
  private readonly readback: Readback;
  private readonly programs = new Map<string, Program>();

  constructor(
    private readonly ctx: WebGPUContext,
    private readonly cache: PipelineCache,
    readonly config: NativeSheetConfig,
    options: WebGPUSheetOptions = {},
  ) {
    validateSheetConfig(config);
    checkLimits(ctx.limits);
    this.device = ctx.device;
    this.readback = new Readback(ctx.device, "webgpu sheet");
    this.L = new SheetLayout(config);
    this.Bmax = config.batch;
    const L = this.L;
    const B = this.Bmax;
    const { N, D, HQ, M, S, W, H } = L;
    this.R = B * N;
    const maxBinding = Math.min(Number(ctx.limits.maxStorageBufferBindingSize), Number(ctx.limits.maxBufferSize));
    const mapElems = H * N * W;
    this.chunk = Math.max(1, Math.min(B, Math.floor(Math.min(maxBinding, options.mapBytes ?? 256 * 2 ** 20) / 4 / mapElems)));
    if (mapElems * 4 > maxBinding) throw new Error(`createSheet: one attention map [${H}, ${N}, ${W}] needs ${mapElems * 4} bytes, more than the WebGPU device binds (${maxBinding})`);
    const f = (count: number, label: string): GPUBuffer => this.buffer(count * 4, label, maxBinding);
    for (const leaf of L.leaves) {
      this.own.params.set(leaf, f(L.size(leaf), `param ${leaf}`));
      this.G.set(leaf, f(L.size(leaf), `grad ${leaf}`));
    }
    const nd = B * N * D;
    const steps = (count: number, label: string, n = S) => Array.from({ length: n }, (_, s) => f(count, `${label}[${s}]`));
    this.xs = steps(nd, "xs", S + 1);
    this.xin = config.inject_every ? [this.xs[0], ...steps(nd, "xin", S - 1)] : this.xs.slice(0, S);
    this.stat = steps(4 * this.R, "stat");
    this.yy = steps(nd, "y");
    this.outl = config.value_proj ? steps(nd, "out") : [];
    this.uu = steps(B * N * M, "u");
    this.qn = steps(B * N * HQ, "q");
    this.kn = steps(B * N * HQ, "k");
    this.vn = steps(nd, "v");
    this.drive = config.inject_every ? f(nd, "drive") : null;
    this.hD = f(nd, "h");
    this.hD2 = f(nd, "dh");
    this.gM = f(B * N * M, "gelu");
    this.dM = f(B * N * M, "du");
    this.outn = f(nd, "attention output");
    this.dst = f(nd, "dstate");
    this.dy = f(nd, "dy");
    this.dout = f(nd, "dout");
    this.pw = f(nd, "dh xhat");
    this.dq = f(B * N * HQ, "dq");
    this.dk = f(B * N * HQ, "dk");
    this.dv = f(nd, "dv");
    this.ddrv = config.inject_every ? f(nd, "ddrive") : null;
    this.attA = f(this.chunk * mapElems, "attention maps");
    this.attG = f(this.chunk * mapElems, "attention cotangents");
    this.amean = f(N * W, "attention sum");
    this.activity = f(S * B * N * 2, "activity");
    this.wir = f(N * W, "wiring weights");
    this.scalars = f(4, "scalars");
    this.idx = f(L.sparse ? N * L.K : 1, "connectivity");
    this.revStart = f(L.sparse ? N + 1 : 1, "reverse connectivity starts");
    this.revList = f(L.sparse ? N * L.K : 1, "reverse connectivity");
    this.dummy = f(4, "dummy");
  }

  private buffer(bytes: number, label: string, max: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (size > max) throw new Error(`createSheet: the buffer ${label} needs ${size} bytes, more than the WebGPU device binds (${max}); use a smaller batch or sheet`);
    const b = this.device.createBuffer({ label, size, usage: STORAGE });
    this.owned.push(b);
    this.bytes += size;
    return b;
  }

  info(): { simd: string; threads: number; bytes: number } {
    return { simd: `webgpu (${this.ctx.description})`, threads: 1, bytes: this.bytes };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.programs.values()) p.dispose();
    this.programs.clear();
    for (const b of this.owned) b.destroy();
    this.attnOut?.destroy();
    this.readback.dispose();
  }

  // ---------------------------------------------------------------------------------------------
  // Recording helpers

  private program(): Program {
    return new Program(this.cache, Number(this.ctx.limits.maxComputeWorkgroupsPerDimension));
  }

  private gemm(p: Program, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, shape: GemmShape, bias: GPUBuffer | null = null): void {
    const { uniforms, workgroups } = gemmUniforms(shape);
    p.add(GEMM, [a, b, c, bias ?? this.dummy], uniforms, workgroups);
  }

  private pointwise(count: number): number {
    return Math.ceil(count / POINTWISE_GROUP);
  }

  /** out = x (+ y) (accumulate into out): count elements from offset 0. */
  private axpy(p: Program, x: GPUBuffer, out: GPUBuffer, count: number, opts: { y?: GPUBuffer; acc?: boolean; zero?: boolean } = {}): void {
    const flags = (opts.acc ? 1 : 0) | (opts.y ? 2 : 0) | (opts.zero ? 4 : 0);
    p.add(AXPY, [x, opts.y ?? this.dummy, out], { count, xOff: 0, yOff: 0, oOff: 0, flags }, this.pointwise(count));
  }

  /** Y[b, n, :OUT] (+)= W_n X[b, n, :IN] (+ bias_n): the column linear of leaf `w` at step s. */
  private linear(p: Program, B: number, s: number, x: GPUBuffer, w: SheetLeafName, bias: SheetLeafName | null, y: GPUBuffer, IN: number, OUT: number, accumulate = false): void {
    const { L } = this;
    const N = L.N;
    const wOff = L.stepOffset(w, s);
    const biasSpec = bias ? { off: L.stepOffset(bias, s), z1: L.columnStride(bias) } : null;
    const biasBuf = bias ? this.P.get(bias)! : null;
    if (L.untied(w)) {
      this.gemm(p, x, this.P.get(w)!, y, { M: B, P: OUT, K: IN, Z1: N, a: { z1: IN, r: N * IN, c: 1 }, b: { off: wOff, z1: OUT * IN, r: 1, c: IN }, c: { z1: OUT, r: N * OUT, c: 1 }, accumulate, bias: biasSpec }, biasBuf);
    } else {
      this.gemm(p, x, this.P.get(w)!, y, { M: B * N, P: OUT, K: IN, a: { r: IN, c: 1 }, b: { off: wOff, r: 1, c: IN }, c: { r: OUT, c: 1 }, accumulate, bias: biasSpec }, biasBuf);
    }
  }

  /** dX[b, n, :IN] (+)= W_n^T dY[b, n, :OUT]. */
  private linearInputGrad(p: Program, B: number, s: number, dy: GPUBuffer, w: SheetLeafName, dx: GPUBuffer, IN: number, OUT: number, accumulate: boolean): void {
    const { L } = this;
    const N = L.N;
    const wOff = L.stepOffset(w, s);
    if (L.untied(w)) {
      this.gemm(p, dy, this.P.get(w)!, dx, { M: B, P: IN, K: OUT, Z1: N, a: { z1: OUT, r: N * OUT, c: 1 }, b: { off: wOff, z1: OUT * IN, r: IN, c: 1 }, c: { z1: IN, r: N * IN, c: 1 }, accumulate });
    } else {
      this.gemm(p, dy, this.P.get(w)!, dx, { M: B * N, P: IN, K: OUT, a: { r: OUT, c: 1 }, b: { off: wOff, r: IN, c: 1 }, c: { r: IN, c: 1 }, accumulate });
    }
  }

  /** dW_n += sum_b dY[b, n, :OUT] X[b, n, :IN]^T (a shared leaf: summed over columns too). */
  private linearWeightGrad(p: Program, B: number, s: number, dy: GPUBuffer, x: GPUBuffer, w: SheetLeafName, IN: number, OUT: number): void {
    const { L } = this;
    const N = L.N;
    const off = L.stepOffset(w, s);
    if (L.untied(w)) {
      this.gemm(p, dy, x, this.G.get(w)!, { M: OUT, P: IN, K: B, Z1: N, a: { z1: OUT, r: 1, c: N * OUT }, b: { z1: IN, r: N * IN, c: 1 }, c: { off, z1: OUT * IN, r: IN, c: 1 }, accumulate: true });
    } else {
      this.gemm(p, dy, x, this.G.get(w)!, { M: OUT, P: IN, K: B * N, a: { r: 1, c: OUT }, b: { r: IN, c: 1 }, c: { off, r: IN, c: 1 }, accumulate: true });
    }
  }

  /** g[leaf] += sum over the batch (and columns, for a shared leaf) of x[b, n, :F]. */
  private rowGrad(p: Program, B: number, s: number, x: GPUBuffer, leaf: SheetLeafName, F: number): void {
    const { L } = this;
    const N = L.N;
    const oOff = L.stepOffset(leaf, s);
    const u = L.untied(leaf)
      ? { count: N * F, F, R: B, xOff: 0, xZ: F, xR: N * F, oOff, oZ: F, flags: 1 }
      : { count: F, F, R: B * N, xOff: 0, xZ: 0, xR: F, oOff, oZ: 0, flags: 1 };
    p.add(ROWSUM, [x, this.G.get(leaf)!], u, this.pointwise(u.count));
  }

  /** LayerNorm `which` (1 or 2) of step s: stats computed (mode 0) or read (mode 1). */
  private layerNorm(p: Program, B: number, s: number, which: 1 | 2, x: GPUBuffer, h: GPUBuffer, mode: 0 | 1): void {
    const { L } = this;
    const w: SheetLeafName = which === 1 ? "norm1.weight" : "norm2.weight";
    const b: SheetLeafName = which === 1 ? "norm1.bias" : "norm2.bias";
    const base = which === 1 ? 0 : 2 * this.R;
    p.add(
      LN_FORWARD,
      [x, this.P.get(w)!, this.P.get(b)!, h, this.stat[s]],
      { N: L.N, D: L.D, xOff: 0, hOff: 0, wOff: L.stepOffset(w, s), wN: L.columnStride(w), muOff: base, rsOff: base + this.R, mode, eps: this.config.norm_eps },
      B * L.N,
    );
  }

  private layerNormBackward(p: Program, B: number, s: number, which: 1 | 2, dh: GPUBuffer, x: GPUBuffer, dx: GPUBuffer): void {
    const { L } = this;
    const w: SheetLeafName = which === 1 ? "norm1.weight" : "norm2.weight";
    const b: SheetLeafName = which === 1 ? "norm1.bias" : "norm2.bias";
    const base = which === 1 ? 0 : 2 * this.R;
    p.add(LN_BACKWARD, [dh, x, this.stat[s], this.P.get(w)!, dx, this.pw], { N: L.N, D: L.D, xOff: 0, wOff: L.stepOffset(w, s), wN: L.columnStride(w), muOff: base, rsOff: base + this.R }, B * L.N);
    this.rowGrad(p, B, s, this.pw, w, L.D);
    this.rowGrad(p, B, s, dh, b, L.D);
  }

  private chunks(B: number): [number, number][] {
    const out: [number, number][] = [];
    for (let b0 = 0; b0 < B; b0 += this.chunk) out.push([b0, Math.min(this.chunk, B - b0)]);
    return out;
  }

  private sparseUniforms(count: number, b0: number) {
    const { L } = this;
    return { count, N: L.N, K: L.K, H: L.H, QK: L.QK, dh: L.dh, D: L.D, HQ: L.HQ, b0, scale: this.config.attn_scale };
  }

  /** The maps of one chunk into attA: scores, bias, softmax. */
  private attentionMaps(p: Program, s: number, b0: number, bc: number): void {
    const { L, config } = this;
    const { N, H, HQ, QK, W } = L;
    if (!L.sparse) {
      this.gemm(p, this.qn[s], this.kn[s], this.attA, {
        M: N, P: N, K: QK, Z1: bc, Z2: H, alpha: config.attn_scale,
        a: { off: b0 * N * HQ, z1: N * HQ, z2: QK, r: HQ, c: 1 },
        b: { off: b0 * N * HQ, z1: N * HQ, z2: QK, r: 1, c: HQ },
        c: { z1: H * N * N, z2: N * N, r: N, c: 1 },
      });
    } else {
      const count = bc * H * N * L.K;
      p.add(SPARSE_SCORES, [this.qn[s], this.kn[s], this.idx, this.attA], this.sparseUniforms(count, b0), this.pointwise(count));
    }
    const bias = config.attn_bias ? this.P.get("attn.attn_bias")! : this.dummy;
    p.add(SOFTMAX, [this.attA, bias], { N, W, sOff: 0, bOff: config.attn_bias ? L.stepOffset("attn.attn_bias", s) : 0, hasBias: config.attn_bias ? 1 : 0 }, bc * H * N);
  }

  // ---------------------------------------------------------------------------------------------
  // Forward

  private forwardProgram(B: number, withAttn: boolean, source: ParamSource): Program {
    const key = `f${B}:${withAttn ? 1 : 0}:${source.key}`;
    const cached = this.programs.get(key);
    if (cached) return cached;
    const p = this.program();
    this.P = source.params;
    const { L, config } = this;
    const { N, D, HQ, M, S, H, W, dh } = L;
    const nd = B * N * D;
    for (let s = 0; s < S; s++) {
      const xin = this.xin[s];
      if (config.inject_every && s > 0) this.axpy(p, this.xs[s], xin, nd, { y: this.drive! });
      const h = config.value_proj ? this.hD : this.vn[s];
      this.layerNorm(p, B, s, 1, xin, h, 0);
      this.linear(p, B, s, h, "attn.q.weight", "attn.q.bias", this.qn[s], D, HQ);
      this.linear(p, B, s, h, "attn.k.weight", null, this.kn[s], D, HQ);
      if (config.value_proj) this.linear(p, B, s, h, "attn.v.weight", "attn.v.bias", this.vn[s], D, D);
      const o = config.value_proj ? this.outl[s] : this.outn;
      for (const [b0, bc] of this.chunks(B)) {
        this.attentionMaps(p, s, b0, bc);
        p.add(HEAD_MEAN, [this.attA, withAttn ? this.attnOut! : this.dummy, this.amean], { NW: N * W, H, Bc: bc, b0, S, s, hasOut: withAttn ? 1 : 0, invH: 1 / H }, this.pointwise(N * W));
        if (!L.sparse) {
          this.gemm(p, this.attA, this.vn[s], o, {
            M: N, P: dh, K: N, Z1: bc, Z2: H,
            a: { z1: H * N * N, z2: N * N, r: N, c: 1 },
            b: { off: b0 * N * D, z1: N * D, z2: dh, r: D, c: 1 },
            c: { off: b0 * N * D, z1: N * D, z2: dh, r: D, c: 1 },
          });
        } else {
          const count = bc * N * D;
          p.add(SPARSE_AV, [this.attA, this.vn[s], this.idx, o], this.sparseUniforms(count, b0), this.pointwise(count));
        }
      }
      const y = this.yy[s];
      if (config.value_proj) {
        if (config.skip_attn) this.axpy(p, xin, y, nd);
        this.linear(p, B, s, o, "attn.o.weight", "attn.o.bias", y, D, D, config.skip_attn);
      } else if (config.skip_attn) this.axpy(p, xin, y, nd, { y: o });
      else this.axpy(p, o, y, nd);
      this.layerNorm(p, B, s, 2, y, this.hD, 0);
      this.linear(p, B, s, this.hD, "mlp.fc1.weight", "mlp.fc1.bias", this.uu[s], D, M);
      p.add(GELU, [this.uu[s], this.gM], { count: B * N * M, mode: 0 }, this.pointwise(B * N * M));
      this.axpy(p, y, this.xs[s + 1], nd);
      this.linear(p, B, s, this.gM, "mlp.fc2.weight", null, this.xs[s + 1], M, D, true);
      p.add(ROW_ACTIVITY, [this.xs[s + 1], this.activity], { D, oOff: s * B * N * 2 }, B * N);
    }
    p.build();
    this.programs.set(key, p);
    return p;
  }

  /** Upload the host parameters (own source only) and, when it changed, the connectivity with its reverse lists. */
  private uploadCommon(params: Float32Array[] | null, connectivity: Int32Array | null): void {
    if (params) {
      this.L.leaves.forEach((leaf, i) => {
        upload(this.device, this.own.params.get(leaf)!, params[i]);
      });
    }
    if (this.L.sparse) {
      const idx = connectivity!;
      const last = this.lastIdx;
      if (last && last.length === idx.length && last.every((x, p) => x === idx[p])) return;
      this.lastIdx = idx.slice();
      const { N, K } = this.L;
      upload(this.device, this.idx, idx);
      const start = new Int32Array(N + 1);
      for (let p = 0; p < N * K; p++) start[idx[p] + 1]++;
      for (let j = 0; j < N; j++) start[j + 1] += start[j];
      const fill = start.slice(0, N);
      const list = new Int32Array(N * K);
      for (let p = 0; p < N * K; p++) list[fill[idx[p]]++] = p; // by source, then by i (p ascending)
      upload(this.device, this.revStart, start);
      upload(this.device, this.revList, list);
    }
  }

  /** The source binding a resident state's parameters (programs of an earlier resident state are dropped). */
  private sourceOf(state: WebGPUResident): ParamSource {
    const current = this.residentSource;
    if (current?.resident === state) return current;
    const { L } = this;
    if (state.sizes.length !== L.leaves.length || L.leaves.some((leaf, i) => state.sizes[i] !== L.size(leaf))) {
      throw new Error(`webgpu sheet: the resident state's leaves (${state.sizes.join(", ")}) are not this sheet's (${L.leaves.map((l) => L.size(l)).join(", ")})`);
    }
    if (current) {
      const old = `:${current.key}`;
      for (const [key, p] of this.programs) {
        if (key.endsWith(old)) {
          p.dispose();
          this.programs.delete(key);
        }
      }
    }
    this.residentSource = { key: `r${state.id}`, params: new Map(L.leaves.map((leaf, i) => [leaf, state.params[i]])), resident: state };
    return this.residentSource;
  }

  private enter(what: string): void {
    if (this.disposed) throw new Error(`${what}: the sheet was disposed`);
    if (this.busy) throw new Error(`${what}: another call on this sheet is still running (await it first)`);
    this.busy = true;
  }

  async forward(args: NativeForwardArgs): Promise<NativeForwardResult> {
    this.enter("forward");
    try {
      this.checkParams(args.params);
      return await this.forwardImpl(args, args.params, this.own);
    } finally {
      this.busy = false;
    }
  }

  /** The forward reading a resident state's parameters (nothing uploaded but the inputs). Use through WebGPUResident.forward. */
  async forwardResident(state: WebGPUResident, args: ResidentForwardArgs): Promise<NativeForwardResult> {
    this.enter("forward");
    try {
      return await this.forwardImpl(args, null, this.sourceOf(state));
    } finally {
      this.busy = false;
    }
  }

  private checkParams(params: Float32Array[]): void {
    const { L } = this;
    if (!Array.isArray(params) || params.length !== L.leaves.length) throw new Error(`forward: params has ${params?.length} arrays, expected ${L.leaves.length}`);
    L.leaves.forEach((leaf, i) => {
      const a = params[i];
      if (!(a instanceof Float32Array) || a.length !== L.size(leaf)) throw new Error(`forward: params[${i}] (${leaf}) must be a Float32Array of ${L.size(leaf)} values`);
      finite(a, `forward: params[${i}] (${leaf})`);
    });
  }

  private checkForward(args: ResidentForwardArgs): void {
    const { L, config } = this;
    const B = args.batch;
    if (!Number.isInteger(B) || B < 1 || B > config.batch) throw new Error(`forward: batch must be an integer from 1 to config.batch = ${config.batch}`);
    const nd = B * L.N * L.D;
    const vec = (a: Float32Array | null | undefined, len: number, what: string) => {
      if (!(a instanceof Float32Array)) throw new Error(`forward: ${what} must be a Float32Array of ${len} values`);
      if (a.length !== len) throw new Error(`forward: ${what} has ${a.length} values, expected ${len}`);
      finite(a, `forward: ${what}`);
    };
    vec(args.x0, nd, "x0");
    if (config.inject_every) {
      if (!args.drive) throw new Error("forward: drive is required with config.inject_every");
      vec(args.drive, nd, "drive");
    }
    if (args.wiringWeights) vec(args.wiringWeights, L.N * L.W, "wiringWeights");
    if (args.attn && args.attn.length !== B * L.S * L.N * L.W) throw new Error(`forward: attn has ${args.attn.length} values, expected ${B * L.S * L.N * L.W}`);
    if (args.xOut && args.xOut.length !== nd) throw new Error(`forward: xOut has ${args.xOut.length} values, expected ${nd}`);
    if (L.sparse) {
      const idx = args.connectivity;
      if (!(idx instanceof Int32Array) || idx.length !== L.N * L.K) throw new Error(`forward: connectivity must be an Int32Array [${L.N}, ${L.K}]`);
      for (let p = 0; p < idx.length; p++) {
        if (idx[p] < 0 || idx[p] >= L.N) throw new Error(`forward: connectivity[${p}] = ${idx[p]} (row ${Math.floor(p / L.K)}) is outside 0..${L.N - 1}`);
      }
    }
  }

  private async forwardImpl(args: ResidentForwardArgs, params: Float32Array[] | null, source: ParamSource): Promise<NativeForwardResult> {
    this.checkForward(args);
    const { L, config } = this;
    const B = args.batch;
    const { N, D, S, W } = L;
    const withAttn = args.attn != null;
    if (withAttn && !this.attnOut) {
      const bytes = Math.max(16, Math.ceil((this.Bmax * S * N * W * 4) / 16) * 16);
      this.attnOut = this.device.createBuffer({ label: "attention out", size: bytes, usage: STORAGE });
    }
    this.uploadCommon(params, args.connectivity);
    upload(this.device, this.xs[0], args.x0);
    if (config.inject_every) upload(this.device, this.drive!, args.drive!);
    this.hasWiring = args.wiringWeights != null;
    if (args.wiringWeights) upload(this.device, this.wir, args.wiringWeights);
    this.tape = false;
    this.tapeSource = null;
    const slices: Slice[] = [
      { src: this.xs[S], offset: 0, count: B * N * D },
      { src: this.amean, offset: 0, count: N * W },
      { src: this.activity, offset: 0, count: S * B * N * 2 },
    ];
    if (withAttn) slices.push({ src: this.attnOut!, offset: 0, count: B * S * N * W });
    const [x, amean, activity, attn] = await this.readback.run((encoder) => {
      encoder.clearBuffer(this.amean);
      this.forwardProgram(B, withAttn, source).encode(encoder);
    }, slices);
    // host reductions, as the native forward: attnMean, wiring cost, L1 and Hoyer in double
    const attnMean = new Float32Array(N * W);
    const inv = Math.fround(1 / (S * B));
    let wire = 0;
    for (let e = 0; e < N * W; e++) {
      attnMean[e] = amean[e] * inv;
      if (args.wiringWeights) wire += attnMean[e] * args.wiringWeights[e];
    }
    let l1 = 0;
    let hoyer = 0;
    const sqd = Math.sqrt(D);
    const den = Math.max(sqd - 1, 1e-12);
    for (let s = 0; s < S; s++) {
      let a = 0;
      let h = 0;
      for (let r = 0; r < B * N; r++) {
        const a1 = activity[(s * B * N + r) * 2];
        const a2 = activity[(s * B * N + r) * 2 + 1];
        a += a1;
        h += (sqd - a1 / Math.sqrt(a2 + 1e-12)) / den;
      }
      l1 += a / (B * N * D);
      hoyer += h / (B * N);
    }
    if (withAttn) args.attn!.set(attn);
    let xOut = x;
    if (args.xOut) {
      args.xOut.set(x);
      xOut = args.xOut;
    }
    this.tape = args.train;
    this.tapeSource = args.train ? source : null;
    this.lastBatch = B;
    return { x: xOut, wiring: args.wiringWeights ? wire / N : 0, l1: l1 / S, hoyer: hoyer / S, attnMean };
  }

  // ---------------------------------------------------------------------------------------------
  // Backward

  private backwardProgram(B: number, source: ParamSource): Program {
    const key = `b${B}:${source.key}`;
    const cached = this.programs.get(key);
    if (cached) return cached;
    const p = this.program();
    this.P = source.params;
    const { L, config } = this;
    const { N, D, HQ, M, S, H, W, QK, dh } = L;
    const nd = B * N * D;
    const dst = this.dst;
    p.add(ADD_SIGN, [this.xs[S], dst, this.scalars], { count: nd, xOff: 0 }, this.pointwise(nd));
    for (let s = S - 1; s >= 0; s--) {
      const xin = this.xin[s];
      // MLP half: dst is the cotangent of xs[s + 1]
      p.add(GELU, [this.uu[s], this.gM], { count: B * N * M, mode: 0 }, this.pointwise(B * N * M));
      this.linearWeightGrad(p, B, s, dst, this.gM, "mlp.fc2.weight", M, D);
      this.linearInputGrad(p, B, s, dst, "mlp.fc2.weight", this.dM, M, D, false);
      p.add(GELU, [this.uu[s], this.dM], { count: B * N * M, mode: 1 }, this.pointwise(B * N * M));
      this.rowGrad(p, B, s, this.dM, "mlp.fc1.bias", M);
      this.layerNorm(p, B, s, 2, this.yy[s], this.hD, 1);
      this.linearWeightGrad(p, B, s, this.dM, this.hD, "mlp.fc1.weight", D, M);
      this.linearInputGrad(p, B, s, this.dM, "mlp.fc1.weight", this.hD2, D, M, false);
      this.axpy(p, dst, this.dy, nd);
      this.layerNormBackward(p, B, s, 2, this.hD2, this.yy[s], this.dy);
      let dout = this.dy;
      if (config.value_proj) {
        this.linearWeightGrad(p, B, s, this.dy, this.outl[s], "attn.o.weight", D, D);
        this.rowGrad(p, B, s, this.dy, "attn.o.bias", D);
        this.linearInputGrad(p, B, s, this.dy, "attn.o.weight", this.dout, D, D, false);
        dout = this.dout;
      }
      if (config.skip_attn) this.axpy(p, this.dy, dst, nd);
      else this.axpy(p, this.dy, dst, nd, { zero: true });
      // attention: dout -> dq, dk, dv and the bias gradient
      for (const [b0, bc] of this.chunks(B)) {
        this.attentionMaps(p, s, b0, bc);
        if (!L.sparse) {
          this.gemm(p, dout, this.vn[s], this.attG, {
            M: N, P: N, K: dh, Z1: bc, Z2: H,
            a: { off: b0 * N * D, z1: N * D, z2: dh, r: D, c: 1 },
            b: { off: b0 * N * D, z1: N * D, z2: dh, r: 1, c: D },
            c: { z1: H * N * N, z2: N * N, r: N, c: 1 },
          });
          this.gemm(p, this.attA, dout, this.dv, {
            M: N, P: dh, K: N, Z1: bc, Z2: H,
            a: { z1: H * N * N, z2: N * N, r: 1, c: N },
            b: { off: b0 * N * D, z1: N * D, z2: dh, r: D, c: 1 },
            c: { off: b0 * N * D, z1: N * D, z2: dh, r: D, c: 1 },
          });
        } else {
          const count = bc * H * N * L.K;
          p.add(SPARSE_DA, [dout, this.vn[s], this.idx, this.attG], this.sparseUniforms(count, b0), this.pointwise(count));
        }
        p.add(SOFTMAX_BACKWARD, [this.attA, this.attG, this.wir, this.scalars], { N, W, aOff: 0, gOff: 0 }, bc * H * N);
        if (!L.sparse) {
          this.gemm(p, this.attG, this.kn[s], this.dq, {
            M: N, P: QK, K: N, Z1: bc, Z2: H, alpha: config.attn_scale,
            a: { z1: H * N * N, z2: N * N, r: N, c: 1 },
            b: { off: b0 * N * HQ, z1: N * HQ, z2: QK, r: HQ, c: 1 },
            c: { off: b0 * N * HQ, z1: N * HQ, z2: QK, r: HQ, c: 1 },
          });
          this.gemm(p, this.attG, this.qn[s], this.dk, {
            M: N, P: QK, K: N, Z1: bc, Z2: H, alpha: config.attn_scale,
            a: { z1: H * N * N, z2: N * N, r: 1, c: N },
            b: { off: b0 * N * HQ, z1: N * HQ, z2: QK, r: HQ, c: 1 },
            c: { off: b0 * N * HQ, z1: N * HQ, z2: QK, r: HQ, c: 1 },
          });
        } else {
          const cq = bc * N * HQ;
          p.add(SPARSE_DQ, [this.attG, this.kn[s], this.idx, this.dq], this.sparseUniforms(cq, b0), this.pointwise(cq));
          p.add(SPARSE_GATHER_BACK, [this.attG, this.qn[s], this.revStart, this.revList, this.dk], { ...this.sparseUniforms(cq, b0), mode: 0 }, this.pointwise(cq));
          const cv = bc * N * D;
          p.add(SPARSE_GATHER_BACK, [this.attA, dout, this.revStart, this.revList, this.dv], { ...this.sparseUniforms(cv, b0), mode: 1 }, this.pointwise(cv));
        }
        if (config.attn_bias) {
          const F = N * W;
          p.add(ROWSUM, [this.attG, this.G.get("attn.attn_bias")!], { count: F, F, R: bc * H, xOff: 0, xZ: 0, xR: F, oOff: L.stepOffset("attn.attn_bias", s), oZ: 0, flags: 1 }, this.pointwise(F));
        }
      }
      // attention half: dq, dk, dv -> LN1 -> dst += d(step input)
      this.layerNorm(p, B, s, 1, xin, this.hD, 1);
      this.linearWeightGrad(p, B, s, this.dq, this.hD, "attn.q.weight", D, HQ);
      this.rowGrad(p, B, s, this.dq, "attn.q.bias", HQ);
      this.linearWeightGrad(p, B, s, this.dk, this.hD, "attn.k.weight", D, HQ);
      this.linearInputGrad(p, B, s, this.dq, "attn.q.weight", this.hD2, D, HQ, false);
      this.linearInputGrad(p, B, s, this.dk, "attn.k.weight", this.hD2, D, HQ, true);
      if (config.value_proj) {
        this.linearWeightGrad(p, B, s, this.dv, this.hD, "attn.v.weight", D, D);
        this.rowGrad(p, B, s, this.dv, "attn.v.bias", D);
        this.linearInputGrad(p, B, s, this.dv, "attn.v.weight", this.hD2, D, D, true);
      } else this.axpy(p, this.dv, this.hD2, nd, { acc: true });
      this.layerNormBackward(p, B, s, 1, this.hD2, xin, dst);
      if (config.inject_every && s > 0) this.axpy(p, dst, this.ddrv!, nd, { acc: true });
      if (s > 0) p.add(ADD_SIGN, [this.xs[s], dst, this.scalars], { count: nd, xOff: 0 }, this.pointwise(nd));
    }
    p.build();
    this.programs.set(key, p);
    return p;
  }

  async backward(args: NativeBackwardArgs): Promise<void> {
    this.enter("backward");
    try {
      const { L } = this;
      if (!Array.isArray(args.grads) || args.grads.length !== L.leaves.length) throw new Error(`backward: grads has ${args.grads?.length} arrays, expected ${L.leaves.length}`);
      L.leaves.forEach((leaf, i) => {
        if (!(args.grads[i] instanceof Float32Array) || args.grads[i].length !== L.size(leaf)) throw new Error(`backward: grads[${i}] (${leaf}) must be a Float32Array of ${L.size(leaf)} values`);
      });
      const out = await this.backwardImpl(args, this.own);
      L.leaves.forEach((_, i) => {
        args.grads[i].set(out[i]);
      });
    } finally {
      this.busy = false;
    }
  }

  /**
   * The backward of a forward that read a resident state's parameters: the gradients are added
   * to its accumulator in the same submission and only dx0 (and ddrive) come back. Use through
   * WebGPUResident.backward.
   */
  async backwardResident(state: WebGPUResident, args: ResidentBackwardArgs): Promise<void> {
    this.enter("backward");
    try {
      await this.backwardImpl(args, this.sourceOf(state));
    } finally {
      this.busy = false;
    }
  }

  /** acc_i += G[leaf i] for every leaf (recorded once per resident state). */
  private accumulateProgram(source: ParamSource): Program {
    const key = `a:${source.key}`;
    const cached = this.programs.get(key);
    if (cached) return cached;
    const p = this.program();
    this.L.leaves.forEach((leaf, i) => {
      this.axpy(p, this.G.get(leaf)!, source.resident!.acc[i], this.L.size(leaf), { acc: true });
    });
    p.build();
    this.programs.set(key, p);
    return p;
  }

  /** Run the backward of the taped forward (which must have read `source`); returns the gradients (own source only: resident ones stay there). */
  private async backwardImpl(args: ResidentBackwardArgs, source: ParamSource): Promise<Float32Array[]> {
    const { L, config } = this;
    if (!this.tape) throw new Error("backward: no training forward to differentiate (call forward with train: true first)");
    if (this.tapeSource !== source) throw new Error("backward: the taped forward read other parameters (host leaves vs a resident state): call the matching backward");
    const B = this.lastBatch;
    const nd = B * L.N * L.D;
    if (!(args.dx instanceof Float32Array) || args.dx.length !== nd) throw new Error(`backward: dx has ${args.dx?.length} values, expected ${nd}`);
    finite(args.dx, "backward: dx");
    for (const key of ["wiringCoef", "activationCoef"] as const) {
      if (typeof args[key] !== "number" || !Number.isFinite(args[key])) throw new Error(`backward: ${key} must be a finite number`);
    }
    if (!(args.dx0 instanceof Float32Array) || args.dx0.length !== nd) throw new Error(`backward: dx0 must be a Float32Array of ${nd} values`);
    if (config.inject_every && !args.ddrive) throw new Error("backward: ddrive is required with config.inject_every");
    if (args.ddrive && args.ddrive.length !== nd) throw new Error(`backward: ddrive has ${args.ddrive.length} values, expected ${nd}`);
    upload(this.device, this.dst, args.dx);
    const cw = this.hasWiring ? args.wiringCoef / (L.H * B * L.S * L.N) : 0;
    const act = args.activationCoef / (L.S * B * L.N * L.D);
    upload(this.device, this.scalars, new Float32Array([cw, act, 0, 0]));
    const resident = source.resident !== null;
    const slices: Slice[] = resident ? [] : L.leaves.map((leaf) => ({ src: this.G.get(leaf)!, offset: 0, count: L.size(leaf) }));
    slices.push({ src: this.dst, offset: 0, count: nd });
    if (this.ddrv) slices.push({ src: this.ddrv, offset: 0, count: nd });
    const out = await this.readback.run((encoder) => {
      for (const leaf of L.leaves) encoder.clearBuffer(this.G.get(leaf)!);
      if (this.ddrv) encoder.clearBuffer(this.ddrv);
      this.backwardProgram(B, source).encode(encoder);
      if (resident) this.accumulateProgram(source).encode(encoder);
    }, slices);
    const grads = resident ? 0 : L.leaves.length;
    args.dx0.set(out[grads]);
    if (args.ddrive) {
      if (this.ddrv) args.ddrive.set(out[grads + 1]);
      else args.ddrive.fill(0);
    }
    return out.slice(0, grads);
  }
}

/** Throw naming the first NaN or infinity. */
function finite(a: Float32Array, what: string): void {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v - v !== 0) throw new Error(`${what} holds ${Number.isNaN(v) ? "NaN" : "Inf"} at index ${i}`);
  }
}
