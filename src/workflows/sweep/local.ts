/**
 * Running a sweep on this machine: one run after another in this process, or
 * `jobs` runs at a time as child processes (`columnformer sweep FILE --out DIR
 * --task I`), each with an equal share of the cores. A failed run is reported
 * and the others go on.
 */
import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { executeRun, runRoot, runState } from "./run.ts";
import type { PlannedRun, SweepPlan } from "./spec.ts";

/**
 * Set in a `--jobs` child's environment: its stdin is a pipe from the parent sweep, and the
 * child stops (resumable) when that pipe closes, i.e. when the parent is gone, even by kill -9.
 */
export const PARENT_PIPE_ENV = "COLUMNFORMER_PARENT_PIPE";

/**
 * In a `--jobs` child (see {@link PARENT_PIPE_ENV}): exit (status 143, through the exit
 * clean-up: temporary files removed, run lock released) as soon as the parent sweep process
 * is gone. Does nothing elsewhere, and never keeps the process alive by itself.
 */
export function exitWithParent(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): void {
  if (process.env[PARENT_PIPE_ENV] !== "1") return;
  const gone = () => {
    log("the parent sweep process is gone; stopping (this run stays resumable: rerun the sweep)");
    process.exit(143);
  };
  process.stdin.on("end", gone);
  process.stdin.on("close", gone);
  process.stdin.on("error", gone);
  process.stdin.resume();
  (process.stdin as unknown as { unref?: () => void }).unref?.();
}

/** How to start one run as a child process (needed when `jobs > 1`). */
export interface ChildCommand {
  /** The CLI entry script (`process.argv[1]` of the `columnformer` command). */
  script: string;
  /** The sweep file, passed on to the child. */
  sweepFile: string;
  /** Node options of the child (default `process.execArgv`, e.g. `--import tsx`). */
  execArgv?: string[];
}

/** Options of {@link runSweepLocal}. */
export interface LocalSweepOptions {
  /** Indices of `plan.runs` to execute, in order (default: all). */
  indices?: number[];
  /** Runs at a time (default 1: sequentially, in this process). */
  jobs?: number;
  /** Required when `jobs > 1`. */
  child?: ChildCommand;
  /** Trainer progress output (default true). */
  verbose?: boolean;
  /** Where sweep messages and (prefixed) child output go (default: stderr). */
  log?: (line: string) => void;
}

/** What became of one run. */
export interface RunReport {
  index: number;
  name: string;
  /** "skipped": already finished; "completed": finished now; "failed": see `error`. */
  status: "skipped" | "completed" | "failed";
  /** One line: why it failed. */
  error?: string;
  /** Wall-clock seconds this call spent on the run. */
  seconds: number;
}

/** Worker threads per child when `jobs` runs share this machine: max(1, floor(cores / jobs)). */
export function threadsPerJob(jobs: number, cores: number = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / jobs));
}

/**
 * Execute the sweep's runs here. Finished runs are skipped; partial ones resume.
 * Never throws for a failed run: check the reports' `status`.
 */
export async function runSweepLocal(plan: SweepPlan, sweepDir: string, options: LocalSweepOptions = {}): Promise<RunReport[]> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runs = (options.indices ?? plan.runs.map((r) => r.index)).map((i) => plan.runs[i]);
  const jobs = Math.max(1, Math.min(options.jobs ?? 1, runs.length));
  const reports: RunReport[] = new Array<RunReport>(runs.length);
  let started = 0;
  const label = (k: number, run: PlannedRun) => `[${k + 1}/${runs.length}] ${run.name}`;

  if (jobs === 1) {
    for (const [k, run] of runs.entries()) {
      log(`${label(k, run)}: ${runState(runRoot(sweepDir, run.name), run.config.steps)}`);
      const t0 = performance.now();
      try {
        const result = await executeRun(plan, run, sweepDir, { verbose: options.verbose, log });
        reports[k] = { index: run.index, name: run.name, status: result.status, seconds: (performance.now() - t0) / 1000 };
      } catch (e) {
        const error = firstLine((e as Error).message);
        log(`${run.name}: FAILED: ${error}`);
        reports[k] = { index: run.index, name: run.name, status: "failed", error, seconds: (performance.now() - t0) / 1000 };
      }
    }
    return reports;
  }

  if (!options.child) throw new Error("runSweepLocal: jobs > 1 needs options.child (how to start a run as a child process)");
  const child = options.child;
  const threads = threadsPerJob(jobs);
  const children = new Set<ChildProcess>();
  log(`running ${runs.length} runs, ${jobs} at a time, ${threads} thread${threads === 1 ? "" : "s"} each`);
  const worker = async () => {
    while (started < runs.length) {
      const k = started++;
      const run = runs[k];
      const state = runState(runRoot(sweepDir, run.name), run.config.steps);
      if (state === "done") {
        log(`${label(k, run)}: done`);
        reports[k] = { index: run.index, name: run.name, status: "skipped", seconds: 0 };
        continue;
      }
      log(`${label(k, run)}: ${state}, starting`);
      const t0 = performance.now();
      const { code, lastLine } = await runChild(child, sweepDir, run, threads, log, children, options.verbose ?? true);
      const seconds = (performance.now() - t0) / 1000;
      if (code === 0) {
        reports[k] = { index: run.index, name: run.name, status: "completed", seconds };
      } else {
        const error = lastLine ?? `exited with code ${code}`;
        log(`${run.name}: FAILED: ${error}`);
        reports[k] = { index: run.index, name: run.name, status: "failed", error, seconds };
      }
    }
  };
  // Ctrl-C or a kill of this process stops the children too (they stay resumable: checkpoints are atomic).
  const stop = (signal: NodeJS.Signals) => {
    for (const proc of children) proc.kill(signal);
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    await Promise.all(Array.from({ length: jobs }, worker));
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
  return reports;
}

/**
 * Run `--task run.index` as a child process (tracked in `children` while it
 * lives); every output line goes to `log` prefixed with `[name] `.
 */
function runChild(
  child: ChildCommand,
  sweepDir: string,
  run: PlannedRun,
  threads: number,
  log: (line: string) => void,
  children: Set<ChildProcess>,
  verbose: boolean,
): Promise<{ code: number; lastLine: string | null }> {
  const args = [
    ...(child.execArgv ?? process.execArgv),
    child.script,
    "sweep",
    path.resolve(child.sweepFile),
    "--out",
    path.resolve(sweepDir),
    "--task",
    String(run.index),
    ...(verbose ? [] : ["--quiet"]),
  ];
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, args, {
      // stdin: a pipe the child watches, so it stops when this process dies (even by kill -9)
      env: { ...process.env, COLUMNFORMER_THREADS: String(threads), [PARENT_PIPE_ENV]: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    children.add(proc);
    let lastLine: string | null = null;
    const pipe = (stream: NodeJS.ReadableStream, keepLast: boolean) => {
      let pending = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const lines = (pending + chunk).split(/\r?\n|\r/);
        pending = lines.pop() ?? "";
        for (const line of lines) emit(line, keepLast);
      });
      stream.on("end", () => pending && emit(pending, keepLast));
    };
    const emit = (line: string, keepLast: boolean) => {
      if (line.trim() === "") return;
      log(`[${run.name}] ${line}`);
      if (keepLast) lastLine = line.replace(/^columnformer: error: /, "");
    };
    pipe(proc.stdout, false);
    pipe(proc.stderr, true);
    proc.on("error", (e) => {
      children.delete(proc);
      resolve({ code: -1, lastLine: `cannot start ${process.execPath}: ${e.message}` });
    });
    proc.on("close", (code, signal) => {
      children.delete(proc);
      resolve({ code: code ?? -1, lastLine: signal ? `killed by ${signal}` : lastLine });
    });
  });
}

function firstLine(s: string): string {
  return s.split("\n")[0];
}
