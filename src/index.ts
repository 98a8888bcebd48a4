/**
 * columnformer: build, train and study Columnformers, recurrent sheets of
 * untied transformer columns in a geometric space with a wiring cost.
 *
 * ```ts
 * import { initEngine, resolveSheetConfig, initSheet, sheetApply, numpy as np } from "columnformer";
 * await initEngine();
 * const { config, geometry } = resolveSheetConfig({ geometry: { kind: "grid", height: 16, width: 16 } });
 * const params = initSheet(config, geometry, 0);
 * const { x, attn } = sheetApply(params, np.zeros([8, config.num_columns, config.dim]), config);
 * // x: [batch, columns, dim], attn: [batch, depth, columns, columns]
 * ```
 *
 * Arrays follow jax-js ownership: functions consume their array arguments;
 * pass `x.ref` to keep using `x`.
 */

// Engine (jax-js, set up for Node.js). Import jax-js through here so its Node globals come first.
export * from "./engine/jax.ts";
export { initEngine, JAX_VERSION, type EngineInfo } from "./engine/engine.ts";
export { splitKey } from "./engine/prng.ts";

// Geometry
export * from "./geometry/index.ts";

// Model
export {
  connectivityK,
  connectivitySpecSchema,
  resolveSheetConfig,
  sheetConfigSchema,
  type ConnectivitySpec,
  type SheetConfig,
  type SheetConfigInput,
} from "./model/config.ts";
export type {
  ColumnAttentionParams,
  ColumnLayerNormParams,
  ColumnLinearParams,
  ColumnMlpParams,
  SheetParams,
} from "./model/params.ts";
export { columnLinear, initColumnLinear } from "./model/column-linear.ts";
export { columnLayerNorm, initColumnLayerNorm } from "./model/layer-norm.ts";
export { columnAttention, initColumnAttention, localAttentionBias, type AttentionShape } from "./model/attention.ts";
export { columnMlp, initColumnMlp } from "./model/mlp.ts";
export { blockAt, initSheet, initSheetFromKey, leadingAxes, sheetApply, sheetStep } from "./model/sheet.ts";
export { flopsPerImage, sheetStepFlops } from "./model/cost.ts";
// Sparse sheets: K source columns per column
export {
  connectionDistancesFromMatrix,
  connectivityArray,
  resolveConnectivity,
  scatterAttention,
  type SheetConnectivity,
} from "./model/sheet-connectivity.ts";
export {
  connectionDistances,
  connectivityFromFile,
  localConnectivity,
  nearestByDistanceMatrix,
  parseConnectivity,
  smallWorldByDistanceMatrix,
  smallWorldConnectivity,
  validateConnectivity,
  type Connectivity,
} from "./geometry/connectivity.ts";
export { sparseAttention } from "./model/sparse-attention.ts";

// Learned geometry: column positions as parameters
export {
  constrainPositions,
  medianSpacing,
  positionDistances,
  positionSpace,
  repulsion,
  withLearnedPositions,
  type PositionSpace,
} from "./geometry/learned.ts";

// Objectives
export {
  crossEntropyWiringWeights,
  l1WiringWeights,
  sparseWiringWeights,
  wiringCost,
  wiringCostFromDistances,
  wiringWeights,
  type WiringCostSpec,
} from "./objectives/wiring-cost.ts";
export { featureConsistency, nearestNeighbourGraph, untiedWeights } from "./objectives/feature-consistency.ts";
export { communicability, communicabilityWiringCost, expm } from "./objectives/communicability.ts";
export { drawNeighbourhoods, type NeighbourhoodSpec, selectionMatrix, spatialCorrelation } from "./objectives/spatial-correlation.ts";
export { blurMatrix, type BlurSpec, topoBlur } from "./objectives/topo-blur.ts";

// Checkpoints
export {
  CHECKPOINT_FORMAT,
  checkpointConfig,
  loadSheetCheckpoint,
  saveSheetCheckpoint,
  sheetParameterCount,
  sheetTensorShapes,
  tensorsToTree,
  type SheetCheckpoint,
} from "./checkpoint/checkpoint.ts";
export { countParameters, namedLeaves, treeToTensors, type ParamTree } from "./engine/param-tree.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  expectTensor,
  readSafetensors,
  writeSafetensors,
  type SafetensorsDType,
  type SafetensorsFile,
  type TensorData,
} from "./io/safetensors.ts";
export { writeFileAtomic, writeFileAtomicSync } from "./io/atomic.ts";

// Data
export * from "./data/index.ts";

// Vision model, objectives and training
export { patchify, unpatchify } from "./model/patches.ts";
export {
  classify,
  decodePatches,
  initVision,
  visionEncode,
  visionLayout,
  type VisionConfig,
  type VisionLayout,
  type VisionParams,
} from "./model/vision.ts";
export { maskedMse, normalizePatches, randomPatchMask } from "./objectives/mim.ts";
export { correctCount, crossEntropy } from "./objectives/classification.ts";
export {
  loadVisionCheckpoint,
  saveVisionCheckpoint,
  visionParameterCount,
  visionTensorShapes,
  loadOptimizerState,
  saveOptimizerState,
  type VisionCheckpoint,
} from "./checkpoint/vision-checkpoint.ts";
export {
  adamwConfig,
  adamwInit,
  adamwUpdate,
  decayMaskFor,
  defaultNoDecay,
  mapParamLeaves,
  type AdamWConfig,
  type AdamWState,
  type LeafTree,
} from "./optim/adamw.ts";
export { cosineSchedule, constantSchedule, penaltySchedule, type PenaltyScheduleConfig, type Schedule } from "./optim/schedule.ts";
export { objective, type DeviceBatch, type LossParts, type ObjectiveSpec, type StepInputs } from "./train/loss.ts";
export { clipByGlobalNorm, globalNorm } from "./optim/clip.ts";
export { applyOverrides, mergeConfig, parseTrainConfig, trainConfigSchema, type TrainConfig, type TrainConfigInput } from "./train/config.ts";
export { PRESETS, type PresetName } from "./train/presets.ts";
export { createSession, type Session } from "./train/session.ts";
export { INIT_CHECKPOINT, resume, train, type TrainOptions, type TrainSummary } from "./train/trainer.ts";
export { evaluate, extractFeatures, type EvalResult } from "./train/evaluate.ts";
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
  pruneTable,
  topKSources,
  writePrunedRun,
  writePruneOutputs,
  type PrunedRun,
  type PruneOptions,
  type PruneResult,
  type PruneRow,
} from "./workflows/prune.ts";
export {
  checkGrowable,
  defaultGrowSteps,
  gatherColumns,
  growAttentionBias,
  growParams,
  growRun,
  growTable,
  ioAreas,
  planGrow,
  writeGrownRun,
  type GrownRun,
  type GrowOptions,
  type GrowPlan,
  type GrowResult,
} from "./workflows/grow.ts";
export {
  loadProgressive,
  phaseCheckpoint,
  phaseDir,
  phaseFinished,
  planProgressive,
  planTable,
  progressiveFileSchema,
  progressiveTable,
  runProgressive,
  type PhaseRecord,
  type PlannedPhase,
  type ProgressiveFile,
  type ProgressiveOptions,
  type ProgressivePlan,
  type ProgressiveResult,
} from "./workflows/progressive.ts";

// Analysis
export { linearProbe, type ProbeOptions, type ProbeResult } from "./analysis/linear-probe.ts";
export { collectActivity, type SheetActivity } from "./analysis/collect.ts";
export { analyzeActivity, DEFAULT_ANALYSIS_OPTIONS, type AnalysisOptions, type AnalysisResult } from "./analysis/analyze.ts";
export * from "./analysis/connectivity.ts";
export * from "./analysis/graph.ts";
export * from "./analysis/topography.ts";
export { weightSimilarityVsDistance, type ColumnWeights, type WeightSimilarityCurve } from "./analysis/weight-similarity.ts";
export { writeReport } from "./analysis/report.ts";
export * from "./analysis/smoothness.ts";
export * from "./analysis/moran.ts";
export * from "./analysis/selectivity.ts";
export * from "./analysis/population.ts";
export * from "./analysis/orientation.ts";
export { fieldTopography, DEFAULT_FIELD_OPTIONS, FIELD_REFERENCES, type FieldOptions, type FieldResult, type AreaField, type GratingActivity } from "./analysis/field.ts";
export * from "./analysis/lesion.ts";
export * from "./data/gratings.ts";
export * from "./workflows/sweep/stats.ts";
export { columnLayout, type ColumnLayoutOptions, type LayoutEdge } from "./viz/column-layout.ts";

// Sweeps and comparisons
export * from "./workflows/sweep/index.ts";
export { readSweepDir, writeComparison, type CompareRow, type ComparisonResult } from "./workflows/sweep/compare.ts";
