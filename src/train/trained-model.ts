/** Opening a checkpoint written by `columnformer train` together with its training config and session. */
import { loadVisionCheckpoint, type VisionCheckpoint } from "../checkpoint/vision-checkpoint.ts";
import { parseDataSpec } from "../data/index.ts";
import { tree } from "../engine/jax.ts";
import { withLearnedPositions } from "../geometry/learned.ts";
import { parseTrainConfig, type TrainConfig } from "./config.ts";
import { type Backend, prepareBackend } from "../engine/backend.ts";
import { createSession, type Session } from "./session.ts";

/** A trained model ready for evaluation or analysis. */
export interface TrainedModel {
  checkpoint: VisionCheckpoint;
  config: TrainConfig;
  session: Session;
}

/**
 * Load a training checkpoint and rebuild its session. `dataJson` (a data spec
 * as JSON text) replaces the data set it was trained on.
 */
export async function loadTrainedModel(path: string, dataJson?: string, backend?: Backend): Promise<TrainedModel> {
  const checkpoint = await loadVisionCheckpoint(path);
  if (!checkpoint.metadata.train_config) {
    throw new Error(`${path} has no train_config metadata; was it written by columnformer train?`);
  }
  let stored: unknown;
  try {
    stored = JSON.parse(checkpoint.metadata.train_config);
  } catch (e) {
    tree.dispose(checkpoint.params);
    throw new Error(`${path}: metadata "train_config" is not valid JSON (${(e as Error).message})`);
  }
  let config: TrainConfig;
  try {
    config = parseTrainConfig(stored);
  } catch (e) {
    tree.dispose(checkpoint.params);
    throw new Error(`${path}: metadata "train_config": ${(e as Error).message}`);
  }
  if (dataJson) {
    let spec: unknown;
    try {
      spec = JSON.parse(dataJson);
    } catch {
      throw new Error(`--data must be a JSON data spec such as '{"kind":"fashion-mnist"}', got ${dataJson}`);
    }
    config.data = parseDataSpec(spec);
  }
  // a learned geometry: distances and figures use the positions the model ended with
  const positions = checkpoint.params.positions;
  const geometry = positions ? await withLearnedPositions(checkpoint.geometry, positions.ref) : undefined;
  // the model is what the checkpoint's tensors are: its own (validated) sheet config, whose
  // connectivity is the file's sheet.connectivity tensor; no path in train_config is ever read
  config.sheet = { ...checkpoint.sheet, connectivity: checkpoint.sheet.connectivity ?? { kind: "dense" } };
  await prepareBackend(backend);
  return { checkpoint, config, session: createSession(config, { learned: geometry, indices: checkpoint.connectivity?.indices, backend }) };
}
