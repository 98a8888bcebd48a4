/**
 * The run directory: everything one training run writes, in one folder.
 *
 * ```
 * <root>/config.json                       resolved config (written once, atomically)
 * <root>/log.jsonl                         one JSON record per line (append-only)
 * <root>/summary.json                      the finished run's summary (written last: it marks the run finished)
 * <root>/best.json                         the best held-out evaluation so far
 * <root>/reconstructions.png               a finished MIM run's held-out reconstructions
 * <root>/init.safetensors                  optional starting parameters (a pruned or grown model)
 * <root>/checkpoints/last.safetensors      the model (any safetensors tool reads it)
 * <root>/checkpoints/last.opt.safetensors  the training state: the model's tensors, AdamW
 *                                          moments and step, in ONE file (what resume reads)
 * <root>/checkpoints/best.safetensors      the model only
 * <root>/checkpoints/step-000100.safetensors (+ step-000100.opt.safetensors)
 * <root>/.lock                             while a process trains here: its pid, host, start
 * ```
 *
 * Every file is written atomically; a training state is written before its model file, so
 * a crash between the two leaves a complete state (resume) and, at worst, an older model
 * file that the resumed run rewrites. A run directory is locked by the process training in
 * it ({@link lockRunDir}); stale locks and temporary files of dead processes are removed
 * when it is opened.
 *
 * Every path of these files is built here ({@link runDirPaths}, {@link checkpointPath},
 * {@link optimizerPath}); what the files say about the run (new, resumable, finished) is read
 * by src/train/run-state.ts.
 *
 * State is explicit: a {@link RunDir} is just the paths; nothing is cached in
 * memory apart from a per-log write queue that keeps appends from this process
 * in order.
 */
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeSync } from "node:fs";
import { type FileHandle, open, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ensureDir, ensureDirSync, onProcessExit, processAlive, removeStaleTempFiles, writeFileAtomic } from "../io/atomic.ts";

/** Paths of one run directory. */
export interface RunDir {
  /** The run directory itself (absolute). */
  root: string;
  /** `<root>/config.json`: the resolved config of the run. */
  configPath: string;
  /** `<root>/log.jsonl`: one JSON record per line. */
  logPath: string;
  /** `<root>/checkpoints`: model and optimizer checkpoints. */
  checkpointsDir: string;
  /** `<root>/summary.json`: the finished run's summary, written last. */
  summaryPath: string;
  /** `<root>/best.json`: the best held-out evaluation so far (with its step). */
  bestEvalPath: string;
  /** `<root>/reconstructions.png`: a finished MIM run's held-out reconstructions. */
  reconstructionsPath: string;
  /** `<root>/init.safetensors`: the run's starting parameters, when it has its own (see {@link INIT_CHECKPOINT}). */
  initPath: string;
  /** `<root>/analysis`: `columnformer analyze` of the run's preferred checkpoint (see {@link analysisDirOf}). */
  analysisDir: string;
}

/** Tag of a checkpoint: the rolling `last`, the `best` so far, or a step number. */
export type CheckpointTag = "last" | "best" | number;

/**
 * A run directory's starting parameters: when `<run>/init.safetensors` exists and the run has
 * no checkpoint yet, training starts from it instead of a random init (the optimiser state
 * starts fresh; every checkpoint is written as usual).
 */
export const INIT_CHECKPOINT = "init.safetensors";

const CONFIG_FILE = "config.json";
const LOG_FILE = "log.jsonl";
const SUMMARY_FILE = "summary.json";
const BEST_EVAL_FILE = "best.json";
const RECONSTRUCTIONS_FILE = "reconstructions.png";
const CHECKPOINTS_DIR = "checkpoints";
const ANALYSIS_DIR = "analysis";

/** The paths of run directory `root` (nothing is read or created). */
export function runDirPaths(root: string): RunDir {
  const abs = path.resolve(root);
  return {
    root: abs,
    configPath: path.join(abs, CONFIG_FILE),
    logPath: path.join(abs, LOG_FILE),
    checkpointsDir: path.join(abs, CHECKPOINTS_DIR),
    summaryPath: path.join(abs, SUMMARY_FILE),
    bestEvalPath: path.join(abs, BEST_EVAL_FILE),
    reconstructionsPath: path.join(abs, RECONSTRUCTIONS_FILE),
    initPath: path.join(abs, INIT_CHECKPOINT),
    analysisDir: path.join(abs, ANALYSIS_DIR),
  };
}

/**
 * Remove what an attempt may have left before its first checkpoint (the log, best.json, the
 * summary, reconstructions, the checkpoints folder with its `best` files), so a fresh start
 * inherits none of it. config.json and init.safetensors stay.
 */
export async function removeTrainingOutputs(dir: RunDir): Promise<void> {
  for (const file of [dir.logPath, dir.bestEvalPath, dir.summaryPath, dir.reconstructionsPath, dir.checkpointsDir]) {
    await rm(file, { recursive: true, force: true });
  }
}

/** JSON text with object keys sorted, so two configs compare equal regardless of key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v as Record<string, unknown>).sort()) {
        sorted[k] = (v as Record<string, unknown>)[k];
      }
      return sorted;
    }
    return v;
  });
}

/**
 * Write `value` as pretty JSON (2-space indent, trailing newline) atomically.
 * Non-finite numbers become `null`, as with `JSON.stringify`.
 *
 * @param filePath Destination file; parent directories are created.
 * @param value Any JSON-serialisable value.
 */
export async function writeJsonAtomic(filePath: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new TypeError(`writeJsonAtomic: value for ${filePath} is not JSON-serialisable`);
  await writeFileAtomic(filePath, `${text}\n`);
}

/**
 * Create (or re-enter) the run directory `root` for a NEW run with config
 * `resolvedConfig`: creates `root` and `root/checkpoints` (mkdir -p) and writes
 * `config.json` atomically as pretty JSON.
 *
 * If `root/config.json` already exists it is never overwritten: when it holds
 * the same config (compared as JSON, key order ignored) the directory is
 * returned as is; otherwise this throws. To resume a run use {@link openRunDir}.
 *
 * @param root Run directory path.
 * @param resolvedConfig The fully resolved, JSON-serialisable run config.
 * @returns The run directory's paths.
 * @throws If `root` holds the config.json of a different run, or it cannot be read.
 */
export async function createRunDir(root: string, resolvedConfig: unknown): Promise<RunDir> {
  const dir = runDirPaths(root);
  const text = JSON.stringify(resolvedConfig) as string | undefined;
  if (text === undefined) throw new TypeError("createRunDir: resolvedConfig is not JSON-serialisable");
  await ensureDir(dir.checkpointsDir);
  removeStaleTemps(dir);
  if (existsSync(dir.configPath)) {
    const existing = await readConfig(dir.configPath);
    // Compare the JSON round trip of the new config (as it would be stored) with the stored one.
    if (canonicalJson(existing) !== canonicalJson(JSON.parse(text)) && neverTrained(dir)) {
      // a start that failed before its first step (e.g. a missing data path) left only its
      // config: nothing was trained, so the corrected run takes the directory over
      await writeJsonAtomic(dir.configPath, resolvedConfig);
      return dir;
    }
    if (canonicalJson(existing) !== canonicalJson(JSON.parse(text))) {
      throw new Error(
        `run directory ${dir.root} already holds a different run (${dir.configPath}); ` +
          `choose a new directory, or resume that run instead of starting a new one`,
      );
    }
    return dir;
  }
  await writeJsonAtomic(dir.configPath, resolvedConfig);
  return dir;
}

/**
 * Nothing of a run is here but its config: no logged step, no checkpoint, no summary, no
 * starting parameters (`init.safetensors`, e.g. a grown or pruned model, is kept with its config).
 */
function neverTrained(dir: RunDir): boolean {
  if (existsSync(dir.summaryPath) || existsSync(dir.initPath)) return false;
  try {
    if (statSync(dir.logPath).size > 0) return false;
  } catch {
    // no log
  }
  let names: string[] = [];
  try {
    names = readdirSync(dir.checkpointsDir);
  } catch {
    // no checkpoints folder
  }
  return !names.some((n) => n.endsWith(".safetensors") && !n.startsWith("."));
}

/** Temporary files of dead writers, in the run directory and its checkpoints folder. */
function removeStaleTemps(dir: RunDir): void {
  removeStaleTempFiles(dir.root);
  removeStaleTempFiles(dir.checkpointsDir);
}

async function readConfig(configPath: string): Promise<unknown> {
  const text = await readFile(configPath, "utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`${configPath}: invalid JSON (${(err as Error).message})`);
  }
}

/**
 * Open an existing run directory (to resume, evaluate or inspect it).
 *
 * @param root Run directory path.
 * @returns Its paths and the parsed `config.json`.
 * @throws If `root/config.json` is missing (not a run directory) or not valid JSON.
 */
export async function openRunDir(root: string): Promise<{ dir: RunDir; config: unknown }> {
  const dir = runDirPaths(root);
  if (!existsSync(dir.configPath)) {
    throw new Error(`${dir.root} is not a run directory: ${dir.configPath} is missing`);
  }
  const config = await readConfig(dir.configPath);
  removeStaleTemps(dir);
  return { dir, config };
}

// ---------------------------------------------------------------------------
// Lock

/** The lock file of a run directory. */
export const LOCK_FILE = ".lock";

/** What a lock file holds. */
export interface RunLockInfo {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** Random, to tell this lock from a later one of a reused pid. */
  nonce: string;
  /** The command line of the owner. */
  command: string;
  /** The owner's Slurm job (`SLURM_JOB_ID`, array task), when it ran under Slurm. */
  slurm_job?: string;
}

/** This process's Slurm job (job id and array task), or undefined outside Slurm. */
function slurmJob(): string | undefined {
  const id = process.env.SLURM_JOB_ID;
  if (!id) return undefined;
  const task = process.env.SLURM_ARRAY_TASK_ID;
  return task ? `${id}_${task}` : id;
}

/** A lock on another host counts as stale when its heartbeat (mtime) is older than this. */
export const LOCK_STALE_MS = 10 * 60 * 1000;
const LOCK_HEARTBEAT_MS = 60 * 1000;

/** Locks this process holds: root -> { count (re-entrant), release }. */
const heldLocks = new Map<string, { count: number; release: () => void }>();

function readLockInfo(lockPath: string): RunLockInfo | null {
  try {
    const v = JSON.parse(readFileSync(lockPath, "utf8")) as Partial<RunLockInfo>;
    if (typeof v.pid === "number" && typeof v.host === "string" && typeof v.nonce === "string") return v as RunLockInfo;
  } catch {
    // missing, or torn by a crash while it was written
  }
  return null;
}

/**
 * Whether the lock at `lockPath` (content `info`) belongs to a process that is gone: on this
 * host, its pid is not alive; on another host (a shared file system), its heartbeat stopped
 * more than {@link LOCK_STALE_MS} ago, or it is this very Slurm job, requeued; an unreadable lock
 * counts as stale after a minute.
 */
function lockIsStale(lockPath: string, info: RunLockInfo | null): boolean {
  let age = 0;
  try {
    age = Date.now() - statSync(lockPath).mtimeMs;
  } catch {
    return true;
  }
  if (info === null) return age > LOCK_HEARTBEAT_MS;
  if (info.host === os.hostname()) return info.pid !== process.pid && !processAlive(info.pid);
  // a requeued Slurm job (node failure, preemption) keeps its job id: its earlier run is gone
  const job = slurmJob();
  if (job !== undefined && info.slurm_job === job) return true;
  return age > LOCK_STALE_MS;
}

/**
 * Lock the run directory `root` for this process (re-entrant within the process): creates
 * `root`, writes `<root>/.lock` (pid, host, start time) exclusively, removes temporary files
 * of dead writers, and returns the release function (also run when the process exits or
 * stops on a signal). A lock held by a live process is refused with one line naming it; a
 * stale one (its process gone, e.g. after kill -9) is taken over.
 *
 * @throws If another live process holds the lock, or `root` cannot be created.
 */
export function lockRunDir(root: string): () => void {
  const dir = runDirPaths(root);
  const held = heldLocks.get(dir.root);
  if (held) {
    held.count++;
    return () => releaseOnce(dir.root);
  }
  ensureDirSync(dir.root);
  const lockPath = path.join(dir.root, LOCK_FILE);
  const info: RunLockInfo = {
    pid: process.pid,
    host: os.hostname(),
    started: new Date().toISOString(),
    nonce: randomBytes(8).toString("hex"),
    command: process.argv.slice(1).join(" ").slice(0, 500),
    ...(slurmJob() !== undefined ? { slurm_job: slurmJob() } : {}),
  };
  for (let attempt = 0; ; attempt++) {
    let fd: number | null = null;
    try {
      fd = openSync(lockPath, "wx", 0o644);
      writeSync(fd, `${JSON.stringify(info)}\n`);
      fsyncSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        if (fd !== null) rmSync(lockPath, { force: true });
        throw new Error(`cannot lock run directory ${dir.root}: ${(e as Error).message}`);
      }
      const owner = readLockInfo(lockPath);
      if (attempt >= 3 || !lockIsStale(lockPath, owner)) {
        const who = owner
          ? `process ${owner.pid} on ${owner.host} (since ${owner.started}: ${owner.command})`
          : "another process (its lock file is being written)";
        throw new Error(
          `run directory ${dir.root} is in use by ${who}; wait for it to finish or stop it` +
            (owner ? ` (kill ${owner.pid})` : "") +
            `; if no such process is running, delete ${lockPath}`,
        );
      }
      // stale: move it aside atomically, and put it back if it turned out to be a fresh one
      const grave = `${lockPath}.stale.${process.pid}.${randomBytes(4).toString("hex")}`;
      try {
        renameSync(lockPath, grave);
      } catch {
        continue; // someone else moved it first
      }
      const moved = readLockInfo(grave);
      if (moved?.nonce !== owner?.nonce) {
        try {
          linkSync(grave, lockPath); // a lock taken meanwhile: restore it (fails if yet another exists)
        } catch {
          // ignore
        }
      }
      rmSync(grave, { force: true });
    } finally {
      if (fd !== null) closeSync(fd);
    }
  }
  removeStaleTemps(dir);
  const heartbeat = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(lockPath, now, now);
    } catch {
      // the directory went away; nothing to keep alive
    }
  }, LOCK_HEARTBEAT_MS);
  heartbeat.unref();
  let unregister: () => void = () => undefined;
  const release = () => {
    clearInterval(heartbeat);
    unregister();
    heldLocks.delete(dir.root);
    if (readLockInfo(lockPath)?.nonce === info.nonce) rmSync(lockPath, { force: true });
  };
  unregister = onProcessExit(release);
  heldLocks.set(dir.root, { count: 1, release });
  return () => releaseOnce(dir.root);
}

function releaseOnce(root: string): void {
  const held = heldLocks.get(root);
  if (!held) return;
  held.count--;
  if (held.count <= 0) held.release();
}

/** Who holds the lock of run directory `root`, or null when it is free (or the lock is stale). */
export function runDirLockOwner(root: string): RunLockInfo | null {
  const lockPath = path.join(runDirPaths(root).root, LOCK_FILE);
  if (!existsSync(lockPath)) return null;
  const info = readLockInfo(lockPath);
  return lockIsStale(lockPath, info) ? null : info;
}

// ---------------------------------------------------------------------------
// Log

/** Per-log-file promise chain so appends and truncations from this process never interleave. */
const logQueues = new Map<string, Promise<unknown>>();

function enqueue<T>(key: string, job: () => Promise<T>): Promise<T> {
  const prev = logQueues.get(key) ?? Promise.resolve();
  const next = prev.then(job, job);
  const settled = next.catch(() => undefined);
  logQueues.set(key, settled);
  void settled.then(() => {
    if (logQueues.get(key) === settled) logQueues.delete(key);
  });
  return next;
}

/**
 * Append one record as a JSON line to `log.jsonl` and fsync it.
 *
 * If the file ends in a torn (partial) line, left by a crash mid-write, that
 * fragment is cut off first so the new record starts on a line of its own.
 * Non-finite numbers are written as `null`.
 *
 * @param dir The run directory.
 * @param record A flat or nested JSON-serialisable object.
 */
export function appendLog(dir: RunDir, record: Record<string, unknown>): Promise<void> {
  const line = `${JSON.stringify(record)}\n`;
  return enqueue(dir.logPath, async () => {
    await ensureDir(path.dirname(dir.logPath));
    const handle = await open(dir.logPath, "a+");
    try {
      const { size } = await handle.stat();
      if (size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) {
          // Torn tail: drop everything after the last newline.
          await handle.truncate(await lastNewlineEnd(handle, size));
        }
      }
      await handle.appendFile(line, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
}

/** Byte length of the file's prefix up to and including its last newline (0 if none), scanning backwards. */
async function lastNewlineEnd(handle: FileHandle, size: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await handle.read(chunk, 0, end - start, start);
    const idx = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (idx >= 0) return start + idx + 1;
    end = start;
  }
  return 0;
}

function parseLog(text: string, logPath: string): Record<string, unknown>[] {
  const lines = text.split("\n");
  const records: Record<string, unknown>[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const isLast = i === lines.length - 1; // no trailing newline: possibly torn
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      if (isLast) break; // torn last line from an interrupted append
      throw new Error(`${logPath}:${i + 1}: invalid JSON line (${(err as Error).message})`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      if (isLast) break;
      throw new Error(`${logPath}:${i + 1}: log record is not a JSON object`);
    }
    records.push(value as Record<string, unknown>);
  }
  return records;
}

/**
 * Read all records of `log.jsonl`, in order. A torn (unparseable, unterminated)
 * last line is skipped; an invalid line elsewhere is an error. A missing log
 * reads as empty.
 *
 * @param dir The run directory.
 * @returns The records.
 * @throws If a line other than the last is not a JSON object.
 */
export async function readLog(dir: RunDir): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    text = await readFile(dir.logPath, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return parseLog(text, dir.logPath);
}

/**
 * Rewrite `log.jsonl` atomically, keeping only records whose numeric `step`
 * field is `<= step` (records without a numeric `step` are dropped too). Used
 * on resume so the log matches the restored checkpoint. A torn last line is
 * dropped. No-op when there is no log.
 *
 * @param dir The run directory.
 * @param step Last step to keep.
 */
export function truncateLogAfter(dir: RunDir, step: number): Promise<void> {
  return enqueue(dir.logPath, async () => {
    if (!existsSync(dir.logPath)) return;
    const records = parseLog(await readFile(dir.logPath, "utf8"), dir.logPath);
    const kept = records.filter((r) => typeof r.step === "number" && r.step <= step);
    await writeFileAtomic(dir.logPath, kept.map((r) => `${JSON.stringify(r)}\n`).join(""));
  });
}

// ---------------------------------------------------------------------------
// Checkpoints

function checkpointStem(tag: CheckpointTag): string {
  if (tag === "last" || tag === "best") return tag;
  if (typeof tag !== "number" || !Number.isSafeInteger(tag) || tag < 0) {
    throw new RangeError(`checkpoint tag must be "last", "best" or a non-negative integer step, got ${String(tag)}`);
  }
  return `step-${String(tag).padStart(6, "0")}`;
}

/**
 * Path of a model checkpoint: `checkpoints/last.safetensors`,
 * `checkpoints/best.safetensors` or `checkpoints/step-000100.safetensors`
 * (step zero-padded to 6 digits).
 *
 * @param dir The run directory.
 * @param tag `"last"`, `"best"` or a non-negative integer step.
 * @throws RangeError for a negative or non-integer step.
 */
export function checkpointPath(dir: RunDir, tag: CheckpointTag): string {
  return path.join(dir.checkpointsDir, `${checkpointStem(tag)}.safetensors`);
}

/**
 * Path of the optimizer-state sibling of a checkpoint:
 * `checkpoints/last.opt.safetensors`, `checkpoints/step-000100.opt.safetensors`, ...
 *
 * @param dir The run directory.
 * @param tag `"last"`, `"best"` or a non-negative integer step.
 * @throws RangeError for a negative or non-integer step.
 */
export function optimizerPath(dir: RunDir, tag: CheckpointTag): string {
  return path.join(dir.checkpointsDir, `${checkpointStem(tag)}.opt.safetensors`);
}

const STEP_CHECKPOINT_RE = /^step-(\d+)\.safetensors$/;

/** The file names in the run's checkpoints folder; empty when there is none. */
function checkpointFileNames(dir: RunDir): string[] {
  try {
    return readdirSync(dir.checkpointsDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/**
 * Steps that have a model checkpoint file (`step-NNNNNN.safetensors`), ascending.
 *
 * @param dir The run directory.
 * @returns Step numbers; empty if there is no checkpoints folder.
 */
export function listStepCheckpoints(dir: RunDir): number[] {
  const names = checkpointFileNames(dir);
  const steps: number[] = [];
  for (const name of names) {
    const m = STEP_CHECKPOINT_RE.exec(name);
    if (m) steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

/**
 * The model checkpoint a run is looked at with (view, analyze, lesion): `best`, else `last`,
 * else the newest step checkpoint; null when the run has none yet.
 */
export function preferredCheckpoint(dir: RunDir): string | null {
  for (const tag of ["best", "last"] as const) {
    if (existsSync(checkpointPath(dir, tag))) return checkpointPath(dir, tag);
  }
  const steps = listStepCheckpoints(dir);
  return steps.length > 0 ? checkpointPath(dir, steps[steps.length - 1]) : null;
}

/** The run directory a checkpoint file lies in (`<root>/checkpoints/<file>` with `<root>/config.json`), or null. */
export function runRootOfCheckpoint(file: string): string | null {
  const dir = runDirPaths(path.dirname(path.dirname(file)));
  return existsSync(dir.configPath) ? dir.root : null;
}

/**
 * Where the analysis of `checkpoint` lives: the run's `analysis/` folder when it is the
 * preferred checkpoint of the run directory it lies in, else `analysis-<name>/` beside it
 * (so analysing an older step never overwrites the run's own analysis).
 */
export function analysisDirOf(checkpoint: string): string {
  const root = runRootOfCheckpoint(checkpoint);
  const run = root === null ? null : runDirPaths(root);
  if (run && preferredCheckpoint(run) === path.resolve(checkpoint)) return run.analysisDir;
  return path.join(path.dirname(path.resolve(checkpoint)), `analysis-${path.basename(checkpoint, ".safetensors")}`);
}

const STEP_STATE_RE = /^step-(\d+)(?:\.opt)?\.safetensors$/;

/**
 * Checkpoints to resume from, newest first: `last`, then every step that has a model or a
 * training-state file, descending. The caller checks each one (see src/checkpoint/training-state.ts).
 */
export function resumeCandidates(dir: RunDir): CheckpointTag[] {
  const names = checkpointFileNames(dir);
  const steps = new Set<number>();
  for (const name of names) {
    const m = STEP_STATE_RE.exec(name);
    if (m) steps.add(Number(m[1]));
  }
  const tags: CheckpointTag[] = [...steps].sort((a, b) => b - a);
  if (names.includes("last.safetensors") || names.includes("last.opt.safetensors")) tags.unshift("last");
  return tags;
}
