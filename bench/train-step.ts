/**
 * Training-step benchmark, side by side in one run: each workload on the native backend, on
 * jax-js, and in PyTorch (bench/torch_step.py, when a python with torch exists), with the same
 * thread count. Workloads:
 *   - `reference`: the reference sheet (batch 32, 256 columns on 16 x 16, D 128, qk 32, MLP 128,
 *     depth 4): states in, MSE on the final states, backward, AdamW on every sheet parameter;
 *   - `tiny`, `small`: the presets' full MIM training steps exactly as src/train/trainer.ts runs
 *     them (toDevice -> gradStep -> clip -> AdamW), at batch 32 without gradient accumulation,
 *     on a fixed synthetic batch.
 *   - `large` (not in `npm run bench` by default; bench/gpu-bench.ts): the reference step on a
 *     64 x 64 sheet, 4,096 dense columns (attention maps [B, N, N]), attention bias zeros.
 * Backends: native and jax-js by default; env BENCH_BACKENDS (comma-separated, e.g.
 * "native,jax,webgpu") picks others, webgpu included (its rows fail loudly without an adapter).
 * Every native / jax-js / webgpu row runs in its own process (bench/step-row.ts), so its peak RSS is its
 * own. Reported as median step time, images/s and the ratio PyTorch time / native time.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Backend, parseBackend } from "../src/engine/backend.ts";
import { initEngine } from "../src/engine/engine.ts";
import { loadNativeSheet } from "../src/engine/native-sheet.ts";
import { localAttentionBias } from "../src/model/attention.ts";
import { resolveSheetConfig, type SheetConfigInput } from "../src/model/config.ts";
import { parseTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { PRESETS } from "../src/train/presets.ts";
import { createSession, disposeSession, type Session } from "../src/train/session.ts";
import type { BenchResult } from "./harness.ts";
import { withFlops } from "./harness.ts";
import { BACKWARD_FACTOR, REFERENCE_SHEET, sheetForwardFlops } from "./sheet.ts";
import type { RowOutput } from "./step-row.ts";
import { describeTorch, findTorchPython, runTorchStep, TORCH_SKIPPED, torchTiming } from "./torch.ts";
import { distanceMatrix } from "../src/geometry/metric.ts";

export { REFERENCE_SHEET };

/** The workloads timed by `npm run bench`, in order. */
export const STEP_WORKLOADS = ["reference", "tiny", "small"] as const;
/** Every workload a row can run (bench/gpu-bench.ts times `large` too). */
export const ALL_STEP_WORKLOADS = ["reference", "tiny", "small", "large"] as const;
export type StepWorkload = (typeof ALL_STEP_WORKLOADS)[number];

/**
 * The 4,096-column sheet: the reference sheet's dims on a 64 x 64 grid, dense (every column
 * attends to all 4,096: maps [B, N, N]; the webgpu sheet holds them a chunk of the batch at a
 * time, mapBytes default 256 MiB). Attention bias starts at zeros so that PyTorch's config need
 * not carry the N x N local bias (16.7 M floats); the arithmetic is the same.
 */
export const LARGE_SHEET: SheetConfigInput = { ...REFERENCE_SHEET, geometry: { kind: "grid", height: 64, width: 64 }, attn_bias_init: "zeros" };

/** The backends `npm run bench` times: env BENCH_BACKENDS (comma-separated), default native and jax. */
export function benchBackends(): Backend[] {
  const env = process.env.BENCH_BACKENDS;
  if (!env) return ["native", "jax"];
  return env.split(",").map((s) => parseBackend(s.trim(), "BENCH_BACKENDS"));
}

/** Batch and optimiser of the reference sheet step. */
export const REFERENCE_BATCH = 32;
export const REFERENCE_OPTIM = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.05 };

/** A preset's training config for the benchmark: batch 32, no gradient accumulation. */
export function stepConfig(preset: "tiny" | "small"): TrainConfig {
  return parseTrainConfig({ ...PRESETS[preset], batch_size: 32, accum_steps: 1 });
}

/**
 * Analytic FLOPs of one training step (multiply-add = 2 FLOPs, matmuls only):
 * 3 x (sheet forward + patch embedding + per-column decoder).
 */
export function trainStepFlops(session: Session): number {
  const { sheet, layout, config } = session;
  const b = config.batch_size * config.accum_steps;
  const embed = 2 * b * layout.numPatches * layout.patchDim * sheet.dim;
  const outCols = layout.outputArea.end - layout.outputArea.start;
  const decoder = session.vision.task === "mim" ? 2 * b * outCols * sheet.dim * layout.patchDim : 0;
  return (1 + BACKWARD_FACTOR) * (sheetForwardFlops(sheet, b) + embed + decoder);
}

const STEP_ROW = path.join(path.dirname(fileURLToPath(import.meta.url)), "step-row.ts");

/** Run one row in its own process; null (with the reason on stderr) when it fails, e.g. jax-js's 4 GiB heap. */
function runRow(workload: StepWorkload, backend: Backend, repeats: number): RowOutput | { failed: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", STEP_ROW, JSON.stringify({ workload, backend, repeats })], {
    encoding: "utf8",
    maxBuffer: 64 * 2 ** 20,
    timeout: 30 * 60_000,
    env: { ...process.env, COLUMNFORMER_BACKEND: backend },
  });
  const lines = (r.stdout ?? "").trim().split("\n");
  if (r.status !== 0 || !lines[lines.length - 1]?.startsWith("{")) {
    const lines = (r.stderr ?? "").split("\n").map((l) => l.trim());
    const error = lines.filter((l) => /Error\b/.test(l) && !l.startsWith("at ")).pop() ?? lines.filter((l) => l !== "").pop() ?? "";
    return { failed: r.error ? r.error.message : `exit ${r.status ?? r.signal}: ${error}` };
  }
  return JSON.parse(lines[lines.length - 1]) as RowOutput;
}

/** The PyTorch config of a workload (bench/torch_step.py; `device` "cpu" or "cuda"). */
export function torchConfig(workload: StepWorkload, repeats: number, device: "cpu" | "cuda" = "cpu"): Record<string, unknown> {
  const optim = (o: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number }) => ({ lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weight_decay: o.weight_decay });
  const sheetFields = (sheet: ReturnType<typeof resolveSheetConfig>["config"], distances: Float32Array) => ({
    num_columns: sheet.num_columns,
    dim: sheet.dim,
    qk_dim: sheet.qk_dim,
    mlp_dim: sheet.mlp_dim,
    depth: sheet.depth,
    skip_attn: sheet.skip_attn,
    attn_scale: sheet.attn_scale,
    norm_eps: sheet.norm_eps,
    attn_bias_init: sheet.attn_bias_init === "local" ? Array.from(localAttentionBias(distances, sheet.attn_bias_sigma), (v) => Math.round(v * 1e6) / 1e6) : null,
  });
  if (workload === "reference" || workload === "large") {
    const { config, geometry } = resolveSheetConfig(workload === "large" ? LARGE_SHEET : REFERENCE_SHEET);
    // the image fields only shape unused front-end parameters
    return { workload: "sheet", ...sheetFields(config, distanceMatrix(geometry)), patch_size: 1, channels: 1, output_start: 0, output_end: 1, learned_init_state: false, batch_size: REFERENCE_BATCH, ...optim(REFERENCE_OPTIM), clip_norm: null, repeats, seed: 0, device };
  }
  const config = stepConfig(workload);
  const { config: sheet, geometry } = resolveSheetConfig(config.sheet);
  const session = createSession(config, { backend: "jax" });
  const { layout, vision } = session;
  disposeSession(session);
  return {
    ...sheetFields(sheet, distanceMatrix(geometry)),
    image_size: vision.image_size,
    patch_size: vision.patch_size,
    channels: vision.channels,
    inject: vision.inject,
    learned_init_state: vision.learned_init_state,
    input_start: layout.inputArea.start,
    input_end: layout.inputArea.end,
    output_start: layout.outputArea.start,
    output_end: layout.outputArea.end,
    batch_size: config.batch_size,
    mask_ratio: config.mask_ratio,
    ...optim(config.optim),
    clip_norm: config.optim.clip_norm,
    wiring_lambda: config.wiring.lambda,
    repeats,
    seed: config.seed,
    device,
  };
}

/** Workload description and FLOPs of a workload. */
export function describeWorkload(workload: StepWorkload): { info: Record<string, unknown>; flops: number; convention: string; batch: number } {
  if (workload === "reference" || workload === "large") {
    const { config } = resolveSheetConfig(workload === "large" ? LARGE_SHEET : REFERENCE_SHEET);
    return {
      info: { kind: "train step", workload, batch: REFERENCE_BATCH, num_columns: config.num_columns, dim: config.dim, qk_dim: config.qk_dim, mlp_dim: config.mlp_dim, depth: config.depth, step: "sheet forward + backward of MSE on the final states + AdamW" },
      flops: (1 + BACKWARD_FACTOR) * sheetForwardFlops(config, REFERENCE_BATCH),
      convention: "3 x sheet forward (matmuls only, multiply-add = 2 FLOPs)",
      batch: REFERENCE_BATCH,
    };
  }
  const config = stepConfig(workload);
  const session = createSession(config, { backend: "jax" });
  const { sheet, vision } = session;
  const flops = trainStepFlops(session);
  disposeSession(session);
  return {
    info: { kind: "train step", workload, batch: config.batch_size, image: `${vision.image_size}x${vision.image_size}x${vision.channels}`, num_columns: sheet.num_columns, dim: sheet.dim, qk_dim: sheet.qk_dim, mlp_dim: sheet.mlp_dim, depth: sheet.depth, task: vision.task, step: "toDevice + value-and-grad + clip + AdamW" },
    flops,
    convention: "3 x forward (sheet + patch embedding + decoder matmuls), multiply-add = 2 FLOPs",
    batch: config.batch_size,
  };
}

/** Rows that failed in the last run: "workload engine" -> reason. */
const failures = new Map<string, string>();

/** Benchmark every workload on native, jax-js and PyTorch. Rows are named "train step WORKLOAD (ENGINE)". */
export async function benchTrainStep(ctx: { repeats: number; onStart?: (name: string) => void }): Promise<BenchResult[]> {
  const info = await initEngine();
  const results: BenchResult[] = [];
  failures.clear();
  const python = findTorchPython();
  if (python === null) console.log(TORCH_SKIPPED);
  const nativeAvailable = "addon" in loadNativeSheet();
  const threads = Math.max(1, info.threads);
  for (const workload of STEP_WORKLOADS) {
    const { info: desc, flops, convention, batch } = describeWorkload(workload);
    for (const backend of benchBackends()) {
      const name = `train step ${workload} (${backend === "jax" ? "jax-js" : backend})`;
      if (backend === "native" && !nativeAvailable) {
        failures.set(`${workload} native`, "native addon not built");
        continue;
      }
      ctx.onStart?.(name);
      const row = runRow(workload, backend, ctx.repeats);
      if ("failed" in row) {
        failures.set(`${workload} ${backend}`, row.failed);
        console.warn(`${name} failed: ${row.failed}`);
        continue;
      }
      const timing = { ...row.timing, peakRssMiB: row.peak_rss_mib };
      results.push(withFlops(name, { ...desc, backend, engine: row.engine, threads: row.threads, images_per_second: batch / (timing.medianMs / 1000), rss: "peak of the row's process (VmHWM)" }, timing, flops, convention));
    }
    if (python === null) continue;
    const name = `train step ${workload} (PyTorch)`;
    ctx.onStart?.(name);
    const out = runTorchStep(python, torchConfig(workload, ctx.repeats), threads, name);
    if (!out) continue;
    results.push(withFlops(name, { ...desc, backend: "torch", ...describeTorch(out, python), images_per_second: batch / (out.median_ms / 1000) }, torchTiming(out), flops, convention));
  }
  return results;
}

/** Lines comparing the engines per workload (median step, images/s, ratio PyTorch time / native time), from benchTrainStep's rows. */
export function formatTrainStepComparison(results: BenchResult[]): string[] {
  const rows = results.filter((r) => r.workload.kind === "train step");
  const lines: string[] = [];
  for (const workload of STEP_WORKLOADS) {
    const of = (backend: string) => rows.find((r) => r.workload.workload === workload && r.workload.backend === backend);
    const native = of("native");
    const jax = of("jax");
    const torch = of("torch");
    const cell = (r: BenchResult | undefined, label: string, key: string) =>
      r ? `${label} ${r.medianMs.toFixed(0)} ms (${(r.workload.images_per_second as number).toFixed(0)} img/s, peak RSS ${r.peakRssMiB.toFixed(0)} MiB)` : `${label} ${failures.has(key) ? `FAILED (${failures.get(key)})` : "not run"}`;
    const webgpu = of("webgpu");
    const parts = [cell(native, "native", `${workload} native`), cell(jax, "jax-js", `${workload} jax`)];
    if (webgpu || failures.has(`${workload} webgpu`)) parts.push(cell(webgpu, "webgpu", `${workload} webgpu`));
    if (torch) parts.push(`PyTorch ${torch.medianMs.toFixed(0)} ms (${torch.workload.engine}, ${torch.workload.threads} threads, ${torch.workload.blas})`);
    const ratios = [
      ...(native && torch ? [`PyTorch / native = ${(torch.medianMs / native.medianMs).toFixed(2)}`] : []),
      ...(native && jax ? [`jax-js / native = ${(jax.medianMs / native.medianMs).toFixed(2)}`] : []),
      ...(webgpu && torch ? [`webgpu / PyTorch = ${(webgpu.medianMs / torch.medianMs).toFixed(2)}`] : []),
    ];
    lines.push(`train step ${workload}: ${parts.join("; ")}${ratios.length ? `; ${ratios.join(", ")}` : ""}`);
  }
  return lines;
}
