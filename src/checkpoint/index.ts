/** `columnformer/checkpoint`: sheet and vision checkpoints (safetensors with a config), training state, parameter trees. */
export {
  CHECKPOINT_FORMAT,
  checkpointConfig,
  loadSheetCheckpoint,
  saveSheetCheckpoint,
  sheetParameterCount,
  sheetTensorShapes,
  tensorsToTree,
  type SheetCheckpoint,
} from "./checkpoint.ts";
export { countParameters, namedLeaves, treeToTensors, type ParamTree } from "../engine/param-tree.ts";
export {
  loadVisionCheckpoint,
  saveVisionCheckpoint,
  visionParameterCount,
  visionTensorShapes,
  loadOptimizerState,
  saveOptimizerState,
  type VisionCheckpoint,
} from "./vision-checkpoint.ts";
