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
export { columnLinear, initColumnLinear } from "./column-linear.ts";
export { columnLayerNorm, initColumnLayerNorm } from "./layer-norm.ts";
export { columnAttention, initColumnAttention, localAttentionBias, type AttentionShape } from "./attention.ts";
export { columnMlp, initColumnMlp } from "./mlp.ts";
export { blockAt, initSheet, initSheetFromKey, leadingAxes, sheetApply, sheetStep } from "./sheet.ts";
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
  visionEncode,
  visionLayout,
  type VisionConfig,
  type VisionLayout,
  type VisionParams,
} from "./vision.ts";
