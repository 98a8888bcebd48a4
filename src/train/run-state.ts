/**
 * What a run directory's files say about its run: new (nothing to resume), partly trained
 * (checkpoints to resume from) or finished (summary.json for the planned steps), and, for a
 * partly trained run, the newest complete checkpoint it resumes from. train, resume,
 * trainToCompletion, sweeps, prune, grow and progressive training all decide from these two
 * functions; the file layout itself is src/train/run-dir.ts's.
 *
 * ```
 * new       no config.json, or no checkpoint     -> train from step 0 (from init.safetensors if any)
 * partial   config.json and a last / step-N file -> resume (findResumePoint picks the checkpoint)
 * finished  summary.json of the planned steps    -> nothing to train
 *           and checkpoints/last.safetensors
 * ```
 *
 * A damaged checkpoint does not change the state: {@link findResumePoint} skips it with a
 * warning and falls back to an older one, or to step 0 when none is complete.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { checkResumePoint, type ResumePoint } from "../checkpoint/training-state.ts";
import { type CheckpointTag, checkpointPath, optimizerPath, resumeCandidates, type RunDir, runDirPaths } from "./run-dir.ts";
import type { Backend } from "../engine/backend.ts";
import type { EvalResult } from "./evaluate.ts";

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

/** Where a run directory stands, from which files it holds (none is loaded but summary.json). */
export type RunDirState =
  /** Nothing to resume: training starts at step 0 (from `init.safetensors` when there is one). */
  | { kind: "new" }
  /** Checkpoints to resume from, newest first, not yet checked (see {@link findResumePoint}). */
  | { kind: "partial"; candidates: CheckpointTag[] }
  /** Trained to the planned steps: `summary.json` of them, and `checkpoints/last` (its final model). */
  | { kind: "finished"; summary: TrainSummary };

/**
 * The state of run directory `root` for a run planned to `steps` training steps. A summary of
 * another length (the run was extended, or the plan changed) does not count as finished.
 *
 * @throws If summary.json exists but is not valid JSON.
 */
export function runDirState(root: string, steps: number): RunDirState {
  const dir = runDirPaths(root);
  if (existsSync(dir.summaryPath) && existsSync(checkpointPath(dir, "last"))) {
    const summary = readTrainSummary(dir);
    if (summary.steps === steps) return { kind: "finished", summary };
  }
  const candidates = existsSync(dir.configPath) ? resumeCandidates(dir) : [];
  return candidates.length > 0 ? { kind: "partial", candidates } : { kind: "new" };
}

/**
 * The summary.json of the run in `dir`.
 *
 * @throws If it is missing or not valid JSON.
 */
export function readTrainSummary(dir: RunDir): TrainSummary {
  try {
    return JSON.parse(readFileSync(dir.summaryPath, "utf8")) as TrainSummary;
  } catch (e) {
    throw new Error(`${dir.summaryPath}: cannot read JSON (${(e as Error).message})`);
  }
}

/** A checked checkpoint to resume from, and which one it is. */
export interface ResumeFrom {
  tag: CheckpointTag;
  point: ResumePoint;
}

/**
 * The newest complete checkpoint of the run: `last` unless a newer `step-N` exists, each
 * checked by {@link checkResumePoint}; damaged or half-written ones are skipped, and `say`
 * names them and where the run resumes instead. Null when there is none.
 */
export async function findResumePoint(dir: RunDir, say: (line: string) => void): Promise<ResumeFrom | null> {
  const tags = resumeCandidates(dir);
  if (tags.length === 0) return null;
  const problems: string[] = [];
  const check = async (tag: CheckpointTag): Promise<ResumeFrom | null> => {
    const statePath = optimizerPath(dir, tag);
    if (!existsSync(statePath)) {
      problems.push(`${path.basename(statePath)} is missing`);
      return null;
    }
    try {
      return { tag, point: await checkResumePoint(checkpointPath(dir, tag), statePath) };
    } catch (e) {
      problems.push((e as Error).message.replace(`${dir.checkpointsDir}${path.sep}`, ""));
      return null;
    }
  };
  const last = tags[0] === "last" ? await check("last") : null;
  let found: ResumeFrom | null = null;
  for (const tag of tags) {
    if (tag === "last") continue;
    if (last !== null && (tag as number) <= last.point.step) break;
    found = await check(tag);
    if (found) break;
  }
  found ??= last;
  if (problems.length > 0) {
    const where = found ? `resuming from ${path.basename(checkpointPath(dir, found.tag))} (step ${found.point.step})` : "no complete checkpoint is left, so it starts from step 0";
    say(`warning: ${dir.checkpointsDir}: skipped ${problems.join("; ")}; ${where}`);
  }
  return found;
}
