/**
 * Running one run of a sweep, in this process: train (or resume) into
 * `<sweep dir>/<run name>/`, then measure the trained model and write
 * `sweep-summary.json` (written last: its presence marks the run finished).
 *
 * ```
 * <sweep dir>/sweep.json                  the expanded plan (see writePlan)
 * <sweep dir>/<run>/config.json ...       an ordinary training run directory (src/train/run-dir.ts)
 * <sweep dir>/<run>/sweep-summary.json    the RunSummary (src/workflows/sweep/summary.ts)
 * ```
 *
 * Every run is resumable at any point: a run with `sweep-summary.json` is
 * skipped; one whose training finished (`summary.json` for all steps) is only
 * measured; one with checkpoints resumes training; anything else starts
 * afresh (stale files of an attempt that never reached a checkpoint are removed).
 * The training part of this is the run directory's state (src/train/run-state.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { meanAttentionMaps } from "../../analysis/collect.ts";
import { linearProbe } from "../../analysis/linear-probe.ts";
import { meanAttentionDistance, wiringCosts } from "../../analysis/connectivity.ts";
import { countParameters } from "../../engine/param-tree.ts";
import { type ImageDataset, openDataset } from "../../data/index.ts";
import { initEngine } from "../../engine/engine.ts";
import { tree } from "../../engine/jax.ts";
import { positionDistances, positionSpace } from "../../geometry/learned.ts";
import { distanceMatrix } from "../../geometry/metric.ts";
import { flopsPerImage } from "../../model/cost.ts";
import type { VisionParams } from "../../model/vision.ts";
import { parseTrainConfig, type TrainConfig } from "../../train/config.ts";
import { describeEval, extractFeatures } from "../../train/evaluate.ts";
import { checkpointPath, openRunDir, readLog, removeTrainingOutputs, runDirPaths, writeJsonAtomic } from "../../train/run-dir.ts";
import { type RunDirState, runDirState } from "../../train/run-state.ts";
import { disposeSession, type Session } from "../../train/session.ts";
import { loadTrainedModel } from "../../train/trained-model.ts";
import type { TrainSummary } from "../../train/run-state.ts";
import { resume, train } from "../../train/trainer.ts";
import type { PlannedRun, ProbeSettings, SweepPlan } from "./spec.ts";
import { PLAN_FILE, type RunSummary, SUMMARY_FILE } from "./summary.ts";


/** Where a run stands on disk: its run directory's state (see {@link runDirState}), or done. */
export type RunState =
  /** `sweep-summary.json` exists: nothing to do. */
  | "done"
  /** Training finished (`summary.json` for every step); measurements missing. */
  | "trained"
  /** Checkpoints exist: training resumes from the newest complete one. */
  | "partial"
  /** Nothing resumable: training starts from step 0. */
  | "new";

/** Directory of one run: `<sweepDir>/<name>`. */
export function runRoot(sweepDir: string, name: string): string {
  return path.join(path.resolve(sweepDir), name);
}

/** The state of run directory `root` of a run planned for `steps` training steps (see {@link RunState}). */
export function runState(root: string, steps: number): RunState {
  if (existsSync(path.join(root, SUMMARY_FILE))) return "done";
  return trainingState(runDirState(root, steps));
}

/** The sweep's word for a run directory's state. */
function trainingState(state: RunDirState): Exclude<RunState, "done"> {
  return state.kind === "finished" ? "trained" : state.kind;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as unknown;
  } catch (e) {
    throw new Error(`${file}: cannot read JSON (${(e as Error).message})`);
  }
}

/**
 * Whether a stored config (from a run's config.json or a sweep.json) is the
 * planned one. Both go through the current schema first, so a field added
 * later with a default does not make an old run "different".
 */
function sameConfig(stored: unknown, planned: TrainConfig): boolean {
  let normalised: TrainConfig;
  try {
    normalised = parseTrainConfig(stored);
  } catch {
    return false;
  }
  return isDeepStrictEqual(JSON.parse(JSON.stringify(normalised)), JSON.parse(JSON.stringify(planned)));
}

/**
 * Names of the planned runs whose directories already hold a run with a
 * DIFFERENT config (the sweep file changed since they were trained).
 */
export function mismatchedRuns(plan: SweepPlan, sweepDir: string, runs: PlannedRun[] = plan.runs): string[] {
  return runs
    .filter((run) => {
      const { configPath } = runDirPaths(runRoot(sweepDir, run.name));
      return existsSync(configPath) && !sameConfig(readJson(configPath), run.config);
    })
    .map((run) => run.name);
}

/** Throw one clear line if any of `runs` has a directory holding a different config (see {@link mismatchedRuns}). */
export function assertRunDirsMatch(plan: SweepPlan, sweepDir: string, runs: PlannedRun[] = plan.runs): void {
  const bad = mismatchedRuns(plan, sweepDir, runs);
  if (bad.length === 0) return;
  const dirs = bad.map((name) => runRoot(sweepDir, name));
  throw new Error(
    `the sweep file now gives a different config for ${bad.length === 1 ? "run" : "runs"} ${bad.map((n) => `"${n}"`).join(", ")} ` +
      `than the one already trained in ${dirs.length === 1 ? dirs[0] : path.resolve(sweepDir)}; ` +
      `to retrain with the new config delete ${bad.length === 1 ? "that directory" : "those directories"} (rm -r ${dirs.join(" ")}), ` +
      `or restore the sweep file, or pass another --out`,
  );
}

/** What `sweep.json` holds: the plan with plain-JSON configs. */
function planJson(plan: SweepPlan): unknown {
  return JSON.parse(JSON.stringify(plan));
}

/** Write the expanded plan to `<sweepDir>/sweep.json` atomically. */
export async function writePlan(plan: SweepPlan, sweepDir: string): Promise<void> {
  await writeJsonAtomic(path.join(path.resolve(sweepDir), PLAN_FILE), planJson(plan));
}

/**
 * Throw if `<sweepDir>/sweep.json` exists and lists other runs (names, order
 * or configs) than `plan`: the sweep file changed after the plan (and any
 * Slurm script) was written. No-op when there is no plan file.
 */
export function assertPlanUnchanged(plan: SweepPlan, sweepDir: string, sweepFile: string): void {
  const file = path.join(path.resolve(sweepDir), PLAN_FILE);
  if (!existsSync(file)) return;
  const stored = readJson(file) as { runs?: { name?: unknown; config?: unknown }[] };
  const same =
    Array.isArray(stored.runs) &&
    stored.runs.length === plan.runs.length &&
    stored.runs.every((r, i) => r.name === plan.runs[i].name && sameConfig(r.config, plan.runs[i].config));
  if (!same) {
    throw new Error(
      `${sweepFile} changed since ${file} was written (its runs differ); ` +
        `run "columnformer sweep ${sweepFile} --out ${path.resolve(sweepDir)}" (add --slurm to rewrite the Slurm script) to update the plan`,
    );
  }
}

/** Options of {@link executeRun}. */
export interface ExecuteRunOptions {
  /** Trainer progress output on stderr (default true). */
  verbose?: boolean;
  /** Sweep-level messages (default: stderr). */
  log?: (line: string) => void;
}

/** Outcome of {@link executeRun}. */
export interface ExecuteRunResult {
  /** "skipped": already finished before this call; "completed": finished by this call. */
  status: "skipped" | "completed";
  /** What the run was found in before this call. */
  from: RunState;
  summary: RunSummary;
}

/**
 * Bring one run to "done": train, resume or just measure it as its state
 * requires, then write its `sweep-summary.json` (last, atomically).
 *
 * @throws If its directory holds a run with a different config, or training
 *   or measurement fails (the run stays resumable).
 */
export async function executeRun(plan: SweepPlan, run: PlannedRun, sweepDir: string, options: ExecuteRunOptions = {}): Promise<ExecuteRunResult> {
  const verbose = options.verbose ?? true;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const root = runRoot(sweepDir, run.name);
  const summaryPath = path.join(root, SUMMARY_FILE);
  assertRunDirsMatch(plan, sweepDir, [run]);
  if (existsSync(summaryPath)) return { status: "skipped", from: "done", summary: readJson(summaryPath) as RunSummary };
  const state = runDirState(root, run.config.steps);
  const from = trainingState(state);

  let trained: TrainSummary;
  if (state.kind === "finished") {
    log(`${run.name}: training already finished; measuring`);
    trained = state.summary;
  } else if (state.kind === "partial") {
    log(`${run.name}: resuming training in ${root}`);
    trained = await resume(root, { verbose });
  } else {
    await removeTrainingOutputs(runDirPaths(root));
    log(`${run.name}: training in ${root}`);
    trained = await train(run.config, root, { verbose });
  }
  log(`${run.name}: measuring (probe, attention on ${plan.measure_images} held-out images)`);
  const summary = await measureRun(plan, run, root, trained);
  await writeJsonAtomic(summaryPath, summary);
  log(`${run.name}: done (${describeSummary(summary)})`);
  return { status: "completed", from, summary };
}

/** One line: the task metric, probe accuracy and wiring cost. */
export function describeSummary(s: RunSummary): string {
  const metric = describeEval(s.eval);
  const probe = s.probe_accuracy === null ? "" : `, probe ${(100 * s.probe_accuracy).toFixed(2)}%`;
  return `${metric}${probe}, wiring ${s.wiring_cost.toFixed(3)}, ${s.images_per_second.toFixed(0)} img/s`;
}

/**
 * Measure a trained run (final parameters, `checkpoints/last`) and assemble its
 * {@link RunSummary}: parameters, FLOPs, throughput and training time from the
 * log, the trainer's final evaluation, the linear probe and the held-out
 * attention's wiring cost and mean distance (against the learned positions'
 * distances when the sheet learns its positions).
 *
 * `eval.loss` is the task loss plus the wiring term (coefficient of the last
 * step times the evaluation's unweighted wiring cost); other penalties
 * (feature consistency, repulsion) are not part of the evaluation.
 */
export async function measureRun(plan: SweepPlan, run: PlannedRun, root: string, trained: TrainSummary): Promise<RunSummary> {
  await initEngine();
  const { dir } = await openRunDir(root);
  const records = await readLog(dir);
  const { checkpoint, config, session } = await loadTrainedModel(checkpointPath(dir, "last"));
  try {
    const params = checkpoint.params;
    const [trainSet, testSet] = await Promise.all([openDataset(config.data, "train"), openDataset(config.data, "test")]);
    const probe_accuracy = plan.probe === false ? null : await probeAccuracy(session, params, trainSet, testSet, plan.probe, run.name);
    const maps = await meanAttentionMaps(session, params, testSet, plan.measure_images);
    const attention = attentionMetrics(maps, await trainedDistances(session, params), session.sheet.num_columns);
    const imagesPerStep = config.batch_size * config.accum_steps;
    const throughput = records.map((r) => r.images_per_second).filter((v): v is number => typeof v === "number" && Number.isFinite(v) && v > 0);
    const final = trained.final;
    return {
      name: run.name,
      overrides: run.overrides,
      task: config.vision.task,
      steps: trained.steps,
      parameters: countParameters(params),
      flops_per_image: flopsPerImage(session.sheet, session.vision, session.layout),
      images_per_second: median(throughput),
      // time inside optimisation steps (each log record: images / img/s); excludes periodic eval and checkpoint writes
      train_seconds: throughput.reduce((s, ips) => s + imagesPerStep / ips, 0),
      eval: {
        // the evaluation's wiring cost is unweighted: weight it with the coefficient of the last step (as evaluate() does)
        loss: (final.mim_loss ?? final.classification_loss ?? NaN) + session.coefficients(config.steps - 1).wiring * (final.wiring_cost ?? 0),
        ...(final.mim_loss !== undefined ? { mim_loss: final.mim_loss } : {}),
        ...(final.accuracy !== undefined ? { accuracy: final.accuracy } : {}),
      },
      probe_accuracy,
      wiring_cost: attention.wiringCost,
      mean_attention_distance: attention.meanDistance,
    };
  } finally {
    tree.dispose(checkpoint.params);
    disposeSession(session);
  }
}


/**
 * Column distances [N, N] (row-major) to measure the trained attention
 * against: those of the learned positions when the sheet learns them, else
 * the geometry's. Borrows `params`.
 */
async function trainedDistances(session: Session, params: VisionParams): Promise<ArrayLike<number>> {
  if (!params.positions) return distanceMatrix(session.geometry);
  return (await positionDistances(params.positions.ref, positionSpace(session.geometry)).data()) as Float32Array;
}

/** Linear-probe test accuracy on frozen output-area features; null (with a warning) for an unlabelled data set. Borrows `params`. */
async function probeAccuracy(
  session: Session,
  params: VisionParams,
  trainSet: ImageDataset,
  testSet: ImageDataset,
  settings: ProbeSettings,
  name: string,
): Promise<number | null> {
  const classes = trainSet.numClasses;
  if (!classes) {
    process.stderr.write(`warning: ${name}: ${trainSet.name} has no labels, so no linear probe (set probe: false to silence this)\n`);
    return null;
  }
  const tr = await extractFeatures(session, params, trainSet, settings.train_images, settings.pooling);
  const te = await extractFeatures(session, params, testSet, settings.test_images, settings.pooling);
  const result = await linearProbe(tr, te, tr.dim, classes, { epochs: settings.epochs, seed: session.config.seed });
  return result.testAccuracy;
}

/**
 * Unweighted L1 wiring cost (lambda 1, p 1: W = d / mean d) and mean attention
 * distance of each step's map in `maps` ([depth, N, N]), averaged over steps.
 * Both are linear in the map, so the mean over images of per-image values
 * equals the value of the image-mean map.
 */
export function attentionMetrics(maps: Float32Array, distances: ArrayLike<number>, n: number): { wiringCost: number; meanDistance: number } {
  const nn = n * n;
  const depth = maps.length / nn;
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`attention maps: length ${maps.length} is not a multiple of N*N = ${nn}`);
  let wiringCost = 0;
  let meanDistance = 0;
  for (let d = 0; d < depth; d++) {
    const map = maps.subarray(d * nn, (d + 1) * nn);
    wiringCost += wiringCosts(map, distances, { lambda: 1, p: 1 }).l1;
    meanDistance += meanAttentionDistance(map, distances);
  }
  return { wiringCost: wiringCost / depth, meanDistance: meanDistance / depth };
}

/** Median of a list (mean of the two middle values for an even count); NaN when empty. */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
