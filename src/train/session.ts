/**
 * A model session: everything derived once from a training config (geometry,
 * layout, objective, jitted functions) plus helpers to move host batches to
 * the device. Shared by training, evaluation and probing.
 */
import { type BatchStats, batches, type ImageBatch, type ImageDataset } from "../data/index.ts";
import { Rng, mixSeed } from "../data/index.ts";
import { jit, numpy as np, tree, valueAndGrad } from "../engine/jax.ts";
import type { Geometry } from "../geometry/index.ts";
import { resolveSheetConfig, type SheetConfig } from "../model/config.ts";
import { type VisionConfig, type VisionLayout, type VisionParams, visionEncode, visionLayout } from "../model/vision.ts";
import { randomPatchMask } from "../objectives/mim.ts";
import type { TrainConfig } from "./config.ts";
import { medianSpacing, positionSpace } from "../geometry/learned.ts";
import { nearestNeighbourGraph } from "../objectives/feature-consistency.ts";
import { sparseWiringWeights, type WiringCostSpec } from "../objectives/wiring-cost.ts";
import { connectivityArray, resolveConnectivity, type SheetConnectivity } from "../model/sheet-connectivity.ts";
import { type DeviceBatch, type LossParts, objective, type ObjectiveSpec, type StepInputs } from "./loss.ts";
import { penaltySchedule } from "./schedule.ts";

/** Derived, immutable pieces of a run. */
export interface Session {
  config: TrainConfig;
  sheet: SheetConfig;
  vision: VisionConfig;
  geometry: Geometry;
  layout: VisionLayout;
  spec: ObjectiveSpec;
  /** Column distances [N, N] on the device, [N, K] connection distances for a sparse sheet (kept; stepInputs passes a reference). */
  distances: np.Array;
  /** A sparse sheet's connectivity (host), or null for a dense sheet. */
  connectivity: SheetConnectivity | null;
  /** A sparse sheet's source columns int32 [N, K] on the device (kept), or null. */
  connectivityArray: np.Array | null;
  /** A sparse sheet's wiring weights [N, K] on the device (kept), or null. */
  wiringWeights: np.Array | null;
  /** Neighbour graph [N, N] of the feature-consistency penalty (kept). */
  neighbours: np.Array;
  /** The penalty coefficients at optimiser step `step` (0-based), from their schedules. */
  coefficients: (step: number) => { wiring: number; consistency: number; repulsion: number; activation: number };
  /** The objective's non-parameter inputs at optimiser step `step`: distances and the coefficients. */
  stepInputs: (step: number) => StepInputs;
  /**
   * jit(valueAndGrad(objective)): ([params, batch, distances]) -> [[total, parts], grads].
   * Jitted although jax-js 0.1.25's fusion makes the attention backward slower than eager
   * execution (tiny preset: ~1.15 s vs ~0.85 s per step at batch 32): the eager gradient
   * grows memory by ~0.25 MiB per step (JS heap and Wasm heap), the jitted one stays flat.
   */
  gradStep: (params: VisionParams, batch: DeviceBatch, inputs: StepInputs) => [[np.Array, LossParts], VisionParams];
  /** jit(objective) for evaluation. */
  evalStep: (params: VisionParams, batch: DeviceBatch, inputs: StepInputs) => [np.Array, LossParts];
  /** jit: output-area states [B, P_out, D] of unmasked images (features for probes and analysis). */
  encode: (params: VisionParams, images: np.Array) => np.Array;
  /** References to the sparse connectivity array for a call: [] for a dense sheet, [idx] for a sparse one (pass as trailing jit arguments). */
  connectivityArgs: () => np.Array[];
}

/**
 * Build the session for a resolved training config. `learned` replaces the
 * config's geometry (a trained model's learned positions; same columns and areas).
 * `indices` [N * K]: a sparse sheet's connectivity from a checkpoint, which wins
 * over rebuilding it from the config.
 */
export function createSession(config: TrainConfig, learned?: Geometry, indices?: Int32Array | null): Session {
  const resolved = resolveSheetConfig(config.sheet);
  const sheet = resolved.config;
  const geometry = learned ?? resolved.geometry;
  if (geometry.numColumns !== sheet.num_columns) throw new Error(`createSession: the geometry has ${geometry.numColumns} columns, the sheet ${sheet.num_columns}`);
  const vision = config.vision;
  const layout = visionLayout(vision, geometry);
  const wiring: WiringCostSpec =
    config.wiring.form === "l1" ? { form: "l1", lambda: 1, p: config.wiring.p } : { form: "cross_entropy", lambda: 1, sigma: config.wiring.sigma };
  const positions = sheet.learn_positions
    ? { space: positionSpace(geometry), spacing: config.positions.min_spacing ?? medianSpacing(geometry) / 2 }
    : null;
  const spec: ObjectiveSpec = { sheet, vision, layout, wiring, consistency: config.consistency.coef > 0, positions };
  const n = sheet.num_columns;
  const fn = (params: VisionParams, batch: DeviceBatch, inputs: StepInputs) => objective(params, batch, inputs, spec);
  const gradStep = jit(valueAndGrad(fn, { hasAux: true })) as unknown as Session["gradStep"];
  const evalStep = jit(fn) as unknown as Session["evalStep"];
  const encodeJit = jit((params: VisionParams, images: np.Array, ...idx: np.Array[]) => {
    const { decoder, head, positions, ...encoder } = params;
    tree.dispose([decoder, head, positions]);
    const { out, attn, patches } = visionEncode(encoder, images, null, sheet, vision, layout, false, idx[0]);
    attn.dispose();
    patches.dispose();
    return out;
  });
  const connectivity = resolveConnectivity(sheet, geometry, indices);
  const connectivityDevice = connectivity ? connectivityArray(connectivity) : null;
  const connectivityArgs = (): np.Array[] => (connectivityDevice ? [connectivityDevice.ref] : []);
  const encode = ((params: VisionParams, images: np.Array) => encodeJit(params, images, ...connectivityArgs())) as Session["encode"];
  (encode as unknown as { dispose(): void }).dispose = () => encodeJit.dispose();
  const wiringWeights = connectivity
    ? np.array(sparseWiringWeights(geometry.distances, connectivity.distances, n, connectivity.k, wiring)).reshape([n, connectivity.k])
    : null;
  const distances = connectivity ? np.array(connectivity.distances).reshape([n, connectivity.k]) : np.array(geometry.distances).reshape([n, n]);
  const neighbours = np.array(
    spec.consistency ? nearestNeighbourGraph(geometry.distances, n, config.consistency.neighbours) : new Float32Array(n * n),
  ).reshape([n, n]);
  const wiringSchedule = penaltySchedule(config.wiring.lambda, config.wiring.schedule, config.steps);
  const consistencySchedule = penaltySchedule(config.consistency.coef, config.consistency.schedule, config.steps);
  const activationSchedule = penaltySchedule(config.activation_sparsity.coef, config.activation_sparsity.schedule, config.steps);
  const coefficients = (step: number) => ({
    wiring: wiringSchedule(step),
    consistency: consistencySchedule(step),
    repulsion: positions ? config.positions.repulsion : 0,
    activation: activationSchedule(step),
  });
  return {
    config,
    sheet,
    vision,
    geometry,
    layout,
    spec,
    distances,
    connectivity,
    connectivityArray: connectivityDevice,
    wiringWeights,
    connectivityArgs,
    neighbours,
    coefficients,
    stepInputs: (step: number): StepInputs => {
      const c = coefficients(step);
      return {
        ...(connectivityDevice && wiringWeights ? { connectivity: connectivityDevice.ref, wiringWeights: wiringWeights.ref } : {}),
        distances: distances.ref,
        neighbours: neighbours.ref,
        wiring: np.array(c.wiring),
        consistency: np.array(c.consistency),
        repulsion: np.array(c.repulsion),
        activation: np.array(c.activation),
      };
    },
    gradStep,
    evalStep,
    encode,
  };
}

/** Free the session's device arrays and compiled functions. */
export function disposeSession(session: Session): void {
  for (const fn of [session.gradStep, session.evalStep, session.encode]) (fn as unknown as { dispose(): void }).dispose();
  session.distances.dispose();
  session.neighbours.dispose();
  session.connectivityArray?.dispose();
  session.wiringWeights?.dispose();
}

/**
 * Move a host batch to the device, with the MIM mask drawn from `maskSeed`
 * (deterministic) and one-hot labels for classification.
 */
export function toDevice(session: Session, batch: ImageBatch, maskSeed: number): DeviceBatch {
  const { vision, layout, config } = session;
  const b = batch.size;
  const images = np.array(batch.images).reshape([b, vision.image_size, vision.image_size, vision.channels]);
  if (vision.task === "mim") {
    const rng = new Rng(maskSeed);
    const mask = randomPatchMask(b, layout.numPatches, config.mask_ratio, () => rng.next());
    return { images, mask: np.array(mask).reshape([b, layout.numPatches]), labels: np.zeros([b, 1]) };
  }
  if (!batch.labels) throw new Error("classification needs a labelled data set (this one has no labels)");
  const k = vision.num_classes;
  const onehot = new Float32Array(b * k);
  batch.labels.forEach((label, i) => {
    if (label < 0 || label >= k) {
      throw new Error(`label ${label} of example ${batch.indices[i]} is outside 0..${k - 1}; set vision.num_classes`);
    }
    onehot[i * k + label] = 1;
  });
  return { images, mask: np.zeros([b, 1]), labels: np.array(onehot).reshape([b, k]) };
}

/** Seeds for masks: a pure function of (run seed, purpose, step, micro-batch). */
export const maskSeed = (seed: number, purpose: number, step: number, micro = 0): number => mixSeed(seed, purpose, step, micro);

/** Held-out batches: the first `limit` test images in order, evaluation transform. */
export async function* heldOutBatches(session: Session, ds: ImageDataset, limit: number, stats?: BatchStats): AsyncGenerator<ImageBatch> {
  let seen = 0;
  const { vision, config } = session;
  for await (const batch of batches(ds, {
    batchSize: config.batch_size,
    imageSize: vision.image_size,
    channels: vision.channels,
    shuffle: false,
    seed: config.seed,
    epoch: 0,
    augment: "eval",
    stats,
  })) {
    if (seen >= limit) break;
    const keep = Math.min(batch.size, limit - seen);
    seen += keep;
    yield keep === batch.size ? batch : sliceBatch(batch, keep, vision.image_size ** 2 * vision.channels);
  }
}

function sliceBatch(batch: ImageBatch, keep: number, pixels: number): ImageBatch {
  return {
    images: batch.images.slice(0, keep * pixels),
    labels: batch.labels ? batch.labels.slice(0, keep) : null,
    size: keep,
    indices: batch.indices.slice(0, keep),
  };
}
