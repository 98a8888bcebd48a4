/**
 * The training objective of the vision model, as a pure function of the
 * parameters and one batch: the task loss (MIM or classification) plus the
 * wiring cost of every step's attention.
 */
import { numpy as np, tree } from "../engine/jax.ts";
import type { SheetConfig } from "../model/config.ts";
import { classify, decodePatches, type VisionConfig, type VisionLayout, type VisionParams, visionEncode } from "../model/vision.ts";
import { correctCount, crossEntropy } from "../objectives/classification.ts";
import { maskedMse, normalizePatches } from "../objectives/mim.ts";
import { wiringCostFromDistances, type WiringCostSpec } from "../objectives/wiring-cost.ts";

/** One batch on the device. */
export type DeviceBatch = {
  /** [B, H, W, C] in [0, 1]. */
  images: np.Array;
  /** MIM: [B, P], 1 = masked. Classification: unused (pass a dummy [B, 1]). */
  mask: np.Array;
  /** Classification: one-hot labels [B, classes]. MIM: unused (a dummy [B, 1]). */
  labels: np.Array;
};

/** Static pieces of the objective. */
export interface ObjectiveSpec {
  sheet: SheetConfig;
  vision: VisionConfig;
  layout: VisionLayout;
  /** null when the wiring cost is off. */
  wiring: WiringCostSpec | null;
}

/** Scalars reported next to the loss. */
export type LossParts = {
  /** MIM normalised MSE or classification cross-entropy. */
  task: np.Array;
  /** Wiring cost (already multiplied by lambda). */
  wiring: np.Array;
  /** Correct predictions in the batch (classification; 0 for MIM). */
  correct: np.Array;
};

/**
 * total = task + wiring. Consumes `params`, `batch` and `distances` [N, N].
 * Returns [total, parts] (the shape valueAndGrad's hasAux expects).
 */
export function objective(
  params: VisionParams,
  batch: DeviceBatch,
  distances: np.Array,
  spec: ObjectiveSpec,
): [np.Array, LossParts] {
  const { decoder, head, ...encoder } = params;
  const isMim = spec.vision.task === "mim";
  const { out, attn, patches } = visionEncode(encoder, batch.images, isMim ? batch.mask.ref : null, spec.sheet, spec.vision, spec.layout);
  let task: np.Array;
  let correct: np.Array;
  if (isMim) {
    const pred = decodePatches(decoder!, out); // [B, P, p*p*C]
    task = maskedMse(pred, normalizePatches(patches), batch.mask);
    correct = np.zeros([]);
    batch.labels.dispose();
  } else {
    patches.dispose();
    batch.mask.dispose();
    const logits = classify(head!, out); // [B, classes]
    task = crossEntropy(logits.ref, batch.labels.ref);
    correct = correctCount(logits, batch.labels);
  }
  let wiring: np.Array;
  if (spec.wiring && spec.wiring.lambda > 0) {
    wiring = wiringCostFromDistances(attn, distances, spec.wiring);
  } else {
    attn.dispose();
    distances.dispose();
    wiring = np.zeros([]);
  }
  return [task.ref.add(wiring.ref), { task, wiring, correct }];
}

/** Per-patch predictions for a figure: [B, P, p*p*C] in normalised units. Consumes params and inputs. */
export function predictPatches(params: VisionParams, images: np.Array, mask: np.Array, spec: ObjectiveSpec): np.Array {
  const { decoder, head, ...encoder } = params;
  tree.dispose(head);
  const { out, attn, patches } = visionEncode(encoder, images, mask, spec.sheet, spec.vision, spec.layout);
  attn.dispose();
  patches.dispose();
  return decodePatches(decoder!, out);
}

