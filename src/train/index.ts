/** `columnformer/train`: training config and presets, the session and compiled step, the loop, evaluation. */
export { objective, type DeviceBatch, type LossParts, type ObjectiveSpec, type StepInputs, type TaskTarget } from "./loss.ts";
export { parseTrainConfig, trainConfigSchema, type TrainConfig, type TrainConfigInput } from "./config.ts";
export { PRESETS, type PresetName } from "./presets.ts";
export { buildModel, type Model, type ModelOptions, type PenaltyCoefficients } from "./model.ts";
export { compile, createSession, encodeHeldOut, type CompileOptions, type Session, type SessionOptions } from "./session.ts";
export { resume, train, type TrainOptions } from "./trainer.ts";
export { INIT_CHECKPOINT } from "./run-dir.ts";
export { runDirState, type RunDirState, type TrainSummary } from "./run-state.ts";
export { evaluate, extractFeatures, type EvalResult } from "./evaluate.ts";
export { loadTrainedModel, type TrainedModel } from "./trained-model.ts";
