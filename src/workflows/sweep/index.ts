/** Sweeps: expand a sweep file into runs, run them locally or as a Slurm job array, and summarise each run. */
export {
  expandSweep,
  gridKeyLabels,
  gridProduct,
  loadSweep,
  parseSweepFile,
  probeSettingsSchema,
  sanitizeName,
  sweepFileSchema,
  type PlannedRun,
  type ProbeSettings,
  type SweepFile,
  type SweepFileInput,
  type SweepPlan,
} from "./spec.ts";
export {
  assertPlanUnchanged,
  assertRunDirsMatch,
  attentionMetrics,
  describeSummary,
  executeRun,
  measureRun,
  median,
  mismatchedRuns,
  runRoot,
  runState,
  writePlan,
  type ExecuteRunOptions,
  type ExecuteRunResult,
  type RunState,
} from "./run.ts";
export { runSweepLocal, threadsPerJob, type ChildCommand, type LocalSweepOptions, type RunReport } from "./local.ts";
export { arraySpec, shellQuote, slurmScript, submitSbatch, type SlurmScriptOptions } from "./slurm.ts";
export { PLAN_FILE, SUMMARY_FILE, type RunSummary } from "./summary.ts";
