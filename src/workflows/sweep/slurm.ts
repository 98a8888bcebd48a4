/**
 * Slurm job arrays for sweeps: one array task per run, each running
 * `columnformer sweep FILE --out DIR --task $SLURM_ARRAY_TASK_ID`. A task skips
 * a finished run and resumes a partial one, so resubmitting the script is safe.
 *
 * {@link slurmScript} is a pure generator; {@link submitSbatch} hands the
 * script to `sbatch`.
 */
import { spawn } from "node:child_process";

/** Options of {@link slurmScript}. */
export interface SlurmScriptOptions {
  /** `#SBATCH --job-name`. */
  jobName: string;
  /** Array task ids, one per run (0-based run indices), e.g. [0, 1, 2, 3] -> `--array=0-3`. */
  tasks: number[];
  /** At most this many tasks at once: `--array=0-3%K`. */
  maxParallel?: number;
  /** Absolute folder of the per-task logs: `--output=<logDir>/%A_%a.out` (must exist when the job starts). */
  logDir: string;
  /** `--partition`. */
  partition?: string;
  /** `--time` wall-clock limit per task, e.g. `2:00:00` or `1-00:00:00`. */
  time?: string;
  /** GPUs per task: `--gres=gpu:G`. */
  gpus?: number;
  /** `--cpus-per-task`; also the default of COLUMNFORMER_THREADS in the task. */
  cpusPerTask: number;
  /** `--mem` per task, e.g. `8G`. */
  mem?: string;
  /** `--account`. */
  account?: string;
  /** Absolute directory the task `cd`s into before running. */
  workDir: string;
  /** The command a task runs, as argv (absolute paths); `--task "$SLURM_ARRAY_TASK_ID"` is appended. */
  command: string[];
  /** Comment lines put after the directives (without `#`). */
  comments?: string[];
}

/** Quote a word for bash: bare when it is only safe characters, else in single quotes. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_/.,:=@%+-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Compact array spec of task ids: sorted, runs of consecutive ids as ranges,
 * e.g. [0, 1, 2, 5, 7, 8] -> `0-2,5,7-8`.
 */
export function arraySpec(tasks: number[]): string {
  const ids = [...new Set(tasks)].sort((a, b) => a - b);
  if (ids.length === 0) throw new Error("a Slurm job array needs at least one task");
  for (const id of ids) if (!Number.isInteger(id) || id < 0) throw new Error(`Slurm array task ids must be non-negative integers, got ${id}`);
  const parts: string[] = [];
  let start = ids[0];
  let prev = ids[0];
  for (const id of [...ids.slice(1), Infinity]) {
    if (id === prev + 1) {
      prev = id;
      continue;
    }
    parts.push(start === prev ? String(start) : `${start}-${prev}`);
    start = prev = id;
  }
  return parts.join(",");
}

/** An #SBATCH value: sbatch reads these lines itself (not a shell), so spaces and quotes are refused. */
function directiveValue(option: string, value: string): string {
  if (value === "" || /[\s'"\\]/.test(value)) {
    throw new Error(`--${option} ${JSON.stringify(value)} cannot go into an #SBATCH line (empty, or has spaces, quotes or backslashes)`);
  }
  return value;
}

/**
 * The job-array script: `#SBATCH` directives, then `set -euo pipefail`, `cd`
 * to `workDir`, `COLUMNFORMER_THREADS` from `SLURM_CPUS_PER_TASK`, and `exec`
 * of `command` with the task's index.
 *
 * @throws If an option cannot be written safely (see the messages).
 */
export function slurmScript(opts: SlurmScriptOptions): string {
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`--${name} must be a positive integer, got ${v}`);
  };
  positive("cpus-per-task", opts.cpusPerTask);
  positive("max-parallel", opts.maxParallel);
  positive("gpus", opts.gpus);
  if (opts.command.length === 0) throw new Error("slurmScript: empty command");
  const array = arraySpec(opts.tasks) + (opts.maxParallel !== undefined ? `%${opts.maxParallel}` : "");
  const directives: [string, string | undefined][] = [
    ["job-name", directiveValue("job-name", opts.jobName)],
    ["array", array],
    ["output", `${directiveValue("out", opts.logDir.replace(/\/+$/, ""))}/%A_%a.out`],
    ["cpus-per-task", String(opts.cpusPerTask)],
    ["partition", opts.partition === undefined ? undefined : directiveValue("partition", opts.partition)],
    ["time", opts.time === undefined ? undefined : directiveValue("time", opts.time)],
    ["gres", opts.gpus === undefined ? undefined : `gpu:${opts.gpus}`],
    ["mem", opts.mem === undefined ? undefined : directiveValue("mem", opts.mem)],
    ["account", opts.account === undefined ? undefined : directiveValue("account", opts.account)],
  ];
  const lines = [
    "#!/bin/bash",
    ...directives.filter((d): d is [string, string] => d[1] !== undefined).map(([k, v]) => `#SBATCH --${k}=${v}`),
    ...(opts.comments ?? []).map((c) => `# ${c}`.trimEnd()),
    "set -euo pipefail",
    `cd ${shellQuote(opts.workDir)}`,
    `export COLUMNFORMER_THREADS=\${SLURM_CPUS_PER_TASK:-${opts.cpusPerTask}}`,
    `exec ${opts.command.map(shellQuote).join(" ")} --task "$SLURM_ARRAY_TASK_ID"`,
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * Submit a script with `sbatch --parsable` (no shell involved).
 *
 * @returns The job id sbatch prints.
 * @throws If sbatch is missing or refuses the job (its message included).
 */
export function submitSbatch(scriptPath: string, sbatch = "sbatch"): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(sbatch, ["--parsable", scriptPath], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    proc.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    proc.on("error", (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          e.code === "ENOENT"
            ? `${sbatch} not found: submit from a Slurm login node, or run "sbatch ${scriptPath}" there yourself`
            : `cannot run ${sbatch}: ${e.message}`,
        ),
      ),
    );
    proc.on("close", (code) => {
      if (code !== 0) {
        reject(new Error(`${sbatch} ${scriptPath} failed (exit ${code}): ${stderr.trim().split("\n").pop() ?? ""}`));
        return;
      }
      // --parsable prints "jobid" or "jobid;cluster"
      const id = stdout.trim().split("\n").pop()?.split(";")[0] ?? "";
      if (!/^\d+$/.test(id)) reject(new Error(`${sbatch} printed no job id (got ${JSON.stringify(stdout.trim())})`));
      else resolve(id);
    });
  });
}
