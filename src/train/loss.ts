/**
 * The training objective of the vision model, as a pure function of the
 * parameters and one batch:
 *
 *   total = task + lambda_wiring * wiring + lambda_consistency * consistency
 *         + lambda_repulsion * repulsion + lambda_activation * activation_l1
 *         + lambda_spatial * spatial_correlation + lambda_topo * topo_blur
 *
 * task: MIM or classification; wiring: the (unweighted) wiring cost of every
 * step's attention (form "communicability": of the batch- and step-mean
 * attention); consistency: the feature-consistency penalty (when on);
 * repulsion: the anti-collapse term of learned positions (when learned);
 * activation_l1: mean |x| of the column states after every step;
 * spatial_correlation: TDANN's spatial loss on the final states (when on);
 * topo_blur: the TopoLoss weight-blur penalty (when on). The coefficients are
 * inputs, not constants, so schedules change them without recompiling.
 */
import { lax, numpy as np, tree } from "../engine/jax.ts";
import { positionDistances, type PositionSpace, repulsion } from "../geometry/learned.ts";
import type { SheetConfig } from "../model/config.ts";
import { classify, decodePatches, type VisionConfig, type VisionLayout, type VisionParams, visionEncode } from "../model/vision.ts";
import { correctCount, crossEntropy } from "../objectives/classification.ts";
import { communicabilityWiringCost } from "../objectives/communicability.ts";
import { featureConsistency, untiedWeights } from "../objectives/feature-consistency.ts";
import { maskedMse, normalizePatches } from "../objectives/mim.ts";
import { spatialCorrelation } from "../objectives/spatial-correlation.ts";
import { topoBlur } from "../objectives/topo-blur.ts";
import { wiringCost, wiringCostFromDistances, type WiringCostSpec, wiringWeights } from "../objectives/wiring-cost.ts";

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
  /** Spatial correlation (when on): the step's neighbourhoods, a one-hot selection [N, M, K]. */
  neighbourhoods?: np.Array;
  /** Spatial correlation with a fixed geometry: the column distances [N, N]. */
  columnDistances?: np.Array;
  /** Topo blur (when on): the blur K [N, N]. */
  blur?: np.Array;
  /** Current coefficients (scalars). */
  wiring: np.Array;
  consistency: np.Array;
  repulsion: np.Array;
  activation: np.Array;
  spatial: np.Array;
  topo: np.Array;
};

/** Static pieces of the objective. */
export interface ObjectiveSpec {
  sheet: SheetConfig;
  vision: VisionConfig;
  layout: VisionLayout;
  /** Form of the wiring cost's distance weights (its coefficient is a step input). */
  wiring: WiringCostSpec;
  /** wiring.form "communicability": the L1 weights times the communicability of the mean attention (dense sheets). */
  communicability: boolean;
  /** The feature-consistency penalty is computed (its coefficient is not identically 0). */
  consistency: boolean;
  /** TDANN's spatial-correlation loss is computed (coefficient not identically 0). */
  spatialCorrelation: boolean;
  /** The TopoLoss weight-blur penalty is computed (coefficient not identically 0). */
  topoBlur: boolean;
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
  /** TDANN spatial loss of the final states with coefficient 1 (0 when off). */
  spatial_correlation: np.Array;
  /** TopoLoss weight-blur penalty with coefficient 1 (0 when off). */
  topo_blur: np.Array;
  /** Correct predictions in the batch (classification; 0 for MIM). */
  correct: np.Array;
};

/** Consumes everything. Returns [total, parts] (the shape valueAndGrad's hasAux expects). */
export function objective(params: VisionParams, batch: DeviceBatch, inputs: StepInputs, spec: ObjectiveSpec): [np.Array, LossParts] {
  const { decoder, head, positions, ...encoder } = params;
  let consistency: np.Array;
  if (spec.consistency) consistency = featureConsistency(untiedWeights(encoder.sheet, spec.sheet).map((w) => w.ref), inputs.neighbours);
  else {
    inputs.neighbours.dispose();
    consistency = np.zeros([]);
  }
  let blurred: np.Array;
  if (spec.topoBlur) blurred = topoBlur(untiedWeights(encoder.sheet, spec.sheet).map((w) => w.ref), inputs.blur!);
  else {
    inputs.blur?.dispose();
    blurred = np.zeros([]);
  }
  const isMim = spec.vision.task === "mim";
  // the spatial loss reads every column's final state: encode to the whole sheet, then cut out the output area
  const n = spec.sheet.num_columns;
  const layout = spec.spatialCorrelation ? { ...spec.layout, outputArea: { name: "sheet", start: 0, end: n } } : spec.layout;
  const encoded = visionEncode(encoder, batch.images, isMim ? batch.mask.ref : null, spec.sheet, spec.vision, layout, true, inputs.connectivity);
  const { attn, patches, activity } = encoded;
  let out = encoded.out; // [B, P_out, D], or [B, N, D] with the spatial loss
  let finalStates: np.Array | null = null;
  if (spec.spatialCorrelation) {
    finalStates = out;
    out = finalStates.ref.slice([], [spec.layout.outputArea.start, spec.layout.outputArea.end]);
  }
  const { task, correct } = taskLoss({ decoder, head }, out, patches, batch.mask, batch.labels, spec.vision);
  let distances = inputs.distances;
  let spread: np.Array = np.zeros([]);
  if (spec.positions && positions) {
    distances.dispose();
    distances = positionDistances(positions, spec.positions.space); // [N, N], differentiable in the positions
    spread = repulsion(distances.ref, spec.positions.spacing);
  }
  let spatial: np.Array = np.zeros([]);
  if (finalStates) {
    // learned positions: the current distances, not differentiated (TDANN's positions are fixed)
    const d = inputs.columnDistances ?? lax.stopGradient(distances.ref);
    spatial = spatialCorrelation(finalStates, inputs.neighbourhoods!, d);
  } else {
    tree.dispose([inputs.neighbourhoods, inputs.columnDistances]);
  }
  let wiring: np.Array;
  if (inputs.wiringWeights) {
    distances.dispose();
    wiring = wiringCost(attn, inputs.wiringWeights, 1); // sparse: attn [B, depth, N, K]
  } else if (spec.communicability) {
    wiring = communicabilityWiringCost(attn.mean([0, 1]), wiringWeights(distances, { ...spec.wiring, lambda: 1 })); // mean attention [N, N]
  } else {
    wiring = wiringCostFromDistances(attn, distances, { ...spec.wiring, lambda: 1 });
  }
  let total = task.ref
    .add(wiring.ref.mul(inputs.wiring))
    .add(consistency.ref.mul(inputs.consistency))
    .add(spread.ref.mul(inputs.repulsion))
    .add(activity!.l1.ref.mul(inputs.activation));
  // the new terms enter only when on, so a run without them computes exactly what it did before
  if (spec.spatialCorrelation) total = total.add(spatial.ref.mul(inputs.spatial));
  else inputs.spatial.dispose();
  if (spec.topoBlur) total = total.add(blurred.ref.mul(inputs.topo));
  else inputs.topo.dispose();
  return [
    total,
    { task, wiring, consistency, repulsion: spread, activation_l1: activity!.l1, activation_hoyer: activity!.hoyer, spatial_correlation: spatial, topo_blur: blurred, correct },
  ];
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
