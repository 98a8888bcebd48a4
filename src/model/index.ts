/** `columnformer/model`: the column sheet (LayerNorm, attention dense or sparse, MLP), the vision front end and readout, FLOPs. */
export {
  connectivityK,
  connectivitySpecSchema,
  resolveSheetConfig,
  sheetConfigSchema,
  type ConnectivitySpec,
  type SheetConfig,
  type SheetConfigInput,
} from "./config.ts";
export type {
  ColumnAttentionParams,
  ColumnLayerNormParams,
  ColumnLinearParams,
  ColumnMlpParams,
  SheetParams,
} from "./params.ts";
export { columnLinear, columnLinearSpec } from "./column-linear.ts";
export { columnLayerNorm, columnLayerNormSpec } from "./layer-norm.ts";
export { columnAttention, columnAttentionSpec, localAttentionBias, type AttentionShape } from "./attention.ts";
export { columnMlp, columnMlpSpec } from "./mlp.ts";
export { initParams, leafAt, prefixSpecs, specShapes, specSize, treeFromLeaves, type ParamInit, type ParamSpec } from "./param-spec.ts";
export { blockAt, initSheet, leadingAxes, sheetApply, sheetParamSpecs, sheetStep, sheetStreams } from "./sheet.ts";
export { flopsPerImage, sheetStepFlops } from "./cost.ts";
// Sparse sheets: K source columns per column
export {
  connectivityArray,
  connectivityOf,
  resolveConnectivity,
  scatterAttention,
  type SheetConnectivity,
} from "./sheet-connectivity.ts";
export { sparseAttention } from "./sparse-attention.ts";

export { patchify, unpatchify } from "./patches.ts";
export {
  classify,
  decodePatches,
  initVision,
  visionParamSpecs,
  visionStreams,
  visionEncode,
  visionLayout,
  type VisionConfig,
  type VisionLayout,
  type VisionParams,
} from "./vision.ts";
