/**
 * Scale benchmark (issue 6, "Sparsity and scale"): how many columns can a sheet TRAIN with on
 * this machine, sparse versus dense attention?
 *
 *   node --import tsx bench/scale.ts [--max-n N] [--variants chunked,manual,autodiff,dense]
 *                                    [--steps S] [--chunk C] [--timeout-s T] [--autodiff-max-n N]
 *
 * Workload: a square grid of N columns (N = 1,024 ... 1,048,576), every column with its OWN
 * weights (per-column LayerNorms, q/k projections and MLP; nothing tied), D = 8, qk = 8,
 * MLP = 16, batch 2, depth 2, loss = mean squared error of the final states against a random
 * target (see bench/scale-sheet.ts). One training step = value and gradient + a plain AdamW
 * update of every parameter.
 *
 * Variants (sparse ones: K = 16 nearest columns from localConnectivity):
 *   - chunked:  ChunkedSparseTrainer: jitted calls over blocks of C columns, gather-only
 *               attention VJP, per-depth-step recomputation, parameters + AdamW in host memory.
 *   - manual:   the same maths in ONE jit (vjp of the per-column parts + gather-only attention
 *               VJP), everything on the device, AdamW per leaf on the device.
 *   - autodiff: the sparse sheet under plain jit(valueAndGrad) (the gather's transpose is
 *               jax-js's single-threaded JS scatter-add routine).
 *   - dense:    N x N attention (the current model) under jit(valueAndGrad).
 *
 * Every (variant, N) runs in its own child process, so a failure (Wasm heap exhausted, out of
 * memory, time-out) is reported as "did not fit: <reason>" without disturbing the other rows,
 * and the peak RSS (process.resourceUsage().maxRSS) belongs to that row alone.
 * Not registered in bench/run.ts.
 */
import { spawn } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { initEngine } from "../src/engine/engine.ts";
import { blockUntilReady, jit, numpy as np, random, tree, valueAndGrad, type JsTree } from "../src/engine/jax.ts";
import { localConnectivity } from "../src/geometry/connectivity.ts";
import { gridLayout } from "../src/geometry/grid.ts";
import { reverseConnectivity, type ReverseConnectivity } from "../src/model/sparse-attention.ts";
import { median } from "./harness.ts";
import {
  ADAMW,
  ChunkedSparseTrainer,
  HostParams,
  leafSpecs,
  manualLossAndGrad,
  parameterCount,
  sheetLoss,
  type ScaleParams,
  type ScaleShape,
} from "./scale-sheet.ts";

type A = np.Array;

/** The workload of the table: small widths so that a million untied columns can fit. */
export const SCALE_SHAPE: ScaleShape = { dim: 8, qk: 8, mlp: 16, k: 16, batch: 2, depth: 2 };

/** Column counts of the table: square grids 32^2 ... 1024^2. */
export const SCALE_SIZES = [1024, 4096, 16384, 65536, 262144, 1048576];

/** Default block of columns for the chunked variant. */
export const DEFAULT_CHUNK = 16384;

export type ScaleVariant = "chunked" | "manual" | "autodiff" | "dense";
const VARIANTS: ScaleVariant[] = ["chunked", "manual", "autodiff", "dense"];

// ---------------------------------------------------------------------------
// AdamW on the device, one jitted update per leaf (keeps the transient memory to one leaf)
// ---------------------------------------------------------------------------

const adamLeaf = jit((p: A, g: A, m: A, v: A, lr: A, bc1: A, bc2: A): [A, A, A] => {
  const m2 = m.mul(ADAMW.beta1).add(g.ref.mul(1 - ADAMW.beta1));
  const v2 = v.mul(ADAMW.beta2).add(np.square(g).mul(1 - ADAMW.beta2));
  const update = m2.ref.div(bc1).div(np.sqrt(v2.ref.div(bc2)).add(ADAMW.eps));
  const p2 = p.ref.sub(p.mul(lr.ref.mul(ADAMW.weightDecay))).sub(update.mul(lr));
  return [p2, m2, v2];
});

interface AdamState {
  step: number;
  m: A[];
  v: A[];
}

/** Update every leaf (replacing the entries of the lists). Consumes `grads`. */
function adamStep(params: A[], grads: A[], state: AdamState): void {
  state.step++;
  const bc1 = 1 - ADAMW.beta1 ** state.step;
  const bc2 = 1 - ADAMW.beta2 ** state.step;
  for (let i = 0; i < params.length; i++) {
    const [p2, m2, v2] = adamLeaf(params[i], grads[i], state.m[i], state.v[i], ADAMW.lr, bc1, bc2);
    params[i] = p2;
    state.m[i] = m2;
    state.v[i] = v2;
  }
}

// ---------------------------------------------------------------------------
// One measurement (runs in a child process)
// ---------------------------------------------------------------------------

/** One row of the table. */
export interface ScaleRow {
  variant: ScaleVariant;
  n: number;
  ok: boolean;
  /** Why it did not run, when !ok. */
  reason?: string;
  /** Building the connectivity on the host (sparse), ms. */
  connectivityMs?: number;
  /** First step: trace + jit compile + run, ms. */
  firstStepMs?: number;
  /** Steps after the first, ms. */
  stepMs?: number[];
  medianStepMs?: number;
  /** Peak resident set size of the process, MiB. */
  peakRssMiB?: number;
  /** Float32 parameters. */
  parameters: number;
  /** Largest out-degree of the connectivity (manual, chunked). */
  maxOutDegree?: number;
  /** Columns per block (chunked). */
  chunk?: number;
  /** Mean ms per timed step by phase (chunked). */
  phasesMs?: Record<string, number>;
  loss?: number[];
}

/** With env SCALE_DEBUG set, print the phase and the memory use to stderr. */
function debugPhase(phase: string): void {
  if (process.env.SCALE_DEBUG) {
    const m = process.memoryUsage();
    const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
    process.stderr.write(`[scale] ${phase}: rss ${mib(m.rss)} MiB, external ${mib(m.external)} (host ArrayBuffers + an unshared Wasm heap), JS heap ${mib(m.heapUsed)}\n`);
  }
}

/** Run `steps + 1` training steps of one variant at N columns in this process. */
export async function measure(variant: ScaleVariant, n: number, steps: number, chunk = DEFAULT_CHUNK, s: ScaleShape = SCALE_SHAPE): Promise<ScaleRow> {
  await initEngine();
  const side = Math.round(Math.sqrt(n));
  if (side * side !== n) throw new Error(`N must be a square, got ${n}`);
  const dense = variant === "dense";
  const row: ScaleRow = { variant, n, ok: false, parameters: parameterCount(n, s, dense ? n : s.k) };

  let indices: Int32Array | null = null;
  if (!dense) {
    const t = performance.now();
    indices = localConnectivity(gridLayout(side, side).positions, 2, s.k);
    row.connectivityMs = performance.now() - t;
    debugPhase("connectivity");
  }
  const host = HostParams.init(n, leafSpecs(s, dense ? n : s.k), 0);
  const x = random.normal(random.key(1), [s.batch, n, s.dim]);
  const target = random.normal(random.key(2), [s.batch, n, s.dim]);
  const losses: number[] = [];
  const times: number[] = [];

  if (variant === "chunked") {
    const trainer = new ChunkedSparseTrainer(host, s, indices!, Math.min(chunk, n));
    row.maxOutDegree = trainer.maxOutDegree;
    row.chunk = trainer.chunk;
    const xs = trainer.split(x);
    const ys = trainer.split(target);
    debugPhase("set-up");
    for (let i = 0; i <= steps; i++) {
      const t = performance.now();
      losses.push(await trainer.step(xs, ys));
      times.push(performance.now() - t);
      debugPhase(`step ${i}`);
      if (i === 0) for (const key of Object.keys(trainer.timings)) delete trainer.timings[key]; // phases: timed steps only
    }
    tree.dispose([xs, ys]);
    row.phasesMs = Object.fromEntries(Object.entries(trainer.timings).map(([k, v]) => [k, v / Math.max(1, steps)]));
    trainer.dispose();
  } else {
    const params = host.upload();
    const [leaves, def] = tree.flatten(params as unknown as JsTree<A>);
    const state: AdamState = { step: 0, m: leaves.map((l) => np.zerosLike(l.ref)), v: leaves.map((l) => np.zerosLike(l.ref)) };
    let idx: A | null = null;
    let rev: ReverseConnectivity | null = null;
    if (indices) {
      idx = np.array(indices, { dtype: np.int32 }).reshape([n, s.k]);
      if (variant === "manual") {
        rev = reverseConnectivity(indices, n, s.k);
        row.maxOutDegree = rev.r;
      }
    }
    await blockUntilReady([leaves, x, target]);
    debugPhase("set-up");
    const gradStep =
      variant === "manual"
        ? jit((p: ScaleParams, xs: A, ys: A, ix: A, pos: A, tgt: A) => manualLossAndGrad(p, xs, ys, ix, { positions: pos, targets: tgt, r: rev!.r }, s))
        : jit((p: ScaleParams, xs: A, ys: A, ix: A) => valueAndGrad((pp: ScaleParams) => sheetLoss(pp, xs, ys, dense ? (ix.dispose(), null) : ix, s))(p) as [A, ScaleParams]);
    for (let i = 0; i <= steps; i++) {
      const t = performance.now();
      const p = tree.unflatten(def, leaves.map((l) => l.ref)) as unknown as ScaleParams;
      const extra: A[] = rev ? [idx!.ref, rev.positions.ref, rev.targets.ref] : [idx ? idx.ref : np.zeros([1], { dtype: np.int32 })];
      const [loss, grads] = (gradStep as unknown as (...a: unknown[]) => [A, ScaleParams])(p, x.ref, target.ref, ...extra);
      await blockUntilReady([loss, grads]);
      debugPhase(`step ${i} gradients`);
      adamStep(leaves, tree.leaves(grads as unknown as JsTree<A>), state);
      losses.push((await loss.data())[0]);
      await blockUntilReady(leaves); // wait for the update to finish
      times.push(performance.now() - t);
      debugPhase(`step ${i} update`);
    }
    tree.dispose([leaves, state.m, state.v, x, target, idx, rev ? [rev.positions, rev.targets] : []]);
    gradStep.dispose();
  }
  row.ok = true;
  row.firstStepMs = times[0];
  row.stepMs = times.slice(1);
  row.medianStepMs = median(row.stepMs);
  row.loss = losses;
  row.peakRssMiB = process.resourceUsage().maxRSS / 1024;
  return row;
}

// ---------------------------------------------------------------------------
// Driver: one child process per (variant, N), then a Markdown table
// ---------------------------------------------------------------------------

interface Options {
  maxN: number;
  variants: ScaleVariant[];
  steps: number;
  chunk: number;
  timeoutS: number;
  autodiffMaxN: number;
}

const USAGE = "usage: node --import tsx bench/scale.ts [--max-n N] [--variants chunked,manual,autodiff,dense] [--steps S] [--chunk C] [--timeout-s T] [--autodiff-max-n N]";

function parseArgs(argv: string[]): Options {
  const opts: Options = { maxN: 1048576, variants: [...VARIANTS], steps: 3, chunk: DEFAULT_CHUNK, timeoutS: 1200, autodiffMaxN: 262144 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    const int = (): number => {
      const v = Number(value);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} needs a positive integer, got "${value}"`);
      i++;
      return v;
    };
    if (flag === "--max-n") opts.maxN = int();
    else if (flag === "--steps") opts.steps = int();
    else if (flag === "--chunk") opts.chunk = int();
    else if (flag === "--timeout-s") opts.timeoutS = int();
    else if (flag === "--autodiff-max-n") opts.autodiffMaxN = int();
    else if (flag === "--variants") {
      const vs = (value ?? "").split(",");
      for (const v of vs) if (!VARIANTS.includes(v as ScaleVariant)) throw new Error(`--variants: unknown variant "${v}" (${VARIANTS.join(", ")})`);
      opts.variants = vs as ScaleVariant[];
      i++;
    } else if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument "${flag}"; ${USAGE}`);
  }
  return opts;
}

const paramsOf = (variant: ScaleVariant, n: number): number => parameterCount(n, SCALE_SHAPE, variant === "dense" ? n : SCALE_SHAPE.k);

/** Run one measurement in a child process; failures become rows with ok = false. */
function runChild(variant: ScaleVariant, n: number, opts: Options): Promise<ScaleRow> {
  return new Promise((resolve) => {
    const args = [...process.execArgv, fileURLToPath(import.meta.url), "--child", variant, String(n), String(opts.steps), String(opts.chunk)];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (process.env.SCALE_DEBUG) process.stderr.write(d);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutS * 1000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
      if (line) return resolve(JSON.parse(line.slice(7)) as ScaleRow);
      const lastError = stderr
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => /error|memory|abort|killed|limit/i.test(l) && !l.startsWith("at ") && !l.startsWith("[scale]"))
        .pop();
      const reason = timedOut
        ? `timed out after ${opts.timeoutS} s`
        : (lastError ?? `exit code ${code ?? "none"}${signal ? `, signal ${signal}` : ""} (likely killed for memory)`);
      resolve({ variant, n, ok: false, reason: reason.slice(0, 160), parameters: paramsOf(variant, n) });
    });
  });
}

const fmtS = (ms: number | undefined): string => (ms === undefined ? "" : (ms / 1000).toFixed(ms < 10000 ? 2 : 1));

/** Markdown table of the rows. */
export function scaleTable(rows: ScaleRow[]): string {
  const header = ["variant", "N", "params (MiB)", "step median (s)", "steps (s)", "compile (s)", "peak RSS (MiB)", "connectivity (s)", "result"];
  const lines = rows.map((r) => [
    r.variant + (r.chunk && r.chunk < r.n ? ` (${r.n / r.chunk} x ${r.chunk})` : ""),
    r.n.toLocaleString("en-US"),
    ((r.parameters * 4) / 2 ** 20).toFixed(0),
    r.ok ? fmtS(r.medianStepMs) : "",
    r.ok ? (r.stepMs ?? []).map((t) => fmtS(t)).join(" / ") : "",
    r.ok && r.firstStepMs !== undefined && r.medianStepMs !== undefined ? fmtS(Math.max(0, r.firstStepMs - r.medianStepMs)) : "",
    r.peakRssMiB ? r.peakRssMiB.toFixed(0) : "",
    fmtS(r.connectivityMs),
    r.ok ? `trains (loss ${r.loss![0].toFixed(4)} -> ${r.loss![r.loss!.length - 1].toFixed(4)})` : `did not fit: ${r.reason}`,
  ]);
  return [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`, ...lines.map((l) => `| ${l.join(" | ")} |`)].join("\n");
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--child") {
    const row = await measure(argv[1] as ScaleVariant, Number(argv[2]), Number(argv[3] ?? 3), Number(argv[4] ?? DEFAULT_CHUNK));
    process.stdout.write(`RESULT ${JSON.stringify(row)}\n`);
    process.exit(0);
  }
  const opts = parseArgs(argv);
  const s = SCALE_SHAPE;
  const cpus = os.cpus();
  console.log(`# Scale benchmark: sheet training step, sparse vs dense attention`);
  console.log("");
  console.log(`- workload: square grid of N columns, untied per-column weights, D ${s.dim}, qk ${s.qk}, MLP ${s.mlp}, K ${s.k} (sparse), batch ${s.batch}, depth ${s.depth}; step = value+grad of an MSE loss + AdamW`);
  console.log(`- engine: @jax-js/jax, Wasm backend (4 GiB heap), COLUMNFORMER_THREADS=${process.env.COLUMNFORMER_THREADS ?? "(all cores)"}; node ${process.version}; ${cpus[0]?.model.trim()} x ${cpus.length}; ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM; load ${os.loadavg()[0].toFixed(2)} at start`);
  console.log(`- timing: "compile" = first step minus the median step; ${opts.steps} timed steps after it; one child process per row; chunked blocks of ${opts.chunk} columns`);
  console.log("");
  const rows: ScaleRow[] = [];
  for (const variant of opts.variants) {
    let failed = false;
    for (const n of SCALE_SIZES.filter((v) => v <= opts.maxN)) {
      if (failed) {
        rows.push({ variant, n, ok: false, reason: "skipped (a smaller N did not fit)", parameters: paramsOf(variant, n) });
        continue;
      }
      if (variant === "autodiff" && n > opts.autodiffMaxN) {
        rows.push({ variant, n, ok: false, reason: `skipped (--autodiff-max-n ${opts.autodiffMaxN})`, parameters: paramsOf(variant, n) });
        continue;
      }
      process.stderr.write(`  ${variant} N=${n} ...\n`);
      const row = await runChild(variant, n, opts);
      process.stderr.write(`    ${row.ok ? `median step ${fmtS(row.medianStepMs)} s, peak RSS ${row.peakRssMiB?.toFixed(0)} MiB` : row.reason}\n`);
      rows.push(row);
      failed = !row.ok;
    }
  }
  console.log(scaleTable(rows));
  const phased = rows.filter((r) => r.ok && r.phasesMs);
  if (phased.length > 0) {
    const phases = Object.keys(phased[0].phasesMs!);
    console.log("");
    console.log("Chunked variant, seconds per timed step by phase:");
    console.log("");
    console.log(`| N | ${phases.join(" | ")} |`);
    console.log(`| --- | ${phases.map(() => "---").join(" | ")} |`);
    for (const r of phased) console.log(`| ${r.n.toLocaleString("en-US")} | ${phases.map((p) => fmtS(r.phasesMs![p])).join(" | ")} |`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error && process.env.SCALE_DEBUG ? e.stack : e instanceof Error ? e.message : String(e));
    process.exit(1);
  });
}
