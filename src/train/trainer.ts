/**
 * The training loop: AdamW on the vision objective, with a cosine schedule,
 * gradient clipping and accumulation, periodic held-out evaluation,
 * atomic checkpoints (every K steps, last, best) and exact resume.
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { writeFileAtomic } from "../io/atomic.ts";
import { type BatchStats, batches, type ImageBatch, type ImageDataset, openDataset } from "../data/index.ts";
import { initEngine } from "../engine/engine.ts";
import { type JsTree, numpy as np, tree } from "../engine/jax.ts";
import { describeGeometry } from "../geometry/index.ts";
import { loadOptimizerState, loadVisionCheckpoint, readCheckpointConnectivity, saveOptimizerState, saveVisionCheckpoint } from "../checkpoint/vision-checkpoint.ts";
import { countParameters } from "../checkpoint/param-tree.ts";
import { flopsPerImage } from "../model/cost.ts";
import { initVision, type VisionParams } from "../model/vision.ts";
import { adamwConfig, adamwInit, adamwUpdate, type AdamWState, decayMaskFor, mapParamLeaves } from "./adamw.ts";
import { clipByGlobalNorm } from "./clip.ts";
import { parseTrainConfig, type TrainConfig } from "./config.ts";
import { evaluate, type EvalResult, writeReconstructions } from "./evaluate.ts";
import { Progress } from "./progress.ts";
import {
  appendLog,
  checkpointPath,
  createRunDir,
  openRunDir,
  optimizerPath,
  type RunDir,
  truncateLogAfter,
  writeJsonAtomic,
} from "./run-dir.ts";
import { type Backend, describeBackend } from "../engine/backend.ts";
import { cosineSchedule } from "./schedule.ts";
import { createSession, disposeSession, maskSeed, type Session, toDevice } from "./session.ts";

/** What a finished run reports (also written to summary.json). */
export interface TrainSummary {
  steps: number;
  task: "mim" | "classify";
  parameters: number;
  /** Forward matmul FLOPs per image (src/model/cost.ts). */
  flops_per_image: number;
  final: EvalResult;
  best: EvalResult & { step: number };
  images_per_second: number;
  wall_seconds: number;
  skipped_images: number;
  run_dir: string;
  /** The engine that ran the sheet. */
  backend?: Backend;
}

export interface TrainOptions {
  /** Print progress and messages (default true). */
  verbose?: boolean;
  /** Stop after this step (for tests of resume); the run stays resumable. */
  stopAfter?: number;
  /**
   * Start from this vision checkpoint's parameters instead of a random init (e.g. a pruned
   * model, see src/train/prune.ts). `train` copies it into the run directory as
   * `init.safetensors` (see {@link INIT_CHECKPOINT}), so a run interrupted before its first
   * checkpoint also restarts from it. Its sheet and vision configs must be the run's; a sparse
   * checkpoint's stored connectivity wins, as on resume.
   */
  initFrom?: string;
  /** The engine that runs the sheet (default: see src/train/backend.ts). */
  backend?: Backend;
}

/**
 * A run directory's starting parameters: when `<run>/init.safetensors` exists and the run has
 * no `checkpoints/last` yet, training starts from it instead of a random init (the optimiser
 * state starts fresh; every checkpoint is written as usual).
 */
export const INIT_CHECKPOINT = "init.safetensors";

const TRAIN_MASK = 1;

/** Start a new run in `root` (refused if `root` holds a different run). */
export async function train(config: TrainConfig, root: string, options: TrainOptions = {}): Promise<TrainSummary> {
  const dir = await createRunDir(root, config);
  if (existsSync(checkpointPath(dir, "last"))) {
    throw new Error(`${root} already has checkpoints; resume it with --resume ${root} or choose a new directory`);
  }
  if (options.initFrom !== undefined) {
    const target = path.join(dir.root, INIT_CHECKPOINT);
    if (!existsSync(options.initFrom)) throw new Error(`initial checkpoint ${options.initFrom} does not exist`);
    if (path.resolve(options.initFrom) !== path.resolve(target)) await writeFileAtomic(target, await readFile(options.initFrom));
  }
  return runTraining(config, dir, null, options);
}

/** Continue the run in `root` from its last checkpoint. */
export async function resume(root: string, options: TrainOptions = {}): Promise<TrainSummary> {
  const { dir, config } = await openRunDir(root);
  const resolved = parseTrainConfig(config);
  const last = checkpointPath(dir, "last");
  return runTraining(resolved, dir, existsSync(last) ? last : null, options);
}

/**
 * Bring the run in `root` to `config.steps`: a finished run (summary.json for all its steps)
 * returns its summary, one with checkpoints/last resumes, anything else trains from the start
 * (from `init.safetensors` when the directory has one).
 */
export async function trainToCompletion(config: TrainConfig, root: string, options: TrainOptions = {}): Promise<TrainSummary> {
  const summaryPath = path.join(root, "summary.json");
  if (existsSync(summaryPath)) {
    const summary = JSON.parse(readFileSync(summaryPath, "utf8")) as TrainSummary;
    if (summary.steps === config.steps) return summary;
  }
  if (existsSync(path.join(root, "checkpoints", "last.safetensors"))) return resume(root, options);
  return train(config, root, options);
}

async function runTraining(config: TrainConfig, dir: RunDir, fromCheckpoint: string | null, options: TrainOptions): Promise<TrainSummary> {
  await initEngine();
  // a sparse sheet resumes with the connectivity its checkpoint stores (it wins over rebuilding it,
  // and a connectivity file need not be read again)
  const initPath = path.join(dir.root, INIT_CHECKPOINT);
  const initFrom = !fromCheckpoint && existsSync(initPath) ? initPath : null;
  const source = fromCheckpoint ?? initFrom;
  const stored = source ? await readCheckpointConnectivity(source) : null;
  if (stored) config = { ...config, sheet: { ...config.sheet, connectivity: stored.spec } };
  const session = createSession(config, { indices: stored?.indices, backend: options.backend });
  try {
    return await trainInSession(session, dir, fromCheckpoint, options, initFrom);
  } finally {
    disposeSession(session); // a sweep trains many models in one process
  }
}

async function trainInSession(
  session: Session,
  dir: RunDir,
  fromCheckpoint: string | null,
  options: TrainOptions,
  initFrom: string | null,
): Promise<TrainSummary> {
  const { config } = session;
  const verbose = options.verbose ?? true;
  const say = (line: string) => verbose && process.stderr.write(`${line}\n`);
  const { vision } = session;
  const [trainSet, testSet] = await Promise.all([openDataset(config.data, "train"), openDataset(config.data, "test")]);
  if (vision.task === "classify" && trainSet.numClasses !== null && trainSet.numClasses > vision.num_classes) {
    throw new Error(`the data set has ${trainSet.numClasses} classes but vision.num_classes is ${vision.num_classes}`);
  }

  let params: VisionParams;
  let opt: AdamWState<VisionParams>;
  let startStep = 0;
  if (fromCheckpoint) {
    const ckpt = await loadVisionCheckpoint(fromCheckpoint);
    params = ckpt.params;
    opt = await loadOptimizerState(optimizerPath(dir, "last"), params);
    startStep = ckpt.step;
    await truncateLogAfter(dir, startStep);
    say(`resuming ${dir.root} at step ${startStep}`);
  } else if (initFrom) {
    const ckpt = await loadVisionCheckpoint(initFrom);
    const same = (a: unknown, b: unknown) => isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));
    if (!same(ckpt.sheet, session.sheet) || !same(ckpt.vision, vision)) {
      tree.dispose(ckpt.params);
      throw new Error(`${initFrom}: its sheet / vision config differs from the run's config, so its parameters cannot start this run`);
    }
    if (ckpt.params.positions) {
      tree.dispose(ckpt.params);
      throw new Error(`${initFrom}: starting from a checkpoint with learned positions is not supported`);
    }
    params = ckpt.params;
    opt = adamwInit(params);
    say(`starting ${dir.root} from the parameters of ${initFrom}`);
  } else {
    params = initVision(session.sheet, vision, session.geometry, config.seed, session.connectivity);
    opt = adamwInit(params);
  }
  const decayMask = decayMaskFor(params);
  const lrScale = mapParamLeaves(params, (path) => (path === "positions" ? config.positions.lr_scale : 1), "lrScale");
  const optim = adamwConfig({ ...config.optim, lr: config.optim.lr });
  const schedule = cosineSchedule({
    peak_lr: config.optim.lr,
    warmup_steps: Math.max(1, Math.round(config.optim.warmup_fraction * config.steps)),
    total_steps: config.steps,
    final_lr_fraction: config.optim.final_lr_fraction,
  });
  const parameters = countParameters(params);
  const flops = flopsPerImage(session.sheet, vision, session.layout);
  say(
    `columnformer train: ${vision.task} on ${trainSet.name} (${trainSet.length} train / ${testSet.length} test images), ` +
      `${describeGeometry(session.geometry)}${session.connectivity ? ` (sparse: ${session.sheet.connectivity!.kind}, K ${session.connectivity.k})` : ""}, ${parameters.toLocaleString("en-US")} parameters, ${(flops / 1e6).toFixed(1)} MFLOP/image, ${config.steps} steps on the ${describeBackend(session.backend)} -> ${dir.root}`,
  );

  const stats: BatchStats = { skipped: 0 };
  const stream = trainStream(session, trainSet, startStep * config.accum_steps, stats);
  const progress = new Progress(config.steps, { label: "train", stream: verbose ? process.stderr : { write: () => true } });
  const t0 = performance.now();
  let imagesSeen = 0;
  let best: (EvalResult & { step: number }) | null = readBest(dir);
  let lastEval: EvalResult | null = null;
  const isBetter = (r: EvalResult) => best === null || primary(r) < primary(best);

  const saveAll = async (tag: "last" | "best" | number, step: number) => {
    const meta = { step: String(step), train_config: JSON.stringify(config) };
    await saveVisionCheckpoint(checkpointPath(dir, tag), session.sheet, vision, session.geometry, params, meta, session.connectivity);
    if (tag !== "best") await saveOptimizerState(optimizerPath(dir, tag), opt);
  };

  for (let step = startStep; step < config.steps; step++) {
    const tStep = performance.now();
    let grads: VisionParams | null = null;
    const parts = { loss: 0, task: 0, wiring: 0, consistency: 0, repulsion: 0, activationL1: 0, hoyer: 0, correct: 0, images: 0 };
    for (let micro = 0; micro < config.accum_steps; micro++) {
      const host = (await stream.next()).value as ImageBatch;
      const batch = toDevice(session, host, maskSeed(config.seed, TRAIN_MASK, step, micro));
      const { metrics, grads: g } = await session.compiled.gradStep(params, batch, step);
      grads = grads === null ? g : addTrees(grads, g);
      parts.loss += metrics.loss;
      parts.task += metrics.task;
      parts.wiring += metrics.wiring;
      parts.consistency += metrics.consistency;
      parts.repulsion += metrics.repulsion;
      parts.activationL1 += metrics.activation_l1;
      parts.hoyer += metrics.activation_hoyer;
      parts.correct += metrics.correct;
      parts.images += host.size;
    }
    if (config.accum_steps > 1) grads = scaleTree(grads!, 1 / config.accum_steps);
    let gradNorm = NaN;
    if (config.optim.clip_norm !== null) {
      const clipped = clipByGlobalNorm(grads!, config.optim.clip_norm);
      grads = clipped.grads;
      gradNorm = (await clipped.norm.data())[0];
    }
    const lr = schedule(step);
    ({ params, state: opt } = adamwUpdate(params, grads!, opt, lr, optim, decayMask, lrScale));
    const seconds = (performance.now() - tStep) / 1000;
    imagesSeen += parts.images;
    const n = config.accum_steps;
    const loss = parts.loss / n;
    if (!Number.isFinite(loss)) throw new Error(`training diverged at step ${step + 1} (loss ${loss}); lower optim.lr or enable optim.clip_norm`);
    const record: Record<string, unknown> = {
      step: step + 1,
      loss,
      task_loss: parts.task / n,
      wiring_cost: parts.wiring / n,
      wiring_lambda: session.coefficients(step).wiring,
      ...(session.spec.consistency ? { consistency: parts.consistency / n, consistency_coef: session.coefficients(step).consistency } : {}),
      ...(session.spec.positions ? { repulsion: parts.repulsion / n } : {}),
      activation_l1: parts.activationL1 / n,
      activation_hoyer: parts.hoyer / n,
      ...(config.activation_sparsity.coef > 0 ? { activation_coef: session.coefficients(step).activation } : {}),
      lr,
      grad_norm: gradNorm,
      images_per_second: parts.images / seconds,
      rss_mib: Math.round(process.memoryUsage().rss / 2 ** 20),
      heap_mib: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    };
    if (vision.task === "classify") record.train_accuracy = parts.correct / parts.images;
    const done = step + 1;
    if (done % config.eval_every === 0 || done === config.steps) {
      lastEval = await evaluate(session, params, testSet, config.eval_images, stats);
      Object.assign(record, prefixKeys(lastEval, "eval_"));
      if (isBetter(lastEval)) {
        best = { ...lastEval, step: done };
        await saveAll("best", done);
        await writeJsonAtomic(`${dir.root}/best.json`, best);
      }
    }
    await appendLog(dir, record);
    progress.update(done, {
      loss: loss.toFixed(4),
      ...(lastEval ? { eval: primary(lastEval).toFixed(4) } : {}),
      "img/s": (parts.images / seconds).toFixed(0),
    });
    if (done % config.checkpoint_every === 0 && done !== config.steps) {
      await saveAll(done, done);
      await saveAll("last", done);
    }
    if (options.stopAfter !== undefined && done >= options.stopAfter && done !== config.steps) {
      await saveAll("last", done);
      progress.done(`stopped after step ${done} (resumable)`);
      await stream.return(undefined);
      tree.dispose([params, opt.mu, opt.nu]);
      return partialSummary(config, parameters, flops, dir, lastEval, best, done);
    }
  }
  await saveAll("last", config.steps);
  await stream.return(undefined);
  const wall = (performance.now() - t0) / 1000;
  progress.done();
  const final = lastEval ?? (await evaluate(session, params, testSet, config.eval_images, stats));
  if (vision.task === "mim") {
    await writeReconstructions(session, params, testSet, `${dir.root}/reconstructions.png`);
  }
  tree.dispose([params, opt.mu, opt.nu]);
  const summary: TrainSummary = {
    steps: config.steps,
    task: vision.task,
    parameters,
    flops_per_image: flops,
    final,
    best: best ?? { ...final, step: config.steps },
    images_per_second: imagesSeen / wall,
    wall_seconds: wall,
    skipped_images: stats.skipped,
    run_dir: dir.root,
    backend: session.backend,
  };
  await writeJsonAtomic(`${dir.root}/summary.json`, summary);
  say(
    `done: ${vision.task === "mim" ? `held-out MIM loss ${final.mim_loss?.toFixed(4)}` : `test accuracy ${(100 * (final.accuracy ?? 0)).toFixed(2)}%`}` +
      ` (best ${primary(summary.best).toFixed(4)} at step ${summary.best.step}); ${summary.images_per_second.toFixed(0)} img/s;` +
      (stats.skipped ? ` ${stats.skipped} unreadable images skipped;` : "") +
      ` wrote ${dir.root}`,
  );
  return summary;
}

/** Leafwise a + b. Consumes both. */
function addTrees(a: VisionParams, b: VisionParams): VisionParams {
  const [la, def] = tree.flatten(a as unknown as JsTree<np.Array>);
  const [lb] = tree.flatten(b as unknown as JsTree<np.Array>);
  return tree.unflatten(def, la.map((x, i) => x.add(lb[i]))) as unknown as VisionParams;
}

/** Leafwise a * s. Consumes `a`. */
function scaleTree(a: VisionParams, s: number): VisionParams {
  const [la, def] = tree.flatten(a as unknown as JsTree<np.Array>);
  return tree.unflatten(def, la.map((x) => x.mul(s))) as unknown as VisionParams;
}

/** Lower is better: MIM loss, or classification error. */
function primary(r: EvalResult): number {
  return r.mim_loss ?? 1 - (r.accuracy ?? 0);
}

function prefixKeys(r: EvalResult, prefix: string): Record<string, number> {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => typeof v === "number").map(([k, v]) => [prefix + k, v as number]));
}

function readBest(dir: RunDir): (EvalResult & { step: number }) | null {
  const path = `${dir.root}/best.json`;
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, "utf8")) as EvalResult & { step: number };
}

function partialSummary(
  config: TrainConfig,
  parameters: number,
  flops: number,
  dir: RunDir,
  lastEval: EvalResult | null,
  best: (EvalResult & { step: number }) | null,
  step: number,
): TrainSummary {
  const final = lastEval ?? { images: 0 };
  return {
    steps: step,
    task: config.vision.task,
    parameters,
    flops_per_image: flops,
    final,
    best: best ?? { ...final, step },
    images_per_second: 0,
    wall_seconds: 0,
    skipped_images: 0,
    run_dir: dir.root,
  };
}

/**
 * An endless, deterministic stream of training batches: epoch e is a seeded
 * shuffle of the training set; micro-batch k is batch k % perEpoch of epoch
 * floor(k / perEpoch). Starting at `startBatch` replays nothing but the skipped
 * batches' reads, so a resumed run sees exactly the batches it would have.
 */
async function* trainStream(session: Session, ds: ImageDataset, startBatch: number, stats: BatchStats): AsyncGenerator<ImageBatch> {
  const { config, vision } = session;
  const perEpoch = Math.floor(ds.length / config.batch_size);
  if (perEpoch === 0) throw new Error(`the training set has ${ds.length} images, fewer than batch_size ${config.batch_size}`);
  let epoch = Math.floor(startBatch / perEpoch);
  let skip = startBatch % perEpoch;
  for (;;) {
    for await (const batch of batches(ds, {
      batchSize: config.batch_size,
      imageSize: vision.image_size,
      channels: vision.channels,
      shuffle: true,
      seed: config.seed,
      epoch,
      augment: config.augment ? "train" : "eval",
      augmentOptions: { scale: config.crop_scale, flipProbability: config.hflip ? 0.5 : 0 },
      dropLast: true,
      stats,
      onSkip: (index, reason) => process.stderr.write(`warning: skipped unreadable training image ${index} (${reason})\n`),
    })) {
      if (skip > 0) {
        skip--;
        continue;
      }
      yield batch;
    }
    epoch++;
  }
}
