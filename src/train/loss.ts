/**
 * The training objective of the vision model, as a pure function of the
 * parameters and one batch:
 *
 *   total = task + lambda_wiring * wiring + lambda_consistency * consistency
 *         + lambda_repulsion * repulsion + lambda_activation * activation_l1
 *
 * task: MIM or classification; wiring: the (unweighted) wiring cost of every
 * step's attention; consistency: the feature-consistency penalty (when on);
 * repulsion: the anti-collapse term of learned positions (when learned);
 * activation_l1: mean |x| of the column states after every step. The
 * coefficients are inputs, not constants, so schedules change them without
 * recompiling.
 */
import { numpy as np, tree } from "../engine/jax.ts";
import { positionDistances, type PositionSpace, repulsion } from "../geometry/learned.ts";
import type { SheetConfig } from "../model/config.ts";
import { classify, decodePatches, type VisionConfig, type VisionLayout, type VisionParams, visionEncode } from "../model/vision.ts";
import { correctCount, crossEntropy } from "../objectives/classification.ts";
import { featureConsistency, untiedWeights } from "../objectives/feature-consistency.ts";
import { maskedMse, normalizePatches } from "../objectives/mim.ts";
import { wiringCost, wiringCostFromDistances, type WiringCostSpec } from "../objectives/wiring-cost.ts";

/** One batch on the device. */
export type DeviceBatch = {
  /** [B, H, W, C] in [0, 1]. */
  images: np.Array;
  /** MIM: [B, P], 1 = masked. Classification: unused (pass a dummy [B, 1]). */
  mask: np.Array;
  /** Classification: one-hot labels [B, classes]. MIM: unused (a dummy [B, 1]). */
  labels: np.Array;
};

/** Inputs of one step besides parameters and batch (all consumed). */
export type StepInputs = {
  /**
   * Fixed column distances [N, N] (unused when positions are learned); for a sparse sheet the
   * connection distances [N, K] (informational: its wiring cost uses `wiringWeights`).
   */
  distances: np.Array;
  /** Sparse sheets: source columns int32 [N, K] (absent for a dense sheet). */
  connectivity?: np.Array;
  /** Sparse sheets: wiring weights of the connections [N, K] (see sparseWiringWeights), lambda 1. */
  wiringWeights?: np.Array;
  /** Neighbour graph [N, N] of the feature-consistency penalty. */
  neighbours: np.Array;
  /** Current coefficients (scalars). */
  wiring: np.Array;
  consistency: np.Array;
  repulsion: np.Array;
  activation: np.Array;
};

/** Static pieces of the objective. */
export interface ObjectiveSpec {
  sheet: SheetConfig;
  vision: VisionConfig;
  layout: VisionLayout;
  /** Form of the wiring cost (its coefficient is a step input). */
  wiring: WiringCostSpec;
  /** The feature-consistency penalty is computed (its coefficient is not identically 0). */
  consistency: boolean;
  /** Learned positions: their space and the repulsion spacing; null when the geometry is fixed. */
  positions: { space: PositionSpace; spacing: number } | null;
}

/** Scalars reported next to the loss (penalties unweighted). */
export type LossParts = {
  /** MIM normalised MSE or classification cross-entropy. */
  task: np.Array;
  /** Wiring cost with lambda 1. */
  wiring: np.Array;
  /** Feature-consistency penalty with coefficient 1 (0 when off). */
  consistency: np.Array;
  /** Repulsion of learned positions with coefficient 1 (0 when the geometry is fixed). */
  repulsion: np.Array;
  /** Mean |x| of the column states over steps (the activation-sparsity penalty with coefficient 1). */
  activation_l1: np.Array;
  /** Mean Hoyer sparsity of the column states over steps (measured, not penalised). */
  activation_hoyer: np.Array;
  /** Correct predictions in the batch (classification; 0 for MIM). */
  correct: np.Array;
};

/** Consumes everything. Returns [total, parts] (the shape valueAndGrad's hasAux expects). */
export function objective(params: VisionParams, batch: DeviceBatch, inputs: StepInputs, spec: ObjectiveSpec): [np.Array, LossParts] {
  const { decoder, head, positions, ...encoder } = params;
  const consistency = spec.consistency ? featureConsistency(untiedWeights(encoder.sheet, spec.sheet).map((w) => w.ref), inputs.neighbours) : (inputs.neighbours.dispose(), np.zeros([]));
  const isMim = spec.vision.task === "mim";
  const { out, attn, patches, activity } = visionEncode(encoder, batch.images, isMim ? batch.mask.ref : null, spec.sheet, spec.vision, spec.layout, true, inputs.connectivity);
  const { task, correct } = taskLoss({ decoder, head }, out, patches, batch.mask, batch.labels, spec.vision);
  let distances = inputs.distances;
  let spread: np.Array = np.zeros([]);
  if (spec.positions && positions) {
    distances.dispose();
    distances = positionDistances(positions, spec.positions.space); // [N, N], differentiable in the positions
    spread = repulsion(distances.ref, spec.positions.spacing);
  }
  let wiring: np.Array;
  if (inputs.wiringWeights) {
    distances.dispose();
    wiring = wiringCost(attn, inputs.wiringWeights, 1); // sparse: attn [B, depth, N, K]
  } else {
    wiring = wiringCostFromDistances(attn, distances, { ...spec.wiring, lambda: 1 });
  }
  const total = task.ref
    .add(wiring.ref.mul(inputs.wiring))
    .add(consistency.ref.mul(inputs.consistency))
    .add(spread.ref.mul(inputs.repulsion))
    .add(activity!.l1.ref.mul(inputs.activation));
  return [total, { task, wiring, consistency, repulsion: spread, activation_l1: activity!.l1, activation_hoyer: activity!.hoyer, correct }];
}

/**
 * The task loss of the readout on the output-area states. Consumes everything.
 * out: [B, P_out, D]; patches: [B, P, p*p*C] (the MIM targets); mask: [B, P] (MIM) and
 * labels: one-hot [B, classes] (classification), each a dummy [B, 1] for the other task.
 * Returns the task loss (MIM normalised MSE or cross-entropy) and the correct count (0 for MIM).
 */
export function taskLoss(
  readout: Pick<VisionParams, "decoder" | "head">,
  out: np.Array,
  patches: np.Array,
  mask: np.Array,
  labels: np.Array,
  vision: VisionConfig,
): { task: np.Array; correct: np.Array } {
  if (vision.task === "mim") {
    tree.dispose([readout.head, labels]);
    const pred = decodePatches(readout.decoder!, out); // [B, P, p*p*C]
    return { task: maskedMse(pred, normalizePatches(patches), mask), correct: np.zeros([]) };
  }
  tree.dispose([readout.decoder, patches, mask]);
  const logits = classify(readout.head!, out); // [B, classes]
  return { task: crossEntropy(logits.ref, labels.ref), correct: correctCount(logits, labels) };
}

/** Per-patch predictions for a figure: [B, P, p*p*C] in normalised units. Consumes params and inputs (`connectivity`: a sparse sheet's [N, K]). */
export function predictPatches(params: VisionParams, images: np.Array, mask: np.Array, spec: ObjectiveSpec, connectivity?: np.Array): np.Array {
  const { decoder, head, positions, ...encoder } = params;
  tree.dispose([head, positions]);
  const { out, attn, patches } = visionEncode(encoder, images, mask, spec.sheet, spec.vision, spec.layout, false, connectivity);
  attn.dispose();
  patches.dispose();
  return decodePatches(decoder!, out);
}
