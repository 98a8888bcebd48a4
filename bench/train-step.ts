/**
 * Training-step benchmark: one full optimiser step of the `tiny` and `small`
 * presets exactly as src/train/trainer.ts runs it (toDevice -> gradStep ->
 * clipByGlobalNorm -> adamwUpdate, reading the loss parts and the gradient norm
 * and waiting for the updated parameters and moments), on a fixed synthetic
 * batch of random pixels (no data set is opened). Reported as images/s at the
 * median step time.
 *
 * Side by side, the same model and step in PyTorch (bench/torch_step.py) when a
 * python3 with torch is installed (e.g. Debian's python3-torch), with the same
 * number of threads; `formatTrainStepComparison` gives the jax-js / PyTorch ratio.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../src/data/index.ts";
import { initEngine } from "../src/engine/engine.ts";
import { blockUntilReady, tree } from "../src/engine/jax.ts";
import { localAttentionBias } from "../src/model/attention.ts";
import { initVision } from "../src/model/vision.ts";
import { adamwConfig, adamwInit, adamwUpdate, decayMaskFor } from "../src/train/adamw.ts";
import { clipByGlobalNorm } from "../src/train/clip.ts";
import { parseTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { PRESETS, type PresetName } from "../src/train/presets.ts";
import { createSession, disposeSession, maskSeed, type Session, toDevice } from "../src/train/session.ts";
import type { BenchResult, Timing } from "./harness.ts";
import { timeCall, withFlops } from "./harness.ts";
import { BACKWARD_FACTOR, sheetForwardFlops } from "./sheet.ts";

/** The presets timed, in order. */
export const TRAIN_STEP_PRESETS: PresetName[] = ["tiny", "small"];

/** Mask-seed purpose of the trainer's training batches (src/train/trainer.ts). */
const TRAIN_MASK = 1;

/** The PyTorch implementation of the step. */
const TORCH_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "torch_step.py");

/** Printed when no PyTorch is available. */
export const TORCH_SKIPPED = "PyTorch comparison skipped: no python3 with torch (apt-get install python3-torch)";

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

/** A fixed batch of `batch` random images [B, H, W, C] with pixels in [0, 1). */
function syntheticImages(config: TrainConfig, seed: number): Float32Array {
  const { image_size: s, channels: c } = config.vision;
  const rng = new Rng(seed);
  const out = new Float32Array(config.batch_size * s * s * c);
  for (let i = 0; i < out.length; i++) out[i] = rng.next();
  return out;
}

/** Time the jax-js training step of one preset. */
async function timeJaxStep(session: Session, repeats: number): Promise<Timing> {
  const { config, vision } = session;
  if (vision.task !== "mim" || config.accum_steps !== 1) throw new Error("benchTrainStep: expects a MIM preset without accumulation");
  const host = {
    images: syntheticImages(config, 12345),
    labels: null,
    size: config.batch_size,
    indices: Array.from({ length: config.batch_size }, (_, i) => i),
  };
  let params = initVision(session.sheet, vision, session.geometry, config.seed);
  let opt = adamwInit(params);
  const decayMask = decayMaskFor(params);
  const optim = adamwConfig({ ...config.optim, lr: config.optim.lr });
  let step = 0;
  try {
    return await timeCall(async () => {
      const batch = toDevice(session, host, maskSeed(config.seed, TRAIN_MASK, step, 0));
      // the metrics come back as host numbers, as the trainer reads them every step
      let { grads: g } = await session.compiled.gradStep(params, batch, 0);
      if (config.optim.clip_norm !== null) {
        const clipped = clipByGlobalNorm(g, config.optim.clip_norm);
        g = clipped.grads;
        await clipped.norm.data();
      }
      ({ params, state: opt } = adamwUpdate(params, g, opt, config.optim.lr, optim, decayMask));
      await blockUntilReady([params, opt.mu, opt.nu]);
      step++;
    }, repeats);
  } finally {
    tree.dispose([params, opt.mu, opt.nu]);
  }
}

/** The step's config for bench/torch_step.py. */
function torchConfig(session: Session, repeats: number, threads: number): Record<string, unknown> {
  const { sheet, vision, layout, config, geometry } = session;
  const attnBias =
    sheet.attn_bias_init === "local"
      ? Array.from(localAttentionBias(geometry.distances, sheet.attn_bias_sigma), (v) => Math.round(v * 1e6) / 1e6)
      : null;
  return {
    num_columns: sheet.num_columns,
    dim: sheet.dim,
    qk_dim: sheet.qk_dim,
    mlp_dim: sheet.mlp_dim,
    depth: sheet.depth,
    skip_attn: sheet.skip_attn,
    attn_scale: sheet.attn_scale,
    norm_eps: sheet.norm_eps,
    image_size: vision.image_size,
    patch_size: vision.patch_size,
    channels: vision.channels,
    inject: vision.inject,
    learned_init_state: vision.learned_init_state,
    input_start: layout.inputArea.start,
    input_end: layout.inputArea.end,
    output_start: layout.outputArea.start,
    output_end: layout.outputArea.end,
    attn_bias_init: attnBias,
    batch_size: config.batch_size,
    mask_ratio: config.mask_ratio,
    lr: config.optim.lr,
    beta1: config.optim.beta1,
    beta2: config.optim.beta2,
    eps: config.optim.eps,
    weight_decay: config.optim.weight_decay,
    clip_norm: config.optim.clip_norm,
    wiring_lambda: config.wiring.lambda,
    repeats,
    seed: config.seed,
    threads,
  };
}

/** What bench/torch_step.py prints. */
interface TorchOutput {
  torch_version: string;
  python: string;
  threads: number;
  openblas_coretype: string | null;
  omp_wait_policy: string | null;
  blas: string | null;
  first_call_ms: number;
  times_ms: number[];
  median_ms: number;
  min_ms: number;
  max_ms: number;
  images_per_second: number;
  peak_rss_mib: number;
  rss_after_warmup_mib: number;
  rss_after_repeats_mib: number;
}

/** A python3 that imports torch: Debian's /usr/bin/python3 first, then python3 on PATH; null if none. */
let pythonFound: string | null | undefined;
function findTorchPython(): string | null {
  if (pythonFound !== undefined) return pythonFound;
  pythonFound = null;
  for (const exe of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(exe, ["-c", "import torch"], { stdio: "ignore", timeout: 120_000 });
    if (r.status === 0) {
      pythonFound = exe;
      break;
    }
  }
  return pythonFound;
}

/**
 * Environment of the PyTorch process: the same thread count as jax-js for
 * OpenMP and OpenBLAS; OpenMP threads that sleep rather than spin while
 * waiting (unless OMP_WAIT_POLICY is set already: on a 2-core VM with any other
 * load, spinning made the step 2-10x slower); and OpenBLAS told the CPU's kind
 * where it has AVX-512, which Debian's OpenBLAS 0.3.21 misdetects (shared/ENGINE.md).
 */
function torchEnv(threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  env.OMP_WAIT_POLICY ??= "PASSIVE";
  let avx512 = false;
  try {
    avx512 = /^flags\s*:.*\bavx512f\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    // not Linux: leave OpenBLAS to detect the CPU
  }
  if (avx512) env.OPENBLAS_CORETYPE = "SkylakeX";
  else delete env.OPENBLAS_CORETYPE;
  return env;
}

/** Run the PyTorch step; null (with a message on stderr) when it fails. */
function runTorchStep(python: string, config: Record<string, unknown>, threads: number, name: string): TorchOutput | null {
  const r = spawnSync(python, [TORCH_SCRIPT], {
    input: JSON.stringify(config),
    env: torchEnv(threads),
    encoding: "utf8",
    maxBuffer: 64 * 2 ** 20,
    timeout: 30 * 60_000,
  });
  const lines = (r.stdout ?? "").trim().split("\n");
  if (r.status !== 0 || lines.length === 0) {
    const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}: ${(r.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`;
    console.warn(`PyTorch ${name} failed (${why}); no comparison for it`);
    return null;
  }
  return JSON.parse(lines[lines.length - 1]) as TorchOutput;
}

/** Presets whose jax-js step failed in the last benchTrainStep run, with the error. */
const jaxFailures = new Map<PresetName, string>();

/**
 * Benchmark the training step of each preset in jax-js and, where available,
 * PyTorch. Rows are named "train step PRESET (jax-js)" and "train step PRESET
 * (PyTorch)"; their workload carries `images_per_second` and `threads`.
 */
export async function benchTrainStep(ctx: { repeats: number; onStart?: (name: string) => void }): Promise<BenchResult[]> {
  const info = await initEngine();
  const results: BenchResult[] = [];
  jaxFailures.clear();
  const python = findTorchPython();
  if (python === null) console.log(TORCH_SKIPPED);
  const torchThreads = Math.max(1, info.threads);

  for (const preset of TRAIN_STEP_PRESETS) {
    // one optimiser step on one micro-batch (a preset's gradient accumulation is not timed)
    const config = parseTrainConfig({ ...PRESETS[preset], accum_steps: 1 });
    const session = createSession(config);
    const flops = trainStepFlops(session);
    const { sheet, vision } = session;
    const workload = {
      kind: "train step",
      preset,
      batch: config.batch_size,
      image: `${vision.image_size}x${vision.image_size}x${vision.channels}`,
      patch: vision.patch_size,
      num_columns: sheet.num_columns,
      dim: sheet.dim,
      qk_dim: sheet.qk_dim,
      mlp_dim: sheet.mlp_dim,
      depth: sheet.depth,
      task: vision.task,
      mask_ratio: config.mask_ratio,
      step: "toDevice + value-and-grad + clip + AdamW",
      dtype: "float32",
    };
    const flopText = "3 x forward (sheet + patch embedding + decoder matmuls), multiply-add = 2 FLOPs";
    try {
      const name = `train step ${preset} (jax-js)`;
      ctx.onStart?.(name);
      const timing = await timeJaxStep(session, ctx.repeats);
      const ips = config.batch_size / (timing.medianMs / 1000);
      results.push(withFlops(name, { ...workload, engine: "jax-js", threads: info.threads, images_per_second: ips }, timing, flops, flopText));
    } catch (error) {
      // E.g. the Wasm heap's 4 GiB limit: report it and go on (the PyTorch side still runs).
      const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      jaxFailures.set(preset, why);
      console.warn(`train step ${preset} (jax-js) failed: ${why}`);
    } finally {
      disposeSession(session);
    }

    if (python === null) continue;
    const name = `train step ${preset} (PyTorch)`;
    ctx.onStart?.(name);
    const out = runTorchStep(python, torchConfig(session, ctx.repeats, torchThreads), torchThreads, name);
    if (!out) continue;
    const timing: Timing = {
      firstCallMs: out.first_call_ms,
      timesMs: out.times_ms,
      medianMs: out.median_ms,
      minMs: out.min_ms,
      maxMs: out.max_ms,
      peakRssMiB: out.peak_rss_mib,
      rssAfterWarmupMiB: out.rss_after_warmup_mib,
      rssAfterRepeatsMiB: out.rss_after_repeats_mib,
    };
    results.push(
      withFlops(
        name,
        {
          ...workload,
          engine: `torch ${out.torch_version} (python ${out.python}, ${python})`,
          threads: out.threads,
          openblas_coretype: out.openblas_coretype,
          omp_wait_policy: out.omp_wait_policy,
          blas: out.blas,
          images_per_second: out.images_per_second,
          rss: "of the python process",
        },
        timing,
        flops,
        flopText,
      ),
    );
  }
  return results;
}

/** Lines comparing jax-js and PyTorch images/s per preset, from benchTrainStep's rows (and its failures). */
export function formatTrainStepComparison(results: BenchResult[]): string[] {
  const rows = results.filter((r) => r.workload.kind === "train step");
  const ips = (r: BenchResult) => r.workload.images_per_second as number;
  const lines: string[] = [];
  for (const preset of TRAIN_STEP_PRESETS) {
    const jax = rows.find((r) => r.workload.preset === preset && r.workload.engine === "jax-js");
    const torch = rows.find((r) => r.workload.preset === preset && r.workload.engine !== "jax-js");
    const failed = jaxFailures.get(preset);
    if (!jax && !torch && !failed) continue;
    const parts: string[] = [];
    if (jax) parts.push(`jax-js ${ips(jax).toFixed(1)} img/s (${jax.workload.threads} threads)`);
    else parts.push(`jax-js FAILED (${failed ?? "not run"})`);
    if (torch) {
      const w = torch.workload;
      const notes = [
        String(w.engine).split(" (")[0],
        `${w.threads} threads`,
        ...(w.blas ? [String(w.blas)] : []),
        ...(w.openblas_coretype ? [`OPENBLAS_CORETYPE=${w.openblas_coretype}`] : []),
        ...(w.omp_wait_policy ? [`OMP_WAIT_POLICY=${w.omp_wait_policy}`] : []),
      ];
      parts.push(`PyTorch ${ips(torch).toFixed(1)} img/s (${notes.join(", ")})`);
    } else {
      parts.push("no PyTorch comparison");
    }
    const ratio = jax && torch ? `; jax-js / PyTorch = ${(ips(jax) / ips(torch)).toFixed(2)}` : "";
    lines.push(`train step ${preset}: ${parts.join(", ")}${ratio}`);
  }
  return lines;
}
