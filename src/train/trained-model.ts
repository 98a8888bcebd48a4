/** Opening a checkpoint written by `columnformer train` together with its training config and session. */
import { loadVisionCheckpoint, type VisionCheckpoint } from "../checkpoint/vision-checkpoint.ts";
import { parseDataSpec } from "../data/index.ts";
import { withLearnedPositions } from "../geometry/learned.ts";
import { parseTrainConfig, type TrainConfig } from "./config.ts";
import type { Backend } from "../engine/backend.ts";
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
  const config = parseTrainConfig(JSON.parse(checkpoint.metadata.train_config));
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
  // a sparse sheet keeps the connectivity it was trained with (its resolved spec: a file is not read again)
  if (checkpoint.connectivity) config.sheet = { ...config.sheet, connectivity: checkpoint.sheet.connectivity! };
  return { checkpoint, config, session: createSession(config, { learned: geometry, indices: checkpoint.connectivity?.indices, backend }) };
}
