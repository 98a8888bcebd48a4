/** `columnformer sweep`: train and measure every run of a sweep file, here or as a Slurm job array. */
import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { writeFileAtomic } from "../../io/atomic.ts";
import { exitWithParent, runSweepLocal } from "../../workflows/sweep/local.ts";
import {
  assertPlanUnchanged,
  assertRunDirsMatch,
  describeSummary,
  executeRun,
  runRoot,
  runState,
  writePlan,
} from "../../workflows/sweep/run.ts";
import { PLAN_FILE, SUMMARY_FILE } from "../../workflows/sweep/summary.ts";
import { type SlurmScriptOptions, slurmScript, submitSbatch } from "../../workflows/sweep/slurm.ts";
import { loadSweep, type SweepPlan } from "../../workflows/sweep/spec.ts";
import type { RunSummary } from "../../workflows/sweep/summary.ts";
import { parseInteger } from "../options.ts";

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** The parsed flags: the sweep's own, and the Slurm script's (SlurmScriptOptions' names, so they pass straight through). */
type SweepOptions = {
  out?: string;
  jobs: number;
  task?: number;
  only?: string[];
  dryRun?: boolean;
  quiet?: boolean;
  slurm?: boolean;
  submit?: boolean;
} & Partial<Pick<SlurmScriptOptions, "jobName" | "partition" | "time" | "gpus" | "mem" | "account" | "maxParallel">> &
  Pick<SlurmScriptOptions, "cpusPerTask">;

const SLURM_ONLY = ["submit", "jobName", "partition", "time", "gpus", "mem", "account", "maxParallel"] as const;
const HELP = `
A sweep file (YAML or JSON) lists runs as a preset, a base config, common
overrides, named runs and a grid (dotted config paths -> values):

  name: weight-sharing
  preset: tiny
  set: { "vision.task": classify, steps: 300 }
  grid: { "wiring.lambda": [0, 0.01, 0.1] }
  runs:
    - { name: columns }
    - { name: transformer, set: { "sheet.untie_attn": false } }
  probe: { train_images: 2000, test_images: 1000 }   # or false
  measure_images: 500

Each run trains into <sweep dir>/<run name>/ and ends with sweep-summary.json.
Rerunning the same command skips finished runs and resumes interrupted ones.

Examples:
  columnformer sweep sweeps/ws.yaml --dry-run
  columnformer sweep sweeps/ws.yaml --jobs 2
  columnformer sweep sweeps/ws.yaml --slurm --partition cpu --time 4:00:00 --cpus-per-task 8 --submit`;

export function registerSweep(program: Command): void {
  program
    .command("sweep")
    .description("train and measure every run of a sweep file (preset x runs x grid), locally or as a Slurm job array; resumable")
    .argument("<file>", "sweep file, YAML or JSON")
    .option("--out <dir>", "sweep directory (default: runs/sweeps/<name>)")
    .option("--jobs <n>", "runs at a time, as child processes sharing the cores", parseInteger, 1)
    .option("--task <i>", "run only expanded run I (0-based; what --jobs children and Slurm array tasks run)", parseInteger)
    .option("--only <name>", "run only the run with this name, or every seed of it (repeatable)", collect)
    .option("--dry-run", "print the expanded runs and write sweep.json; train nothing")
    .option("--quiet", "no training progress output")
    .option("--slurm", "write <sweep dir>/sweep.sbatch, a job array with one task per run, instead of running")
    .option("--submit", "with --slurm: submit the script with sbatch and print the job id")
    .option("--job-name <name>", "with --slurm: job name (default: the sweep's name)")
    .option("--partition <p>", "with --slurm: partition")
    .option("--time <t>", "with --slurm: time limit per run, e.g. 4:00:00")
    .option("--gpus <g>", "with --slurm: GPUs per run (--gres=gpu:G)", parseInteger)
    .option("--cpus-per-task <c>", "with --slurm: CPU cores per run (also its COLUMNFORMER_THREADS)", parseInteger, 2)
    .option("--mem <m>", "with --slurm: memory per run, e.g. 8G")
    .option("--account <a>", "with --slurm: account to charge")
    .option("--max-parallel <k>", "with --slurm: at most K runs at a time (--array=...%K)", parseInteger)
    .addHelpText("after", HELP)
    .action(async (file: string, opts: SweepOptions) => {
      checkOptionCombination(opts);
      const plan = await loadSweep(file);
      const sweepDir = path.resolve(opts.out ?? path.join("runs", "sweeps", plan.name));
      const indices = selectRuns(plan, opts);
      const verbose = !opts.quiet;

      if (opts.task !== undefined) {
        // one run, in this process: a --jobs child or a Slurm array task
        exitWithParent(); // a --jobs child stops when its parent sweep is gone
        assertPlanUnchanged(plan, sweepDir, file);
        const run = plan.runs[indices[0]];
        const result = await executeRun(plan, run, sweepDir, { verbose });
        if (result.status === "skipped") process.stderr.write(`${run.name}: already done (${SUMMARY_FILE} exists)\n`);
        return;
      }

      // every check before anything is written or trained
      assertRunDirsMatch(plan, sweepDir, indices.map((i) => plan.runs[i]));
      await writePlan(plan, sweepDir);

      if (opts.dryRun) {
        console.log(`sweep ${plan.name}: ${plan.runs.length} run${plan.runs.length === 1 ? "" : "s"} -> ${sweepDir} (plan: ${path.join(sweepDir, PLAN_FILE)})`);
        for (const i of indices) {
          const run = plan.runs[i];
          console.log(`  ${String(i).padStart(3)}  ${run.name.padEnd(32)} ${runState(runRoot(sweepDir, run.name), run.config.steps).padEnd(8)} ${JSON.stringify(run.overrides)}`);
        }
        return;
      }

      if (opts.slurm) {
        await writeSlurm(plan, file, sweepDir, indices, opts);
        return;
      }

      const reports = await runSweepLocal(plan, sweepDir, {
        indices,
        jobs: opts.jobs,
        verbose,
        child: { script: path.resolve(process.argv[1]), sweepFile: file },
      });
      for (const r of reports) {
        const summaryPath = path.join(runRoot(sweepDir, r.name), SUMMARY_FILE);
        const detail =
          r.status === "failed" ? r.error : existsSync(summaryPath) ? describeSummary(JSON.parse(readFileSync(summaryPath, "utf8")) as RunSummary) : "";
        console.log(`${r.name.padEnd(32)} ${r.status.padEnd(9)} ${detail}`);
      }
      const failed = reports.filter((r) => r.status === "failed");
      if (failed.length > 0) {
        throw new Error(
          `${failed.length} of ${reports.length} runs failed (${failed.map((r) => r.name).join(", ")}); ` +
            `rerun the same command to retry them (finished runs are skipped)`,
        );
      }
    });
}

/** Refuse options that make no sense together. */
function checkOptionCombination(opts: SweepOptions): void {
  if (!Number.isInteger(opts.jobs) || opts.jobs < 1) throw new Error(`--jobs must be a positive integer, got ${opts.jobs}`);
  if (opts.task !== undefined) {
    if (opts.jobs !== 1) throw new Error("--task runs one run in this process; it does not go with --jobs");
    if (opts.slurm) throw new Error("--task does not go with --slurm (the Slurm script passes --task itself)");
    if (opts.dryRun) throw new Error("--task does not go with --dry-run");
    if (opts.only) throw new Error("--task does not go with --only");
  }
  if (opts.slurm) {
    if (opts.dryRun) throw new Error("--dry-run does not go with --slurm (without --submit, --slurm only writes the script)");
    if (opts.jobs !== 1) throw new Error("--jobs does not go with --slurm (use --max-parallel)");
  } else {
    const stray = SLURM_ONLY.find((k) => opts[k] !== undefined) ?? (opts.cpusPerTask !== 2 ? "cpusPerTask" : undefined);
    if (stray) throw new Error(`--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} only applies with --slurm`);
  }
}

/** Indices of the runs to execute: --task, --only, or all. */
function selectRuns(plan: SweepPlan, opts: SweepOptions): number[] {
  const n = plan.runs.length;
  if (opts.task !== undefined) {
    if (opts.task < 0 || opts.task >= n) throw new Error(`--task ${opts.task} is out of range: the sweep has ${n} run${n === 1 ? "" : "s"} (0-${n - 1})`);
    return [opts.task];
  }
  if (!opts.only) return plan.runs.map((r) => r.index);
  // a name picks that run, or every seed replicate of it ("grid" picks grid_seed-0, grid_seed-1, ...)
  const picked = new Set<number>();
  for (const name of opts.only) {
    const runs = plan.runs.filter((r) => r.name === name || (r.seed !== null && r.name === `${name}_seed-${r.seed}`));
    if (runs.length === 0) {
      const names = plan.runs.map((r) => r.name);
      throw new Error(`--only: no run is named "${name}" (runs: ${names.slice(0, 10).join(", ")}${names.length > 10 ? ", ..." : ""})`);
    }
    for (const r of runs) picked.add(r.index);
  }
  return [...picked].sort((a, b) => a - b);
}

/** Write `<sweep dir>/sweep.sbatch` (and the log folder), print how to submit, and submit with --submit. */
async function writeSlurm(plan: SweepPlan, file: string, sweepDir: string, indices: number[], opts: SweepOptions): Promise<void> {
  const logDir = path.join(sweepDir, "slurm");
  const scriptPath = path.join(sweepDir, "sweep.sbatch");
  const script = slurmScript({
    jobName: opts.jobName ?? plan.name,
    tasks: indices,
    maxParallel: opts.maxParallel,
    logDir,
    partition: opts.partition,
    time: opts.time,
    gpus: opts.gpus,
    cpusPerTask: opts.cpusPerTask,
    mem: opts.mem,
    account: opts.account,
    workDir: process.cwd(),
    command: [process.execPath, ...process.execArgv, path.resolve(process.argv[1]), "sweep", path.resolve(file), "--out", sweepDir],
    comments: [
      `columnformer sweep ${plan.name}: ${indices.length} of ${plan.runs.length} runs, one array task each (task id = run index in ${PLAN_FILE}).`,
      "A task skips a finished run and resumes an interrupted one, so resubmitting this script is safe.",
    ],
  });
  await mkdir(logDir, { recursive: true });
  await writeFileAtomic(scriptPath, script);
  console.log(`wrote ${scriptPath} (${indices.length} array task${indices.length === 1 ? "" : "s"}; logs in ${logDir}/)`);
  if (!opts.submit) {
    console.log(`submit it with:  sbatch ${scriptPath}`);
    return;
  }
  const id = await submitSbatch(scriptPath);
  console.log(`submitted job ${id}; watch it with: squeue -j ${id}`);
}
