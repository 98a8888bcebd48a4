/**
 * Scale benchmark: how many columns can a sheet TRAIN with on this machine, sparse versus dense?
 *
 *   node --import tsx bench/scale.ts [--max-n N] [--variants sparse,dense] [--steps S] [--timeout-s T] [--max-gib G]
 *
 * Workload: a square grid of N columns (N = 1,024 ... 1,048,576), every column with its OWN
 * weights (the default Columnformer: per-column LayerNorms, q/k projections and MLP, a learned
 * attention bias), D 8, qk 8, MLP 16, batch 2, depth 2, loss = mean squared error of the final
 * states against a random target. One training step = the model's native sheet forward and
 * backward (src/engine/native-sheet.ts, the kernels `columnformer train` runs) + AdamW on every
 * parameter (the addon's, on host arrays: a million columns' parameters, gradients and moments
 * are 7 GiB, beyond jax-js's 4 GiB heap).
 *
 * Variants: `sparse` (each column reads its K = 16 nearest columns: localConnectivity, a spatial
 * hash, no N x N matrix anywhere) and `dense` (all N columns; run while its estimated memory fits
 * under --max-gib, default 20 GiB of this 24 GiB machine). Parameters are initialised on the host
 * with the model's distributions (src/model/sheet.ts: weights U(-in^-1/2, in^-1/2), zero biases,
 * unit norms, the local attention-bias prior max(-d^2 / 8, -8)).
 *
 * Every (variant, N) runs in its own child process, so a failure is reported without disturbing
 * the other rows and the peak RSS (VmHWM) belongs to that row alone. Not in `npm run bench`.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { Rng } from "../src/data/index.ts";
import { type NativeAddon, sheetLeaves } from "../src/engine/native-sheet.ts";
import { chooseBackend } from "../src/engine/backend.ts";
import { localConnectivity } from "../src/geometry/connectivity.ts";
import { euclideanMetric } from "../src/geometry/metric.ts";
import { gridLayout } from "../src/geometry/grid.ts";
import type { SheetConfig } from "../src/model/config.ts";
import { nativeSheetConfig } from "../src/model/sheet-native.ts";
import { median } from "./harness.ts";

/** The workload of the table: small widths so that a million untied columns fit. */
export const SCALE_SHAPE = { dim: 8, qk: 8, mlp: 16, k: 16, batch: 2, depth: 2 };

/** Column counts of the table: square grids 32^2 ... 1024^2. */
export const SCALE_SIZES = [1024, 4096, 16384, 65536, 262144, 1048576];

export type ScaleVariant = "sparse" | "dense";
const VARIANTS: ScaleVariant[] = ["sparse", "dense"];
const ADAMW = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.05 };

/** The sheet config of a row. */
function scaleSheet(n: number, variant: ScaleVariant): SheetConfig {
  const side = Math.round(Math.sqrt(n));
  const s = SCALE_SHAPE;
  return {
    geometry: { kind: "grid", height: side, width: side },
    num_columns: n,
    dim: s.dim,
    qk_dim: s.qk,
    heads: 1,
    mlp_dim: s.mlp,
    depth: s.depth,
    recurrent: true,
    untie_norm: true,
    untie_attn: true,
    untie_mlp: true,
    value_proj: false,
    attn_bias: true,
    skip_attn: true,
    attn_scale: s.qk ** -0.5,
    norm_eps: 1e-5,
    learn_positions: false,
    attn_bias_init: "local",
    attn_bias_sigma: 2,
    connectivity: variant === "sparse" ? { kind: "local", k: s.k } : { kind: "dense" },
  };
}

/** Floats of every leaf of a row's sheet: [N, own] (the bias [N, W]). */
function leafSizes(n: number, width: number): Record<string, number> {
  const { dim: d, qk, mlp } = SCALE_SHAPE;
  return {
    "norm1.weight": n * d,
    "norm1.bias": n * d,
    "attn.q.weight": n * qk * d,
    "attn.q.bias": n * qk,
    "attn.k.weight": n * qk * d,
    "attn.attn_bias": n * width,
    "norm2.weight": n * d,
    "norm2.bias": n * d,
    "mlp.fc1.weight": n * mlp * d,
    "mlp.fc1.bias": n * mlp,
    "mlp.fc2.weight": n * d * mlp,
  };
}

/** Estimated bytes of a row: parameters, gradients and two moments, plus the activations kept for the backward. */
export function estimateBytes(n: number, variant: ScaleVariant): number {
  const width = variant === "sparse" ? SCALE_SHAPE.k : n;
  const params = Object.values(leafSizes(n, width)).reduce((a, b) => a + b, 0);
  const { batch, depth, dim, qk, mlp } = SCALE_SHAPE;
  const tape = depth * batch * n * (2 * width + 8 * dim + 2 * qk + 2 * mlp);
  return 4 * (4 * params + tape);
}

/** One row of the table. */
export interface ScaleRow {
  variant: ScaleVariant;
  n: number;
  ok: boolean;
  /** Why it did not run, when !ok. */
  reason?: string;
  connectivityMs?: number;
  firstStepMs?: number;
  stepMs?: number[];
  medianStepMs?: number;
  /** Peak resident set (VmHWM) of the row's process, MiB. */
  peakRssMiB?: number;
  parameters: number;
  loss?: number[];
}

/** Host initialisation with the model's distributions (see the file comment). */
function initLeaf(name: string, size: number, fanIn: number, rng: Rng, distances: Float32Array | null): Float32Array {
  if (name === "attn.attn_bias") return distances!.map((d) => Math.max(-(d * d) / 8, -8));
  if (name.endsWith(".bias")) return new Float32Array(size);
  if (name.startsWith("norm")) return new Float32Array(size).fill(1);
  const bound = fanIn ** -0.5;
  return Float32Array.from({ length: size }, () => (rng.next() * 2 - 1) * bound);
}

/** Run `steps + 1` training steps of one variant at N columns in this process. */
export function measure(addon: NativeAddon, variant: ScaleVariant, n: number, steps: number): ScaleRow {
  const side = Math.round(Math.sqrt(n));
  if (side * side !== n) throw new Error(`N must be a square, got ${n}`);
  const s = SCALE_SHAPE;
  const width = variant === "sparse" ? s.k : n;
  const sizes = leafSizes(n, width);
  const row: ScaleRow = { variant, n, ok: false, parameters: Object.values(sizes).reduce((a, b) => a + b, 0) };
  const layout = gridLayout(side, side);
  let indices: Int32Array | null = null;
  let distances: Float32Array;
  const pos = layout.positions;
  const dist = (i: number, j: number) => Math.hypot(pos[2 * i] - pos[2 * j], pos[2 * i + 1] - pos[2 * j + 1]);
  if (variant === "sparse") {
    const t = performance.now();
    indices = localConnectivity(euclideanMetric(pos, 2), s.k);
    row.connectivityMs = performance.now() - t;
    distances = Float32Array.from(indices, (j, e) => dist(Math.floor(e / s.k), j));
  } else {
    distances = new Float32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) distances[i * n + j] = dist(i, j);
  }
  const sheet = scaleSheet(n, variant);
  const names = sheetLeaves(sheet);
  const fanIn: Record<string, number> = { "attn.q.weight": s.dim, "attn.k.weight": s.dim, "mlp.fc1.weight": s.dim, "mlp.fc2.weight": s.mlp };
  const rng = new Rng(0);
  const params = names.map((name) => initLeaf(name, sizes[name], fanIn[name] ?? 1, rng, name === "attn.attn_bias" ? distances : null));
  const grads = names.map((name) => new Float32Array(sizes[name]));
  const m = names.map((name) => new Float32Array(sizes[name]));
  const v = names.map((name) => new Float32Array(sizes[name]));
  const weightDecay = names.map((name) => (name.endsWith("bias") || name.startsWith("norm") ? 0 : ADAMW.weightDecay));
  const size = s.batch * n * s.dim;
  const x0 = Float32Array.from({ length: size }, () => rng.next() * 2 - 1);
  const target = Float32Array.from({ length: size }, () => rng.next() * 2 - 1);
  const dx = new Float32Array(size);
  const dx0 = new Float32Array(size);
  const kernel = addon.createSheet(nativeSheetConfig(sheet, { inject: "first" }, s.batch));
  const losses: number[] = [];
  const times: number[] = [];
  for (let step = 1; step <= steps + 1; step++) {
    const t = performance.now();
    const out = kernel.forward({ params, x0, drive: null, connectivity: indices, wiringWeights: null, batch: s.batch, train: true, attn: null });
    let loss = 0;
    for (let i = 0; i < size; i++) {
      const e = out.x[i] - target[i];
      loss += e * e;
      dx[i] = (2 * e) / size;
    }
    kernel.backward({ dx, wiringCoef: 0, activationCoef: 0, grads, dx0, ddrive: null });
    addon.adamw({ params, grads, m, v, lr: ADAMW.lr, beta1: ADAMW.beta1, beta2: ADAMW.beta2, eps: ADAMW.eps, weightDecay, step });
    times.push(performance.now() - t);
    losses.push(loss / size);
  }
  kernel.dispose();
  row.ok = true;
  row.firstStepMs = times[0];
  row.stepMs = times.slice(1);
  row.medianStepMs = median(row.stepMs);
  row.loss = losses;
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  row.peakRssMiB = hwm ? Number(hwm[1]) / 1024 : NaN;
  return row;
}

interface Options {
  maxN: number;
  variants: ScaleVariant[];
  steps: number;
  timeoutS: number;
  maxGiB: number;
}

const USAGE = "usage: node --import tsx bench/scale.ts [--max-n N] [--variants sparse,dense] [--steps S] [--timeout-s T] [--max-gib G]";

function parseArgs(argv: string[]): Options {
  const opts: Options = { maxN: 1048576, variants: [...VARIANTS], steps: 3, timeoutS: 1200, maxGiB: 20 };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    const num = (what: string) => {
      const x = Number(value);
      if (!Number.isFinite(x) || x <= 0) throw new Error(`${flag} needs a positive number (${what}), got "${value}"\n${USAGE}`);
      return x;
    };
    if (flag === "--max-n") opts.maxN = num("columns");
    else if (flag === "--steps") opts.steps = Math.round(num("timed steps"));
    else if (flag === "--timeout-s") opts.timeoutS = num("seconds per row");
    else if (flag === "--max-gib") opts.maxGiB = num("GiB");
    else if (flag === "--variants") {
      const vs = (value ?? "").split(",");
      const bad = vs.filter((v) => !(VARIANTS as string[]).includes(v));
      if (bad.length || vs.length === 0) throw new Error(`--variants takes a comma list of ${VARIANTS.join(", ")}, got "${value}"\n${USAGE}`);
      opts.variants = vs as ScaleVariant[];
    } else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  return opts;
}

/** Run one row in a child process (this file with --row). */
function runChild(variant: ScaleVariant, n: number, opts: Options): Promise<ScaleRow> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--row", JSON.stringify({ variant, n, steps: opts.steps })], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutS * 1000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split("\n").pop() ?? "";
      if (code === 0 && last.startsWith("{")) resolve(JSON.parse(last) as ScaleRow);
      else {
        const why = signal === "SIGKILL" ? `killed (time-out ${opts.timeoutS} s or out of memory)` : `exit ${code ?? signal}: ${err.trim().split("\n").slice(-1)[0] ?? ""}`;
        resolve({ variant, n, ok: false, reason: why, parameters: 0 });
      }
    });
  });
}

const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--row") {
    const { variant, n, steps } = JSON.parse(argv[1]) as { variant: ScaleVariant; n: number; steps: number };
    const { addon } = chooseBackend("native");
    process.stdout.write(`${JSON.stringify(measure(addon!, variant, n, steps))}\n`);
    return;
  }
  const opts = parseArgs(argv);
  const { addon } = chooseBackend("native");
  const info = addon!.info();
  console.log(`scale benchmark: native sheet (${info.simd}, ${info.threads} threads), ${os.cpus()[0]?.model.trim()}, D ${SCALE_SHAPE.dim}, qk ${SCALE_SHAPE.qk}, MLP ${SCALE_SHAPE.mlp}, batch ${SCALE_SHAPE.batch}, depth ${SCALE_SHAPE.depth}, sparse K ${SCALE_SHAPE.k}; one step = forward + backward + AdamW`);
  console.log("variant  columns     parameters  step (median)  first step  peak RSS    loss");
  for (const variant of opts.variants) {
    for (const n of SCALE_SIZES.filter((x) => x <= opts.maxN)) {
      const estimate = estimateBytes(n, variant) / 2 ** 30;
      const row: ScaleRow =
        estimate > opts.maxGiB
          ? { variant, n, ok: false, reason: `does not fit: needs ~${estimate.toFixed(0)} GiB (> --max-gib ${opts.maxGiB})`, parameters: 0 }
          : await runChild(variant, n, opts);
      if (!row.ok) {
        console.log(`${variant.padEnd(8)} ${n.toLocaleString("en-US").padStart(9)}  ${row.reason}`);
        if (variant === "dense") break;
        continue;
      }
      const loss = row.loss!;
      console.log(
        `${variant.padEnd(8)} ${n.toLocaleString("en-US").padStart(9)}  ${row.parameters.toLocaleString("en-US").padStart(13)}  ${fmtMs(row.medianStepMs!).padStart(13)}  ${fmtMs(row.firstStepMs!).padStart(10)}  ${`${row.peakRssMiB!.toFixed(0)} MiB`.padStart(9)}  ${loss[0].toFixed(3)} -> ${loss[loss.length - 1].toFixed(3)}`,
      );
    }
  }
}

await main();
