/**
 * One row of the training-step benchmark, in a process of its own (so its peak RSS is its own):
 *
 *   node --import tsx bench/step-row.ts '{"workload": "tiny", "backend": "native", "repeats": 7}'
 *
 * prints one JSON line: the timing, the process's peak RSS (VmHWM) and the engine. Workloads
 * (bench/train-step.ts): `reference` (the reference sheet's training step: states in, MSE on the
 * final states, AdamW), `large` (the same step on a 64 x 64 sheet, 4,096 dense columns) and the
 * presets' full training steps (toDevice -> gradStep -> clip ->
 * AdamW, exactly as src/train/trainer.ts runs them, on a fixed synthetic batch).
 */
import { readFileSync } from "node:fs";
import { chooseBackend, prepareBackend, type Backend } from "../src/engine/backend.ts";
import type { SheetEngine } from "../src/engine/sheet-engine.ts";
import { webgpuEngineReady } from "../src/engine/webgpu/engine.ts";
import { initEngine } from "../src/engine/engine.ts";
import { blockUntilReady, jit, numpy as np, tree, valueAndGrad } from "../src/engine/jax.ts";
import { sheetLeaves } from "../src/engine/native-sheet.ts";
import { resolveSheetConfig, type SheetConfig } from "../src/model/config.ts";
import type { SheetParams } from "../src/model/params.ts";
import { initSheet, sheetApply } from "../src/model/sheet.ts";
import { hostSheetLeaves, nativeSheetConfig, sheetLeaf } from "../src/model/sheet-native.ts";
import { initVision } from "../src/model/vision.ts";
import { Rng } from "../src/data/index.ts";
import { adamwConfig, adamwInit, adamwUpdate, decayMaskFor, defaultNoDecay } from "../src/optim/adamw.ts";
import { createSession, disposeSession, maskSeed, toDevice } from "../src/train/session.ts";
import { timeCall, type Timing } from "./harness.ts";
import { LARGE_SHEET, REFERENCE_BATCH, REFERENCE_OPTIM, REFERENCE_SHEET, stepConfig, type StepWorkload } from "./train-step.ts";

/** What a row prints. */
export interface RowOutput {
  timing: Timing;
  /** Peak resident set of the process (VmHWM), MiB. */
  peak_rss_mib: number;
  engine: string;
  /** webgpu: bytes of the sheet's device buffers (kernel buffers, not the resident state's), as the sheet counts them; Dawn reports no device memory use. */
  device_buffer_mib?: number;
  threads: number;
  first_loss: number;
  last_loss: number;
}

/** The process's peak resident set (VmHWM) in MiB. */
function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

function randomHost(length: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length }, () => (rng.next() * 2 - 1) * scale);
}

type RowTiming = Omit<RowOutput, "peak_rss_mib" | "engine" | "threads">;

/** The reference sheet step (or `large`'s): x [B, N, D] in, loss mean((x_final - target)^2), AdamW on every sheet parameter. */
async function referenceStep(backend: Backend, repeats: number, large = false): Promise<RowTiming> {
  const { config, geometry } = resolveSheetConfig(large ? LARGE_SHEET : REFERENCE_SHEET);
  const size = REFERENCE_BATCH * config.num_columns * config.dim;
  const x = randomHost(size, 1);
  const target = randomHost(size, 2);
  const params = initSheet(config, geometry, 0);
  if (backend === "webgpu") return referenceWebGPU(webgpuEngine(), config, params, x, target, repeats);
  return backend === "native" ? referenceNative(config, params, x, target, repeats) : referenceJax(config, params, x, target, repeats);
}

/** The WebGPU engine, or an error (never a silent fallback to another backend). Call after prepareBackend("webgpu"). */
function webgpuEngine(): SheetEngine & { resident: NonNullable<SheetEngine["resident"]> } {
  const ready = webgpuEngineReady();
  if (ready === null || "error" in ready) throw new Error(`backend webgpu: ${ready === null ? "the device was not acquired" : ready.error}`);
  return ready.engine;
}

/**
 * As the webgpu train state keeps the sheet: parameters, moments and the gradient accumulator
 * resident on the device (src/engine/webgpu/resident.ts); the final states cross to the host for
 * the loss and its cotangent crosses back, as in the trainer. Consumes `params`.
 */
async function referenceWebGPU(engine: ReturnType<typeof webgpuEngine>, config: SheetConfig, params: SheetParams, x: Float32Array, target: Float32Array, repeats: number): Promise<RowTiming> {
  const kernel = engine.createSheet(nativeSheetConfig(config, { inject: "first" }, REFERENCE_BATCH));
  const names = sheetLeaves(config);
  const host = await hostSheetLeaves(params, names);
  const optim = adamwConfig(REFERENCE_OPTIM);
  const weightDecay = names.map((name) => (defaultNoDecay(`sheet.${name}`, sheetLeaf(params, name).shape) ? 0 : optim.weight_decay));
  tree.dispose(params);
  const zeros = () => host.map((p) => new Float32Array(p.length));
  const resident = engine.resident({ params: host, m: zeros(), v: zeros() });
  const dx = new Float32Array(x.length);
  const dx0 = new Float32Array(x.length);
  const losses: number[] = [];
  let t = 0;
  try {
    const timing = await timeCall(async () => {
      const out = await resident.forward(kernel, { x0: x, drive: null, connectivity: null, wiringWeights: null, batch: REFERENCE_BATCH, train: true, attn: null });
      let loss = 0;
      for (let i = 0; i < x.length; i++) {
        const e = out.x[i] - target[i];
        loss += e * e;
        dx[i] = (2 * e) / x.length;
      }
      losses.push(loss / x.length);
      await resident.backward(kernel, { dx, wiringCoef: 0, activationCoef: 0, dx0, ddrive: null });
      await resident.adamw({ lr: optim.lr, beta1: optim.beta1, beta2: optim.beta2, eps: optim.eps, weightDecay, step: ++t });
    }, repeats);
    if (!(await resident.finite())) throw new Error("webgpu reference step: parameters not finite");
    deviceBufferBytes = (kernel as { info?: () => { bytes: number } }).info?.().bytes ?? null;
    return { timing, first_loss: losses[0], last_loss: losses[losses.length - 1] };
  } finally {
    resident.dispose();
    kernel.dispose();
  }
}

/** Bytes of the last webgpu sheet's device buffers (null when none ran). */
let deviceBufferBytes: number | null = null;

/** As the native train state keeps the sheet: parameters and moments on the host, updated by the addon's AdamW. Consumes `params`. */
async function referenceNative(config: SheetConfig, params: SheetParams, x: Float32Array, target: Float32Array, repeats: number): Promise<RowTiming> {
  const { addon } = chooseBackend("native");
  const kernel = addon!.createSheet(nativeSheetConfig(config, { inject: "first" }, REFERENCE_BATCH));
  const names = sheetLeaves(config);
  const host = await hostSheetLeaves(params, names);
  const optim = adamwConfig(REFERENCE_OPTIM);
  const weightDecay = names.map((name) => (defaultNoDecay(`sheet.${name}`, sheetLeaf(params, name).shape) ? 0 : optim.weight_decay));
  tree.dispose(params);
  const zeros = () => host.map((p) => new Float32Array(p.length));
  const [m, v, grads] = [zeros(), zeros(), zeros()];
  const dx = new Float32Array(x.length);
  const dx0 = new Float32Array(x.length);
  const losses: number[] = [];
  let t = 0;
  try {
    const timing = await timeCall(async () => {
      const out = kernel.forward({ params: host, x0: x, drive: null, connectivity: null, wiringWeights: null, batch: REFERENCE_BATCH, train: true, attn: null });
      let loss = 0;
      for (let i = 0; i < x.length; i++) {
        const e = out.x[i] - target[i];
        loss += e * e;
        dx[i] = (2 * e) / x.length;
      }
      losses.push(loss / x.length);
      kernel.backward({ dx, wiringCoef: 0, activationCoef: 0, grads, dx0, ddrive: null });
      addon!.adamw({ params: host, grads, m, v, lr: optim.lr, beta1: optim.beta1, beta2: optim.beta2, eps: optim.eps, weightDecay, step: ++t });
    }, repeats);
    return { timing, first_loss: losses[0], last_loss: losses[losses.length - 1] };
  } finally {
    kernel.dispose();
  }
}

/** jit(valueAndGrad) of the jax-js sheet and jax-js AdamW. Consumes `params`. */
async function referenceJax(config: SheetConfig, params: SheetParams, xHost: Float32Array, targetHost: Float32Array, repeats: number): Promise<RowTiming> {
  const shape = [REFERENCE_BATCH, config.num_columns, config.dim];
  const x = np.array(xHost).reshape(shape);
  const target = np.array(targetHost).reshape(shape);
  const fn = jit(
    valueAndGrad((p: SheetParams, input: np.Array, t: np.Array) => {
      const { x: out, attn } = sheetApply(p, input, config);
      attn.dispose();
      return np.square(out.sub(t)).mean();
    }),
  );
  let opt = adamwInit(params);
  const mask = decayMaskFor(params);
  const optim = adamwConfig(REFERENCE_OPTIM);
  const losses: number[] = [];
  try {
    const timing = await timeCall(async () => {
      const [loss, grads] = fn(tree.ref(params), x.ref, target.ref);
      losses.push((await loss.data())[0]);
      ({ params, state: opt } = adamwUpdate(params, grads, opt, optim.lr, optim, mask));
      await blockUntilReady([params, opt.mu, opt.nu]);
    }, repeats);
    return { timing, first_loss: losses[0], last_loss: losses[losses.length - 1] };
  } finally {
    fn.dispose();
    tree.dispose([x, target, params, opt.mu, opt.nu]);
  }
}

/** A preset's training step exactly as the trainer runs it, on a fixed synthetic batch. */
async function presetStep(workload: "tiny" | "small", backend: Backend, repeats: number): Promise<RowTiming> {
  const config = stepConfig(workload);
  if (backend === "webgpu") webgpuEngine();
  const session = createSession(config, { backend });
  if (session.backend !== backend) throw new Error(`backend ${backend} was asked for, the session runs on ${session.backend}`);
  const { vision } = session;
  const s = vision.image_size;
  const host = {
    images: Float32Array.from(randomHost(config.batch_size * s * s * vision.channels, 12345), (v) => (v + 1) / 2),
    labels: null,
    size: config.batch_size,
    indices: Array.from({ length: config.batch_size }, (_, i) => i),
  };
  const params = initVision(session.sheet, vision, session.geometry, config.seed, session.connectivity);
  const state = await session.compiled.trainState(params, adamwInit(params), {
    adamw: adamwConfig({ ...config.optim, lr: config.optim.lr }),
    clipNorm: config.optim.clip_norm,
    noDecay: defaultNoDecay,
    lrScale: () => 1,
  });
  const losses: number[] = [];
  let step = 0;
  try {
    const timing = await timeCall(async () => {
      await state.accumulate(toDevice(session, host, maskSeed(config.seed, 1, step, 0)), step);
      await state.update(config.optim.lr);
      const { metrics, finite } = await state.read(); // as the loop with log_every 1
      losses.push(metrics.loss);
      if (!finite) throw new Error(`step ${step + 1} diverged`);
      step++;
    }, repeats);
    return { timing, first_loss: losses[0], last_loss: losses[losses.length - 1] };
  } finally {
    state.dispose();
    disposeSession(session);
  }
}

/** One row: the workload on the backend (webgpu: the device is acquired first, and its absence is an error). */
export async function runStepRow(args: { workload: StepWorkload; backend: Backend; repeats: number }): Promise<RowOutput> {
  const info = await initEngine();
  await prepareBackend(args.backend);
  const row =
    args.workload === "reference" || args.workload === "large"
      ? await referenceStep(args.backend, args.repeats, args.workload === "large")
      : await presetStep(args.workload, args.backend, args.repeats);
  const native = args.backend === "native" ? chooseBackend("native").addon!.info() : null;
  const webgpu = args.backend === "webgpu" ? webgpuEngineReady() : null;
  return {
    ...row,
    peak_rss_mib: peakRssMiB(),
    engine: native ? `native (${native.simd})` : webgpu && "engine" in webgpu ? `webgpu (${webgpu.engine.info().device})` : `jax-js ${info.version} (Wasm)`,
    threads: native ? native.threads : info.threads,
    ...(deviceBufferBytes !== null ? { device_buffer_mib: deviceBufferBytes / 2 ** 20 } : {}),
  };
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? "{}") as { workload: StepWorkload; backend: Backend; repeats: number };
  process.stdout.write(`${JSON.stringify(await runStepRow(args))}\n`);
}

// run as a script (not when imported, e.g. by bench/gpu-bench.ts or its bundle)
if (/step-row\.[cm]?[jt]s$/.test(process.argv[1] ?? "")) await main();
