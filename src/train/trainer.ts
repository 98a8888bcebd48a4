/**
 * The training loop: AdamW on the vision objective, with a cosine schedule,
 * gradient clipping and accumulation, periodic held-out evaluation,
 * atomic checkpoints (every K steps, last, best) and exact resume.
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { writeFileAtomic } from "../io/atomic.ts";
import { type BatchStats, batches, type ImageBatch, type ImageDataset, openDataset } from "../data/index.ts";
import { initEngine } from "../engine/engine.ts";
import { tree } from "../engine/jax.ts";
import { describeGeometry } from "../geometry/index.ts";
import { loadOptimizerState, loadVisionCheckpoint, readCheckpointConnectivity } from "../checkpoint/vision-checkpoint.ts";
import { NonFiniteParametersError } from "../checkpoint/checkpoint.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { saveTrainingCheckpoint } from "../checkpoint/training-state.ts";
import { canonicalParamOrder, countParameters } from "../engine/param-tree.ts";
import { flopsPerImage } from "../model/cost.ts";
import { initVision, type VisionConfig, type VisionParams } from "../model/vision.ts";
import { adamwConfig, adamwInit, type AdamWState, defaultNoDecay } from "../optim/adamw.ts";
import { parseTrainConfig, type TrainConfig } from "./config.ts";
import { evaluate, type EvalResult, writeReconstructions } from "./evaluate.ts";
import { Progress } from "./progress.ts";
import {
  appendLog,
  checkpointPath,
  createRunDir,
  lockRunDir,
  openRunDir,
  optimizerPath,
  type RunDir,
  truncateLogAfter,
  writeJsonAtomic,
} from "./run-dir.ts";
import { findResumePoint, type ResumeFrom, runDirState, type TrainSummary } from "./run-state.ts";
import { type Backend, describeBackend, prepareBackend } from "../engine/backend.ts";
import { cosineSchedule } from "../optim/schedule.ts";
import type { StepMetrics } from "./compiled.ts";
import { createSession, disposeSession, maskSeed, type Session, toDevice } from "./session.ts";
import type { TrainState } from "./train-state.ts";

export interface TrainOptions {
  /** Print progress and messages (default true). */
  verbose?: boolean;
  /** Stop after this step (for tests of resume); the run stays resumable. */
  stopAfter?: number;
  /**
   * Start from this vision checkpoint's parameters instead of a random init (e.g. a pruned
   * model, see src/workflows/prune.ts). `train` copies it into the run directory as
   * `init.safetensors` (RunDir.initPath), so a run interrupted before its first
   * checkpoint also restarts from it. Its sheet and vision configs must be the run's; a sparse
   * checkpoint's stored connectivity wins, as on resume.
   */
  initFrom?: string;
  /** The engine that runs the sheet (default: see src/engine/backend.ts). */
  backend?: Backend;
  /**
   * {@link resume} only: train to this many steps instead of the run's `steps` (config.json is
   * updated; the learning-rate and penalty schedules then span the new length). Fewer steps
   * than the checkpoint has are refused.
   */
  steps?: number;
}

const TRAIN_MASK = 1;

/** Start a new run in `root` (refused if `root` holds a different run, or is in use by another process). */
export async function train(config: TrainConfig, root: string, options: TrainOptions = {}): Promise<TrainSummary> {
  const unlock = lockRunDir(root);
  try {
    const dir = await createRunDir(root, config);
    const found = await findResumePoint(dir, () => undefined);
    if (found) {
      throw new Error(`${root} already has checkpoints (step ${found.point.step}); resume it with --resume ${root} or choose a new directory`);
    }
    if (options.initFrom !== undefined) {
      if (!existsSync(options.initFrom)) throw new Error(`initial checkpoint ${options.initFrom} does not exist`);
      if (path.resolve(options.initFrom) !== dir.initPath) await writeFileAtomic(dir.initPath, await readFile(options.initFrom));
    }
    return await runTraining(config, dir, null, options);
  } finally {
    unlock();
  }
}

/**
 * Continue the run in `root` from its newest complete checkpoint (`last`, else the newest
 * `step-N`, each checked: one consistent training state; a damaged one is skipped with a
 * message); with none, it trains from the start. Refused while another process trains there.
 */
export async function resume(root: string, options: TrainOptions = {}): Promise<TrainSummary> {
  await openRunDir(root); // "not a run directory" before anything is created or locked
  const unlock = lockRunDir(root);
  try {
    const { dir, config } = await openRunDir(root);
    let resolved = parseTrainConfig(config);
    const say = (line: string) => (options.verbose ?? true) && process.stderr.write(`${line}\n`);
    // a skipped checkpoint is a warning: shown even with --quiet
    const found = await findResumePoint(dir, (line) => process.stderr.write(`${line}\n`));
    if (options.steps !== undefined && options.steps !== resolved.steps) {
      const at = found?.point.step ?? 0;
      if (options.steps < at) {
        throw new Error(`--steps ${options.steps} is fewer than the ${at} steps its checkpoint has done; give at least ${at}`);
      }
      say(`extending ${dir.root} from ${resolved.steps} to ${options.steps} steps (the schedules now span ${options.steps} steps)`);
      resolved = parseTrainConfig({ ...(config as object), steps: options.steps });
      await writeJsonAtomic(dir.configPath, resolved);
      await rm(dir.summaryPath, { force: true });
    }
    return await runTraining(resolved, dir, found, options);
  } finally {
    unlock();
  }
}

/**
 * Bring the run in `root` to `config.steps`, as its {@link runDirState} says: a finished run
 * returns its summary, a partial one resumes (from its newest complete checkpoint), a new one
 * trains from the start (from `init.safetensors` when the directory has one).
 */
export async function trainToCompletion(config: TrainConfig, root: string, options: TrainOptions = {}): Promise<TrainSummary> {
  const state = runDirState(root, config.steps);
  if (state.kind === "finished") return state.summary;
  if (state.kind === "partial") return resume(root, options);
  return train(config, root, options);
}

async function runTraining(config: TrainConfig, dir: RunDir, fromCheckpoint: ResumeFrom | null, options: TrainOptions): Promise<TrainSummary> {
  await initEngine();
  await prepareBackend(options.backend); // acquires the WebGPU device when webgpu is asked for
  // a sparse sheet resumes with the connectivity its checkpoint stores (it wins over rebuilding it,
  // and a connectivity file need not be read again)
  const initFrom = !fromCheckpoint && existsSync(dir.initPath) ? dir.initPath : null;
  const source = fromCheckpoint?.point.paramsPath ?? initFrom;
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
  fromCheckpoint: ResumeFrom | null,
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
  const same = (a: unknown, b: unknown) => isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));
  if (fromCheckpoint) {
    const ckpt = await loadVisionCheckpoint(fromCheckpoint.point.paramsPath);
    if (!same(ckpt.sheet, session.sheet) || !same(ckpt.vision, vision)) {
      tree.dispose(ckpt.params);
      throw new Error(`${fromCheckpoint.point.paramsPath}: its sheet / vision config differs from ${dir.configPath}; restore that run's config.json or start a new run`);
    }
    // one leaf order for fresh and loaded parameters: the clipping norm sums leaves in this order
    params = canonicalParamOrder(ckpt.params);
    opt = await loadOptimizerState(fromCheckpoint.point.statePath, params);
    startStep = fromCheckpoint.point.step;
    say(`resuming ${dir.root} at step ${startStep}${fromCheckpoint.tag === "last" ? "" : ` (from ${path.basename(checkpointPath(dir, fromCheckpoint.tag))})`}`);
  } else if (initFrom) {
    const ckpt = await loadVisionCheckpoint(initFrom);
    // the readout may differ (e.g. fine-tuning a MIM model for classification): it starts fresh
    const encoderOf = ({ task, num_classes, pool, ...encoder }: VisionConfig) => encoder;
    if (!same(ckpt.sheet, session.sheet) || !same(encoderOf(ckpt.vision), encoderOf(vision))) {
      tree.dispose(ckpt.params);
      throw new Error(
        `${initFrom}: its sheet / vision config differs from the run's config beyond the readout (vision.task, num_classes, pool), so its parameters cannot start this run`,
      );
    }
    if (ckpt.params.positions) {
      tree.dispose(ckpt.params);
      throw new Error(`${initFrom}: starting from a checkpoint with learned positions is not supported`);
    }
    if (same(ckpt.vision, vision)) {
      params = canonicalParamOrder(ckpt.params);
      say(`starting ${dir.root} from the parameters of ${initFrom}`);
    } else {
      const { decoder, head, ...encoder } = ckpt.params;
      const fresh = initVision(session.sheet, vision, session.geometry, config.seed, session.connectivity);
      const { decoder: newDecoder, head: newHead, ...unused } = fresh;
      tree.dispose([decoder, head, unused]);
      params = canonicalParamOrder({ ...encoder, ...(newDecoder ? { decoder: newDecoder } : {}), ...(newHead ? { head: newHead } : {}) });
      say(`starting ${dir.root} from the encoder of ${initFrom} (${ckpt.vision.task}) with a new ${vision.task} readout`);
    }
    opt = adamwInit(params);
  } else {
    params = canonicalParamOrder(initVision(session.sheet, vision, session.geometry, config.seed, session.connectivity));
    opt = adamwInit(params);
  }
  // the log keeps only the steps the restored state has seen (a crash may have logged more)
  await truncateLogAfter(dir, startStep);
  const restored = fromCheckpoint?.point.metadata ?? {};
  const optim = adamwConfig({ ...config.optim, lr: config.optim.lr });
  const schedule = cosineSchedule({
    peak_lr: config.optim.lr,
    warmup_steps: Math.max(1, Math.round(config.optim.warmup_fraction * config.steps)),
    total_steps: config.steps,
    final_lr_fraction: config.optim.final_lr_fraction,
  });
  const parameters = countParameters(params);
  const flops = flopsPerImage(session.sheet, vision, session.layout);
  // from here the backend owns parameters and optimiser state (the native one keeps the sheet's on the host)
  const state = await session.compiled.trainState(params, opt, {
    adamw: optim,
    clipNorm: config.optim.clip_norm,
    noDecay: defaultNoDecay,
    lrScale: (path) => (path === "positions" ? config.positions.lr_scale : 1),
  });
  say(
    `columnformer train: ${vision.task} on ${trainSet.name} (${trainSet.length} train / ${testSet.length} test images), ` +
      `${describeGeometry(session.geometry)}${session.connectivity ? ` (sparse: ${session.sheet.connectivity!.kind}, K ${session.connectivity.k})` : ""}, ${parameters.toLocaleString("en-US")} parameters, ${(flops / 1e6).toFixed(1)} MFLOP/image, ${config.steps} steps on the ${describeBackend(session.backend)} -> ${dir.root}`,
  );

  // run statistics saved with the state, so a resumed run's summary counts the whole run
  const stats: BatchStats = { skipped: countIn(restored.skipped_images) };
  const stream = trainStream(session, trainSet, startStep * config.accum_steps, stats);
  const progress = new Progress(config.steps, { label: "train", stream: verbose ? process.stderr : { write: () => true } });
  const t0 = performance.now();
  const priorSeconds = countIn(restored.train_seconds);
  let imagesSeen = countIn(restored.images_seen);
  let best: (EvalResult & { step: number }) | null = restoreBest(readBest(dir), restored.best, startStep);
  let lastEval: EvalResult | null = null;
  let lastSaved: number | null = fromCheckpoint ? startStep : null;
  // a non-finite metric is never best
  const isBetter = (r: EvalResult) => Number.isFinite(primary(r)) && (best === null || primary(r) < primary(best));
  const diverged = (when: string, what: string) => divergenceError(config, when, what, lastSaved);

  /** Model (and, but for `best`, training state: one file, written first) of `step`; never non-finite. */
  const saveAll = async (tag: "last" | "best" | number, step: number) => {
    const meta: Record<string, string> = {
      train_config: JSON.stringify(config),
      skipped_images: String(stats.skipped),
      images_seen: String(imagesSeen),
      train_seconds: String(priorSeconds + (performance.now() - t0) / 1000),
      ...(best ? { best: JSON.stringify(best) } : {}),
    };
    const { params, opt } = await state.current();
    const ckpt = { sheet: session.sheet, vision, geometry: session.geometry, params, connectivity: session.connectivity, step, metadata: meta };
    try {
      await saveTrainingCheckpoint(checkpointPath(dir, tag), tag === "best" ? null : optimizerPath(dir, tag), { ...ckpt, opt: tag === "best" ? null : opt });
    } catch (e) {
      if (e instanceof NonFiniteParametersError) throw diverged(`at step ${step}`, `the parameters after step ${step} are not finite (tensor ${JSON.stringify(e.tensor)}: ${e.count} NaN/infinite values)`);
      throw e;
    }
    if (tag !== "best") lastSaved = step;
  };
  // a fallback, or a crash between a state and its model file: make `last` this state again
  if (fromCheckpoint && (fromCheckpoint.tag !== "last" || (await modelStep(checkpointPath(dir, "last"))) !== startStep)) {
    await saveAll("last", startStep);
  }

  const policy = loopPolicy(config);
  let interval = { images: 0, start: performance.now() }; // since the last read of the train state
  let shown: Record<string, string> = {};
  for (let step = startStep; step < config.steps; step++) {
    const images = await optimizerStep(session, state, stream, step);
    const lr = schedule(step);
    await state.update(lr);
    imagesSeen += images;
    interval.images += images;
    const done = step + 1;
    const stopping = options.stopAfter !== undefined && done >= options.stopAfter && done !== config.steps;
    if (policy.logDue(done) || stopping) {
      const { metrics: m, steps, gradNorm, finite } = await state.read();
      const seconds = (performance.now() - interval.start) / 1000;
      const when = steps === 1 ? `at step ${done}` : `in steps ${done - steps + 1}-${done}`;
      if (!finite) throw diverged(when, `the parameters after step ${done} are not finite`);
      if (!Number.isFinite(m.loss)) throw diverged(when, `the training loss is ${m.loss}`);
      if (config.optim.clip_norm !== null && !Number.isFinite(gradNorm)) throw diverged(when, `the gradient norm is ${gradNorm}`);
      const record = stepRecord(session, step, m, { lr, gradNorm, images: interval.images, seconds });
      shown = { loss: m.loss.toFixed(4), "img/s": (interval.images / seconds).toFixed(0) };
      interval = { images: 0, start: performance.now() };
      if (policy.evalDue(done)) {
        lastEval = await evaluate(session, (await state.current()).params, testSet, config.eval_images, stats);
        if (!Number.isFinite(primary(lastEval))) throw diverged(`at step ${done}`, `the held-out ${vision.task === "mim" ? "MIM loss" : "accuracy"} is not finite`);
        Object.assign(record, prefixKeys(lastEval, "eval_"));
        if (isBetter(lastEval)) {
          best = { ...lastEval, step: done };
          await saveAll("best", done);
          await writeJsonAtomic(dir.bestEvalPath, best);
        }
      }
      await appendLog(dir, record);
    }
    progress.update(done, { ...shown, ...(lastEval ? { eval: primary(lastEval).toFixed(4) } : {}) });
    if (policy.snapshotDue(done)) {
      await saveAll(done, done);
      await saveAll("last", done);
    }
    if (stopping) {
      await saveAll("last", done);
      progress.done(`stopped after step ${done} (resumable)`);
      await stream.return(undefined);
      state.dispose();
      return partialSummary(config, parameters, flops, dir, lastEval, best, done);
    }
  }
  await saveAll("last", config.steps);
  await stream.return(undefined);
  const wall = priorSeconds + (performance.now() - t0) / 1000;
  progress.done();
  const final = lastEval ?? (await evaluate(session, (await state.current()).params, testSet, config.eval_images, stats));
  if (vision.task === "mim") {
    await writeReconstructions(session, (await state.current()).params, testSet, dir.reconstructionsPath);
  }
  state.dispose();
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
  await writeJsonAtomic(dir.summaryPath, summary);
  say(
    `done: ${vision.task === "mim" ? `held-out MIM loss ${final.mim_loss?.toFixed(4)}` : `test accuracy ${(100 * (final.accuracy ?? 0)).toFixed(2)}%`}` +
      ` (best ${primary(summary.best).toFixed(4)} at step ${summary.best.step}); ${summary.images_per_second.toFixed(0)} img/s;` +
      (stats.skipped ? ` ${stats.skipped} unreadable images skipped;` : "") +
      ` wrote ${dir.root}`,
  );
  return summary;
}

/**
 * One optimiser step's gradients: `accum_steps` micro-batches from `stream` accumulated into
 * `state` (the update itself is `state.update(lr)`). Returns the images seen.
 */
async function optimizerStep(session: Session, state: TrainState, stream: AsyncGenerator<ImageBatch>, step: number): Promise<number> {
  const { config } = session;
  let images = 0;
  for (let k = 0; k < config.accum_steps; k++) {
    const host = (await stream.next()).value as ImageBatch;
    await state.accumulate(toDevice(session, host, maskSeed(config.seed, TRAIN_MASK, step, k)), step);
    images += host.size;
  }
  return images;
}

/**
 * When the loop evaluates (every `eval_every` steps and at the end), writes a `step-N` + `last`
 * checkpoint (every `checkpoint_every`, but not at the end, which always writes `last`) and
 * reads the train state into a log record (every `log_every` steps, and wherever it evaluates or
 * checkpoints, so that no checkpoint holds steps the log has not seen).
 */
function loopPolicy(config: Pick<TrainConfig, "steps" | "eval_every" | "checkpoint_every" | "log_every">) {
  const evalDue = (done: number) => done % config.eval_every === 0 || done === config.steps;
  const snapshotDue = (done: number) => done % config.checkpoint_every === 0 && done !== config.steps;
  return { evalDue, snapshotDue, logDue: (done: number) => done % config.log_every === 0 || evalDue(done) || snapshotDue(done) };
}

/**
 * The log line of the steps up to `step` (0-based) since the last one: their mean metrics, the
 * penalties that are on with their coefficients (at `step`), the mean gradient norm, and speed
 * and memory.
 */
function stepRecord(session: Session, step: number, m: StepMetrics, s: { lr: number; gradNorm: number; images: number; seconds: number }): Record<string, unknown> {
  const { config, spec } = session;
  const c = session.coefficients(step);
  return {
    step: step + 1,
    loss: m.loss,
    task_loss: m.task,
    wiring_cost: m.wiring,
    wiring_lambda: c.wiring,
    ...(spec.consistency ? { consistency: m.consistency, consistency_coef: c.consistency } : {}),
    ...(spec.positions ? { repulsion: m.repulsion } : {}),
    activation_l1: m.activation_l1,
    activation_hoyer: m.activation_hoyer,
    ...(config.activation_sparsity.coef > 0 ? { activation_coef: c.activation } : {}),
    ...(spec.spatialCorrelation ? { spatial_correlation: m.spatial_correlation, spatial_correlation_coef: c.spatial } : {}),
    ...(spec.topoBlur ? { topo_blur: m.topo_blur, topo_blur_coef: c.topo } : {}),
    lr: s.lr,
    grad_norm: s.gradNorm,
    images_per_second: s.images / s.seconds,
    rss_mib: Math.round(process.memoryUsage().rss / 2 ** 20),
    heap_mib: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    ...(config.vision.task === "classify" ? { train_accuracy: m.correct / s.images } : {}),
  };
}

/** Lower is better: MIM loss, or classification error. */
function primary(r: EvalResult): number {
  return r.mim_loss ?? 1 - (r.accuracy ?? 0);
}

function prefixKeys(r: EvalResult, prefix: string): Record<string, number> {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => typeof v === "number").map(([k, v]) => [prefix + k, v as number]));
}

/** A non-negative number stored as checkpoint metadata text (0 when absent or malformed). */
function countIn(text: string | undefined): number {
  const v = Number(text ?? 0);
  return Number.isFinite(v) && v >= 0 ? v : 0;
}

/**
 * The best evaluation as of `startStep`: best.json when it is not newer than the restored
 * state (a crash can leave a best of steps the resumed run will redo), else the best record
 * saved with the state; a non-finite one counts as none.
 */
function restoreBest(
  onDisk: (EvalResult & { step: number }) | null,
  saved: string | undefined,
  startStep: number,
): (EvalResult & { step: number }) | null {
  let best = onDisk !== null && onDisk.step <= startStep ? onDisk : null;
  if (best === null && saved !== undefined) {
    try {
      best = JSON.parse(saved) as EvalResult & { step: number };
    } catch {
      best = null;
    }
  }
  return best !== null && Number.isFinite(primary(best)) && best.step <= startStep ? best : null;
}

/** The step stored in a model file's metadata, or null when it is missing or unreadable. */
async function modelStep(file: string): Promise<number | null> {
  if (!existsSync(file)) return null;
  try {
    const v = Number((await readSafetensors(file)).metadata.step);
    return Number.isSafeInteger(v) ? v : null;
  } catch {
    return null;
  }
}

/** One line: the run diverged `when` ("at step 5", "in steps 3-5"), what went wrong, what is intact, and what to change. */
function divergenceError(config: TrainConfig, when: string, what: string, lastSaved: number | null): Error {
  const { lr, clip_norm: clip, warmup_fraction: warmup } = config.optim;
  const hint =
    clip === null
      ? `enable optim.clip_norm (e.g. --set optim.clip_norm=1) or lower optim.lr (now ${lr})`
      : `lower optim.lr (now ${lr}, e.g. --set optim.lr=${Number((lr / 10).toPrecision(3))})` +
        (warmup < 0.1 ? ` or lengthen the warm-up (optim.warmup_fraction, now ${warmup})` : "") +
        ` (gradients are already clipped to norm ${clip})`;
  const kept = lastSaved === null ? "no checkpoint was written" : `checkpoints up to step ${lastSaved} are intact`;
  return new Error(`training diverged ${when}: ${what}; ${kept} (nothing non-finite is saved); start a new run and ${hint}`);
}

function readBest(dir: RunDir): (EvalResult & { step: number }) | null {
  if (!existsSync(dir.bestEvalPath)) return null;
  return JSON.parse(readFileSync(dir.bestEvalPath, "utf8")) as EvalResult & { step: number };
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
  // the replayed reads of a resumed run were counted (and warned about) before its checkpoint
  const countedBefore = stats.skipped;
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
      onSkip: (index, reason) => {
        if (skip === 0) process.stderr.write(`warning: skipped unreadable training image ${ds.describe?.(index) ?? `${index} of ${ds.name}`} (${reason})\n`);
      },
    })) {
      if (skip > 0) {
        skip--;
        if (skip === 0) stats.skipped = countedBefore;
        continue;
      }
      yield batch;
    }
    epoch++;
  }
}
