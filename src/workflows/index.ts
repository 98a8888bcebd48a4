/** `columnformer/workflows`: many runs: prune, grow, progressive training, sweeps (local or Slurm) and compare. */
export {
  checkK,
  connectivityJson,
  defaultPruneSteps,
  gatherAttentionBias,
  meanIncomingAttention,
  parseKList,
  pruneCsv,
  pruneCurve,
  pruneCurveSvg,
  topKSources,
  writePrunedRun,
  writePruneOutputs,
  type PrunedRun,
  type PruneOptions,
  type PruneResult,
  type PruneRow,
} from "./prune.ts";
export {
  checkGrowable,
  defaultGrowSteps,
  gatherColumns,
  growAttentionBias,
  growParams,
  growRun,
  ioAreas,
  planGrow,
  writeGrownRun,
  type GrownRun,
  type GrowOptions,
  type GrowPlan,
  type GrowResult,
} from "./grow.ts";
export {
  loadProgressive,
  phaseCheckpoint,
  phaseDir,
  phaseFinished,
  planProgressive,
  progressiveFileSchema,
  runProgressive,
  type PhaseRecord,
  type PlannedPhase,
  type ProgressiveFile,
  type ProgressiveOptions,
  type ProgressivePlan,
  type ProgressiveResult,
} from "./progressive.ts";

export * from "./sweep/stats.ts";
export * from "./sweep/index.ts";
export { readSweepDir, writeComparison, type CompareRow, type ComparisonResult } from "./sweep/compare.ts";
