/**
 * Training checkpoints as one consistent unit.
 *
 * A training checkpoint is two files: the model `X.safetensors` (a vision checkpoint any tool
 * reads) and the training state `X.opt.safetensors`, which is the SAME vision checkpoint
 * (every model tensor, the same metadata) plus the AdamW moments `mu.<param>` / `nu.<param>`
 * and metadata `training_state` = "1", `optimizer_step`. Resume reads only the state file,
 * so parameters and optimiser state always come from one atomically written file and are of
 * one step; the state is written before the model file, so a crash between the two leaves a
 * complete state and an older (or no) model file, which the resumed run rewrites.
 *
 * State files of earlier versions (`format` "columnformer-optimizer": moments only) still
 * resume, with the parameters from the model file, when both files record the same step.
 */
import type { Geometry } from "../geometry/index.ts";
import type { SheetConnectivity } from "../model/sheet-connectivity.ts";
import type { SheetConfig } from "../model/config.ts";
import { type VisionConfig, type VisionParams, visionLayout } from "../model/vision.ts";
import type { AdamWState } from "../optim/adamw.ts";
import { assertFiniteTensors, checkDistances, checkpointConfig, checkpointConnectivity, sheetCheckpointContents, sheetTensorShapes } from "./checkpoint.ts";
import { treeToTensors } from "../engine/param-tree.ts";
import { expectTensor, readSafetensors, type SafetensorsFile, type TensorData, writeSafetensors } from "../io/safetensors.ts";
import { checkpointVisionConfig, visionTensorShapes } from "./vision-checkpoint.ts";

/** Metadata key marking a state file that carries the model's tensors too. */
export const TRAINING_STATE_KEY = "training_state";

/** What to write: the model, and (except for `best`) the optimiser state. */
export interface TrainingCheckpoint {
  sheet: SheetConfig;
  vision: VisionConfig;
  geometry: Geometry;
  params: VisionParams;
  connectivity: SheetConnectivity | null;
  /** Training step; also stored as metadata `step`. */
  step: number;
  metadata: Record<string, string>;
  opt: AdamWState<VisionParams> | null;
}

/**
 * Write a training checkpoint: the state file `statePath` (when `ckpt.opt` is given) first,
 * then the model file `modelPath`, each atomically. Refuses non-finite parameters before
 * anything is written (`NonFiniteParametersError`), so a diverged model never replaces a
 * good checkpoint. Borrows the arrays.
 */
export async function saveTrainingCheckpoint(modelPath: string, statePath: string | null, ckpt: TrainingCheckpoint): Promise<void> {
  const { sheet: sheetParams, ...rest } = ckpt.params;
  const { tensors, metadata } = await sheetCheckpointContents(ckpt.sheet, ckpt.geometry, sheetParams, {
    tensors: await treeToTensors(rest),
    metadata: { ...ckpt.metadata, step: String(ckpt.step), vision: JSON.stringify(ckpt.vision) },
    connectivity: ckpt.connectivity,
  });
  if (statePath !== null && ckpt.opt !== null) {
    const moments: Record<string, TensorData> = { ...(await treeToTensors(ckpt.opt.mu, "mu")), ...(await treeToTensors(ckpt.opt.nu, "nu")) };
    assertFiniteTensors(moments, "refusing to write a training state");
    await writeSafetensors(statePath, { ...tensors, ...moments }, { ...metadata, [TRAINING_STATE_KEY]: "1", optimizer_step: String(ckpt.opt.step) });
  }
  await writeSafetensors(modelPath, tensors, metadata);
}

/** A checked resume point: where the parameters and the moments come from, and the step. */
export interface ResumePoint {
  /** File to load the parameters from (the state file, or a legacy run's model file). */
  paramsPath: string;
  /** File to load the moments from. */
  statePath: string;
  step: number;
  /** The state file's metadata (run statistics saved with it). */
  metadata: Record<string, string>;
}

/** Shapes of every parameter tensor stored in a vision checkpoint file (checked: configs valid). */
function parameterShapes(file: SafetensorsFile, source: string): Record<string, number[]> {
  const { config, geometry } = checkpointConfig(file, source);
  const vision = checkpointVisionConfig(file, source);
  const layout = visionLayout(vision, geometry);
  checkpointConnectivity(file, config, geometry, source);
  checkDistances(file, config, source);
  return { ...sheetTensorShapes(config), ...visionTensorShapes(config, vision, layout) };
}

function stepOf(file: SafetensorsFile, key: string, source: string): number {
  const v = Number(file.metadata[key]);
  if (file.metadata[key] === undefined || !Number.isSafeInteger(v) || v < 0) {
    throw new Error(`${source}: metadata ${JSON.stringify(key)} is ${JSON.stringify(file.metadata[key] ?? null)}, not a step number`);
  }
  return v;
}

function checkMoments(file: SafetensorsFile, shapes: Record<string, number[]>, source: string): void {
  for (const [name, shape] of Object.entries(shapes)) {
    expectTensor(file, `mu.${name}`, "F32", shape, source);
    expectTensor(file, `nu.${name}`, "F32", shape, source);
  }
}

/**
 * Check that the checkpoint pair (`modelPath`, `statePath`) can be resumed from, without
 * building arrays: the state file decodes, holds every parameter and both moments with the
 * right shapes, all finite, and its model and optimiser step agree (for a legacy state file:
 * the model file's step equals the state's). Throws one line saying what is wrong.
 */
export async function checkResumePoint(modelPath: string, statePath: string): Promise<ResumePoint> {
  const state = await readSafetensors(statePath);
  if (state.metadata[TRAINING_STATE_KEY] === "1") {
    const shapes = parameterShapes(state, statePath);
    checkMoments(state, shapes, statePath);
    assertFiniteTensors(state.tensors, statePath);
    const step = stepOf(state, "step", statePath);
    const optStep = stepOf(state, "optimizer_step", statePath);
    if (optStep !== step) throw new Error(`${statePath}: parameters of step ${step} but optimiser state of step ${optStep}`);
    return { paramsPath: statePath, statePath, step, metadata: state.metadata };
  }
  if (state.metadata.format !== "columnformer-optimizer") {
    throw new Error(`${statePath}: not a columnformer training state (metadata format is ${JSON.stringify(state.metadata.format ?? null)})`);
  }
  // an earlier version's pair: moments here, parameters in the model file
  const model = await readSafetensors(modelPath);
  const shapes = parameterShapes(model, modelPath);
  checkMoments(state, shapes, statePath);
  assertFiniteTensors(model.tensors, modelPath);
  assertFiniteTensors(state.tensors, statePath);
  const step = stepOf(model, "step", modelPath);
  const optStep = stepOf(state, "step", statePath);
  if (optStep !== step) {
    throw new Error(`${modelPath} is of step ${step} but ${statePath} of step ${optStep} (written apart by an interrupted save)`);
  }
  return { paramsPath: modelPath, statePath, step, metadata: model.metadata };
}
