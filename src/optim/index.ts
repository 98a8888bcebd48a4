/** `columnformer/optim`: AdamW, gradient clipping, learning-rate and penalty schedules. */
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
} from "./adamw.ts";
export { cosineSchedule, constantSchedule, penaltySchedule, type PenaltyScheduleConfig, type Schedule } from "./schedule.ts";
export { clipByGlobalNorm, globalNorm } from "./clip.ts";
