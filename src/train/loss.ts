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

/**
 * One batch on the device: images [B, H, W, C] in [0, 1] with, for MIM, the mask [B, P]
 * (1 = masked patch) or, for classification, one-hot labels [B, classes].
 */
export type DeviceBatch = { images: np.Array; mask: np.Array; labels?: never } | { images: np.Array; labels: np.Array; mask?: never };

/** What the model reads of a batch: images [B, H, W, C], and the MIM mask [B, P] when patches are hidden (labels are ignored). */
export type ModelInput = { images: np.Array; mask?: np.Array; labels?: np.Array };

/** A sparse sheet's fixed connections on the device. */
export type SparseInputs = {
  /** Source column of each connection, int32 [N, K]. */
  connectivity: np.Array;
  /** Wiring weights of the connections [N, K] with lambda 1 (see sparseWiringWeights). */
  wiringWeights: np.Array;
};

/** The sheet's own inputs besides parameters and states: a sparse sheet's source columns int32 [N, K] (empty for a dense sheet). */
export type SheetInputs = { connectivity?: np.Array };

/** Whether the objective takes the fixed column distances [N, N] as a step input (see StepInputs.distances). */
export function needsDistances(spec: ObjectiveSpec, sparse: boolean): boolean {
  return spec.positions === null && (!sparse || spec.spatialCorrelation);
}

/** Inputs of one step besides parameters and batch (all consumed). */
export type StepInputs = {
  /**
   * Column distances [N, N] of a fixed geometry, where the objective needs them: a dense
   * sheet's wiring cost, the spatial-correlation loss. Absent when positions are learned
   * (the objective computes them from the positions).
   */
  distances?: np.Array;
  /** A sparse sheet's connections (absent for a dense sheet). */
  sparse?: SparseInputs;
  /** Feature consistency (when on): the neighbour graph [N, N]. */
  neighbours?: np.Array;
  /** Spatial correlation (when on): the step's neighbourhoods, a one-hot selection [N, M, K]. */
  neighbourhoods?: np.Array;
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
  const consistency = spec.consistency ? featureConsistency(untiedWeights(encoder.sheet, spec.sheet).map((w) => w.ref), inputs.neighbours!) : np.zeros([]);
  const blurred = spec.topoBlur ? topoBlur(untiedWeights(encoder.sheet, spec.sheet).map((w) => w.ref), inputs.blur!) : np.zeros([]);
  tree.dispose([spec.consistency ? null : inputs.neighbours, spec.topoBlur ? null : inputs.blur, spec.spatialCorrelation ? null : inputs.neighbourhoods]);
  // the spatial loss reads every column's final state: encode to the whole sheet, then cut out the output area
  const n = spec.sheet.num_columns;
  const layout = spec.spatialCorrelation ? { ...spec.layout, outputArea: { name: "sheet", start: 0, end: n } } : spec.layout;
  const encoded = visionEncode(encoder, batch.images, batch.mask?.ref ?? null, spec.sheet, spec.vision, layout, true, inputs.sparse?.connectivity);
  const { attn, patches, activity } = encoded;
  let out = encoded.out; // [B, P_out, D], or [B, N, D] with the spatial loss
  let finalStates: np.Array | null = null;
  if (spec.spatialCorrelation) {
    finalStates = out;
    out = finalStates.ref.slice([], [spec.layout.outputArea.start, spec.layout.outputArea.end]);
  }
  let target: TaskTarget;
  if (batch.mask) target = { patches, mask: batch.mask };
  else {
    patches.dispose();
    target = { labels: batch.labels! };
  }
  const { task, correct } = taskLoss({ decoder, head }, out, target);
  // [N, N]: the fixed geometry's, or those of the learned positions (differentiable in them)
  let distances = inputs.distances ?? null;
  let spread: np.Array = np.zeros([]);
  if (spec.positions && positions) {
    distances?.dispose();
    distances = positionDistances(positions, spec.positions.space);
    spread = repulsion(distances.ref, spec.positions.spacing);
  }
  // learned positions: the current distances, not differentiated (TDANN's positions are fixed)
  const spatial = finalStates ? spatialCorrelation(finalStates, inputs.neighbourhoods!, lax.stopGradient(distances!.ref)) : np.zeros([]);
  let wiring: np.Array;
  if (inputs.sparse) {
    distances?.dispose();
    wiring = wiringCost(attn, inputs.sparse.wiringWeights, 1); // attn [B, depth, N, K]
  } else if (spec.communicability) {
    wiring = communicabilityWiringCost(attn.mean([0, 1]), wiringWeights(distances!, { ...spec.wiring, lambda: 1 })); // mean attention [N, N]
  } else {
    wiring = wiringCostFromDistances(attn, distances!, { ...spec.wiring, lambda: 1 });
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

/** What the readout is scored against: MIM's patches [B, P, p*p*C] and mask [B, P], or one-hot labels [B, classes]. */
export type TaskTarget = { patches: np.Array; mask: np.Array } | { labels: np.Array };

/**
 * The task loss of the readout on the output-area states out [B, P_out, D]: MIM's normalised
 * MSE of the masked patches, or the cross-entropy of the labels, and the correct count (0 for
 * MIM). Consumes everything.
 */
export function taskLoss(readout: Pick<VisionParams, "decoder" | "head">, out: np.Array, target: TaskTarget): { task: np.Array; correct: np.Array } {
  if ("mask" in target) {
    tree.dispose(readout.head);
    const pred = decodePatches(readout.decoder!, out); // [B, P, p*p*C]
    return { task: maskedMse(pred, normalizePatches(target.patches), target.mask), correct: np.zeros([]) };
  }
  tree.dispose(readout.decoder);
  const logits = classify(readout.head!, out); // [B, classes]
  return { task: crossEntropy(logits.ref, target.labels.ref), correct: correctCount(logits, target.labels) };
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
