/**
 * The run directory: everything one training run writes, in one folder.
 *
 * ```
 * <root>/config.json                       resolved config (written once, atomically)
 * <root>/log.jsonl                         one JSON record per line (append-only)
 * <root>/summary.json                      written by the caller via writeJsonAtomic
 * <root>/checkpoints/last.safetensors      (+ last.opt.safetensors: optimizer state)
 * <root>/checkpoints/best.safetensors      (+ best.opt.safetensors)
 * <root>/checkpoints/step-000100.safetensors (+ step-000100.opt.safetensors)
 * ```
 *
 * State is explicit: a {@link RunDir} is just the paths; nothing is cached in
 * memory apart from a per-log write queue that keeps appends from this process
 * in order.
 */
import { existsSync, readdirSync } from "node:fs";
import { type FileHandle, mkdir, open, readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";

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
}

/** Tag of a checkpoint: the rolling `last`, the `best` so far, or a step number. */
export type CheckpointTag = "last" | "best" | number;

const CONFIG_FILE = "config.json";
const LOG_FILE = "log.jsonl";
const CHECKPOINTS_DIR = "checkpoints";

function runDirPaths(root: string): RunDir {
  const abs = path.resolve(root);
  return {
    root: abs,
    configPath: path.join(abs, CONFIG_FILE),
    logPath: path.join(abs, LOG_FILE),
    checkpointsDir: path.join(abs, CHECKPOINTS_DIR),
  };
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
  await writeFileAtomic(filePath, text + "\n");
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
  await mkdir(dir.checkpointsDir, { recursive: true });
  if (existsSync(dir.configPath)) {
    const existing = await readConfig(dir.configPath);
    // Compare the JSON round trip of the new config (as it would be stored) with the stored one.
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
  return { dir, config };
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
  const line = JSON.stringify(record) + "\n";
  return enqueue(dir.logPath, async () => {
    await mkdir(path.dirname(dir.logPath), { recursive: true });
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
    await writeFileAtomic(dir.logPath, kept.map((r) => JSON.stringify(r) + "\n").join(""));
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

/**
 * Steps that have a model checkpoint file (`step-NNNNNN.safetensors`), ascending.
 *
 * @param dir The run directory.
 * @returns Step numbers; empty if there is no checkpoints folder.
 */
export function listStepCheckpoints(dir: RunDir): number[] {
  let names: string[];
  try {
    names = readdirSync(dir.checkpointsDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const steps: number[] = [];
  for (const name of names) {
    const m = STEP_CHECKPOINT_RE.exec(name);
    if (m) steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}
