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


// The core: enough to build, run, train and measure a sheet. Everything else is one
// sub-path away: columnformer/{geometry,model,objectives,optim,io,checkpoint,data,train,analysis,workflows}.

// Engine (jax-js, set up for Node.js). Import jax-js through here so its Node globals come first.
export * from "./engine/jax.ts";
export { initEngine, type EngineInfo } from "./engine/engine.ts";

// Geometry
export { buildGeometry } from "./geometry/build.ts";
export type { Area, Geometry, GeometrySpec } from "./geometry/types.ts";

// The column sheet
export { resolveSheetConfig, type SheetConfig, type SheetConfigInput } from "./model/config.ts";
export type { SheetParams } from "./model/params.ts";
export { initSheet, sheetApply, sheetStep } from "./model/sheet.ts";

// The vision model around it
export { initVision, visionEncode, type VisionConfig, type VisionParams } from "./model/vision.ts";

// Wiring cost
export { wiringCost, wiringWeights, type WiringCostSpec } from "./objectives/wiring-cost.ts";

// Checkpoints
export { loadSheetCheckpoint, saveSheetCheckpoint, type SheetCheckpoint } from "./checkpoint/checkpoint.ts";
export { loadVisionCheckpoint, saveVisionCheckpoint, type VisionCheckpoint } from "./checkpoint/vision-checkpoint.ts";

// Training
export { parseTrainConfig, type TrainConfig, type TrainConfigInput } from "./train/config.ts";
export { PRESETS, type PresetName } from "./train/presets.ts";
export { resume, train, type TrainOptions } from "./train/trainer.ts";
export type { TrainSummary } from "./train/run-state.ts";
export { loadTrainedModel, type TrainedModel } from "./train/trained-model.ts";

// Measuring
export { linearProbe, type ProbeOptions, type ProbeResult } from "./analysis/linear-probe.ts";
export { analyzeActivity, type AnalysisOptions, type AnalysisResult } from "./analysis/analyze.ts";
