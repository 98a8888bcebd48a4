/**
 * One row of the training-step benchmark, in a process of its own (so its peak RSS is its own):
 *
 *   node --import tsx bench/step-row.ts '{"workload": "tiny", "backend": "native", "repeats": 7}'
 *
 * prints one JSON line: the timing, the process's peak RSS (VmHWM) and the engine. Workloads
 * (bench/train-step.ts): `reference` (the reference sheet's training step: states in, MSE on the
 * final states, AdamW) and the presets' full training steps (toDevice -> gradStep -> clip ->
 * AdamW, exactly as src/train/trainer.ts runs them, on a fixed synthetic batch).
 */
import { readFileSync } from "node:fs";
import { chooseBackend, type Backend } from "../src/engine/backend.ts";
import { initEngine } from "../src/engine/engine.ts";
import { blockUntilReady, jit, numpy as np, tree, valueAndGrad } from "../src/engine/jax.ts";
import { sheetLeaves } from "../src/engine/native-sheet.ts";
import { resolveSheetConfig } from "../src/model/config.ts";
import type { SheetParams } from "../src/model/params.ts";
import { initSheet, sheetApply } from "../src/model/sheet.ts";
import { hostSheetLeaves, nativeSheetConfig, sheetLeaf } from "../src/model/sheet-native.ts";
import { initVision } from "../src/model/vision.ts";
import { Rng } from "../src/data/index.ts";
import { adamwConfig, adamwInit, adamwUpdate, decayMaskFor, mapParamLeaves } from "../src/train/adamw.ts";
import { clipByGlobalNorm } from "../src/train/clip.ts";
import { createSession, disposeSession, maskSeed, toDevice } from "../src/train/session.ts";
import { timeCall, type Timing } from "./harness.ts";
import { REFERENCE_BATCH, REFERENCE_OPTIM, REFERENCE_SHEET, stepConfig, type StepWorkload } from "./train-step.ts";

/** What a row prints. */
export interface RowOutput {
  timing: Timing;
  /** Peak resident set of the process (VmHWM), MiB. */
  peak_rss_mib: number;
  engine: string;
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

/** The reference sheet step: x [B, N, D] in, loss mean((x_final - target)^2), AdamW on every sheet parameter. */
async function referenceStep(backend: Backend, repeats: number): Promise<Omit<RowOutput, "peak_rss_mib" | "engine" | "threads">> {
  const { config, geometry } = resolveSheetConfig(REFERENCE_SHEET);
  const n = config.num_columns;
  const size = REFERENCE_BATCH * n * config.dim;
  const xHost = randomHost(size, 1);
  const targetHost = randomHost(size, 2);
  let params: SheetParams = initSheet(config, geometry, 0);
  let opt = adamwInit(params);
  const mask = decayMaskFor(params);
  const optim = adamwConfig(REFERENCE_OPTIM);
  const losses: number[] = [];
  let gradients: () => Promise<SheetParams>;
  let dispose = () => {};
  if (backend === "native") {
    const { addon } = chooseBackend("native");
    const kernel = addon!.createSheet(nativeSheetConfig(config, { inject: "first" }, REFERENCE_BATCH));
    const names = sheetLeaves(config);
    gradients = async () => {
      const out = kernel.forward({ params: await hostSheetLeaves(params, names), x0: xHost, drive: null, connectivity: null, wiringWeights: null, batch: REFERENCE_BATCH, train: true, attn: null });
      const dx = new Float32Array(size);
      let loss = 0;
      for (let i = 0; i < size; i++) {
        const e = out.x[i] - targetHost[i];
        loss += e * e;
        dx[i] = (2 * e) / size;
      }
      losses.push(loss / size);
      const grads = names.map((name) => new Float32Array(sheetLeaf(params, name).size));
      kernel.backward({ dx, wiringCoef: 0, activationCoef: 0, grads, dx0: new Float32Array(size), ddrive: null });
      const byName = new Map<string, Float32Array>(names.map((name, i) => [name, grads[i]]));
      return mapParamLeaves(params, (path, shape) => np.array(byName.get(path)!).reshape(shape), "reference grads") as unknown as SheetParams;
    };
    dispose = () => kernel.dispose();
  } else {
    const x = np.array(xHost).reshape([REFERENCE_BATCH, n, config.dim]);
    const target = np.array(targetHost).reshape([REFERENCE_BATCH, n, config.dim]);
    const fn = jit(valueAndGrad((p: SheetParams, input: np.Array, t: np.Array) => {
      const { x: out, attn } = sheetApply(p, input, config);
      attn.dispose();
      return np.square(out.sub(t)).mean();
    }));
    gradients = async () => {
      const [loss, grads] = fn(tree.ref(params), x.ref, target.ref);
      losses.push((await loss.data())[0]);
      return grads;
    };
    dispose = () => {
      fn.dispose();
      tree.dispose([x, target]);
    };
  }
  try {
    const timing = await timeCall(async () => {
      const grads = await gradients();
      ({ params, state: opt } = adamwUpdate(params, grads, opt, REFERENCE_OPTIM.lr, optim, mask));
      await blockUntilReady([params, opt.mu, opt.nu]);
    }, repeats);
    return { timing, first_loss: losses[0], last_loss: losses[losses.length - 1] };
  } finally {
    dispose();
    tree.dispose([params, opt.mu, opt.nu]);
  }
}

/** A preset's training step exactly as the trainer runs it, on a fixed synthetic batch. */
async function presetStep(workload: Exclude<StepWorkload, "reference">, backend: Backend, repeats: number): Promise<Omit<RowOutput, "peak_rss_mib" | "engine" | "threads">> {
  const config = stepConfig(workload);
  const session = createSession(config, { backend });
  const { vision } = session;
  const s = vision.image_size;
  const host = {
    images: Float32Array.from(randomHost(config.batch_size * s * s * vision.channels, 12345), (v) => (v + 1) / 2),
    labels: null,
    size: config.batch_size,
    indices: Array.from({ length: config.batch_size }, (_, i) => i),
  };
  let params = initVision(session.sheet, vision, session.geometry, config.seed, session.connectivity);
  let opt = adamwInit(params);
  const mask = decayMaskFor(params);
  const optim = adamwConfig({ ...config.optim, lr: config.optim.lr });
  const losses: number[] = [];
  let step = 0;
  try {
    const timing = await timeCall(async () => {
      const batch = toDevice(session, host, maskSeed(config.seed, 1, step, 0));
      let { metrics, grads } = await session.compiled.gradStep(params, batch, step);
      losses.push(metrics.loss);
      if (config.optim.clip_norm !== null) {
        const clipped = clipByGlobalNorm(grads, config.optim.clip_norm);
        grads = clipped.grads;
        await clipped.norm.data();
      }
      ({ params, state: opt } = adamwUpdate(params, grads, opt, config.optim.lr, optim, mask));
      await blockUntilReady([params, opt.mu, opt.nu]);
      step++;
    }, repeats);
    return { timing, first_loss: losses[0], last_loss: losses[losses.length - 1] };
  } finally {
    tree.dispose([params, opt.mu, opt.nu]);
    disposeSession(session);
  }
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? "{}") as { workload: StepWorkload; backend: Backend; repeats: number };
  const info = await initEngine();
  const row = args.workload === "reference" ? await referenceStep(args.backend, args.repeats) : await presetStep(args.workload, args.backend, args.repeats);
  const native = args.backend === "native" ? chooseBackend("native").addon!.info() : null;
  const out: RowOutput = {
    ...row,
    peak_rss_mib: peakRssMiB(),
    engine: native ? `native (${native.simd})` : `jax-js ${info.version} (Wasm)`,
    threads: native ? native.threads : info.threads,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await main();
