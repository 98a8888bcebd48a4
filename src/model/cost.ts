/**
 * What a model costs: forward FLOPs per image, counted from the config.
 *
 * FLOPs are those of the matrix products (a multiply-add is 2 FLOPs), which
 * dominate; LayerNorm, softmax, GELU, residual adds and masking are left out.
 * Untying weights across columns changes the parameter count, not the FLOPs:
 * every column still applies one map of the same size.
 */
import { connectivityK, type SheetConfig } from "./config.ts";
import type { VisionConfig, VisionLayout } from "./vision.ts";

/** FLOPs of one sheet step for one image, by part. */
export function sheetStepFlops(c: SheetConfig): Record<"qk" | "vo" | "scores" | "mix" | "mlp", number> {
  const { num_columns: n, dim: d, mlp_dim: m } = c;
  const qk = c.heads * c.qk_dim;
  const sources = connectivityK(c) ?? n; // K per column for a sparse sheet, all N for a dense one
  return {
    qk: 2 * (2 * n * d * qk), // query and key projections
    vo: c.value_proj ? 2 * (2 * n * d * d) : 0, // value and output projections
    scores: 2 * n * sources * qk, // q . k for every connection, every head
    mix: 2 * n * sources * d, // attention-weighted sum of values (heads split D)
    mlp: 2 * (2 * n * d * m), // fc1 and fc2
  };
}

/** Forward FLOPs per image of the whole vision model: patch embedding, `depth` sheet steps, readout. */
export function flopsPerImage(sheet: SheetConfig, vision: VisionConfig, layout: VisionLayout): number {
  const d = sheet.dim;
  const embed = 2 * layout.numPatches * layout.patchDim * d;
  const step = Object.values(sheetStepFlops(sheet)).reduce((a, b) => a + b, 0);
  const outCols = layout.outputArea.end - layout.outputArea.start;
  let readout: number;
  if (vision.task === "mim") readout = 2 * outCols * d * layout.patchDim;
  else readout = 2 * d * vision.num_classes + (vision.pool === "spatial" ? 2 * vision.num_classes * outCols * d : 0);
  return embed + sheet.depth * step + readout;
}
