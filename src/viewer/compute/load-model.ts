/**
 * A trained vision checkpoint, loaded from its bytes with the checkpoint modules' own
 * validation (config, tensor names, dtypes and shapes, finiteness): what the viewer's page
 * does after fetching `checkpoint.safetensors`. Runs in the browser and in Node.js.
 */
import { decodeSafetensors } from "../../io/safetensors.ts";
import { visionCheckpointFromFile } from "../../checkpoint/vision-checkpoint.ts";
import type { Geometry } from "../../geometry/index.ts";
import type { SheetConfig } from "../../model/config.ts";
import type { SheetConnectivity } from "../../model/sheet-connectivity.ts";
import type { VisionConfig, VisionLayout, VisionParams } from "../../model/vision.ts";

/** A checkpoint ready to run in the viewer. */
export interface ViewerModel {
  sheet: SheetConfig;
  vision: VisionConfig;
  geometry: Geometry;
  layout: VisionLayout;
  /** Parameters (jax-js arrays; the viewer borrows them with tree.ref for every forward). */
  params: VisionParams;
  /** A sparse sheet's source columns [N, K], or null (dense). */
  connectivity: SheetConnectivity | null;
  /** Learned column positions [N, positionDim] (sheet.learn_positions), else null: draw the geometry's. */
  learnedPositions: Float32Array | null;
  /** MIM mask ratio of the training config (0.75 when unknown). */
  maskRatio: number;
  step: number;
  metadata: Record<string, string>;
}

function maskRatioOf(metadata: Record<string, string>): number {
  try {
    const r = (JSON.parse(metadata.train_config ?? "{}") as { mask_ratio?: unknown }).mask_ratio;
    return typeof r === "number" && r > 0 && r < 1 ? r : 0.75;
  } catch {
    return 0.75;
  }
}

/** Decode and validate a vision checkpoint from its bytes; `source` names it in messages. */
export function modelFromBytes(bytes: Uint8Array, source: string): ViewerModel {
  const file = decodeSafetensors(bytes, source);
  const { sheet, vision, geometry, layout, params, connectivity } = visionCheckpointFromFile(file, source);
  const positions = file.tensors.positions;
  return {
    sheet,
    vision,
    geometry,
    layout,
    params,
    connectivity,
    learnedPositions: positions ? Float32Array.from(positions.data as Float32Array) : null,
    maskRatio: maskRatioOf(file.metadata),
    step: Number(file.metadata.step ?? 0),
    metadata: file.metadata,
  };
}
