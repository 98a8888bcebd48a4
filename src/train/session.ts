/**
 * A model session: everything derived once from a training config (geometry,
 * layout, objective, the compiled model on the chosen backend) plus helpers to
 * move host batches to the device. Shared by every command.
 */
// the modules themselves, not data/index.ts: the viewer's page bundles this file without the data readers
import { type BatchStats, batches, type ImageBatch } from "../data/batches.ts";
import type { ImageDataset } from "../data/types.ts";
import { Rng, mixSeed } from "../engine/rng.ts";
import { numpy as np } from "../engine/jax.ts";
import type { Geometry } from "../geometry/index.ts";
import { resolveSheetConfig, type SheetConfig } from "../model/config.ts";
import { type VisionConfig, type VisionLayout, visionLayout } from "../model/vision.ts";
import { randomPatchMask } from "../objectives/mim.ts";
import type { TrainConfig } from "./config.ts";
import { medianSpacing, positionSpace } from "../geometry/learned.ts";
import { distanceMatrix, geometryMetric } from "../geometry/metric.ts";
import { nearestNeighbourGraph } from "../objectives/feature-consistency.ts";
import { drawNeighbourhoods, neighbourhoodAreas, selectionMatrix } from "../objectives/spatial-correlation.ts";
import { blurMatrix } from "../objectives/topo-blur.ts";
import { sparseWiringWeights, type WiringCostSpec } from "../objectives/wiring-cost.ts";
import { resolveConnectivity, type SheetConnectivity } from "../model/sheet-connectivity.ts";
import { type Backend, chooseBackend } from "../engine/backend.ts";
import type { SheetEngine } from "../engine/sheet-engine.ts";
import type { CompiledModel } from "./compiled.ts";
import { compileJax } from "./compiled-jax.ts";
import { compileNative } from "./compiled-native.ts";
import type { DeviceBatch, ObjectiveSpec } from "./loss.ts";
import { penaltySchedule } from "../optim/schedule.ts";

/** Derived, immutable pieces of a run: the model object every command works with. */
export interface Session {
  config: TrainConfig;
  sheet: SheetConfig;
  vision: VisionConfig;
  geometry: Geometry;
  layout: VisionLayout;
  spec: ObjectiveSpec;
  /** A sparse sheet's connectivity (host), or null for a dense one. */
  connectivity: SheetConnectivity | null;
  /**
   * Wiring weights W with lambda 1 (host): [N, N] for a dense sheet, [N, K] over the connections of
   * a sparse one (see sparseWiringWeights); null when positions are learned (W moves with them).
   */
  wiringWeights: Float32Array | null;
  /** Neighbour graph [N, N] of the feature-consistency penalty (host), or null when it is off. */
  neighbours: Float32Array | null;
  /** Blur K [N, N] of the topo-blur penalty (host), or null when it is off. */
  blur: Float32Array | null;
  /**
   * The spatial-correlation loss's neighbourhoods at optimiser step `step` (a pure function of
   * the run's seed and the step), as a one-hot selection [N, M, K] (host); null when it is off.
   */
  neighbourhoods: (step: number) => Float32Array | null;
  /** The penalty coefficients at optimiser step `step` (0-based), from their schedules. */
  coefficients: (step: number) => PenaltyCoefficients;
  /** The engine that runs the sheet. */
  backend: Backend;
  /** The compiled gradient step, evaluation step and encoder (see compiled.ts). */
  compiled: CompiledModel;
}

/** Penalty coefficients of one optimiser step. */
export interface PenaltyCoefficients {
  wiring: number;
  consistency: number;
  repulsion: number;
  activation: number;
  spatial: number;
  topo: number;
}

/** Seed purpose of the spatial-correlation neighbourhoods (see maskSeed). */
const SPATIAL_NEIGHBOURHOODS = 3;

/** Options of {@link createSession}. */
export interface SessionOptions {
  /** Replaces the config's geometry (a trained model's learned positions; same columns and areas). */
  learned?: Geometry;
  /** A sparse sheet's connectivity [N * K] from a checkpoint, which wins over rebuilding it from the config. */
  indices?: Int32Array | null;
  /** The engine (default: see chooseBackend). */
  backend?: Backend | null;
  /**
   * An engine the caller has already chosen, instead of chooseBackend (which reads
   * process.env and loads the addon): the viewer's page, training on its WebGPU engine or on jax-js.
   */
  engine?: { backend: Backend; engine: SheetEngine | null };
}

/** Build the session for a resolved training config. */
export function createSession(config: TrainConfig, options: SessionOptions = {}): Session {
  const resolved = resolveSheetConfig(config.sheet);
  const sheet = resolved.config;
  const geometry = options.learned ?? resolved.geometry;
  if (geometry.numColumns !== sheet.num_columns) throw new Error(`createSession: the geometry has ${geometry.numColumns} columns, the sheet ${sheet.num_columns}`);
  const vision = config.vision;
  const layout = visionLayout(vision, geometry);
  // the communicability form weights the L1 wiring weights by the attention's communicability
  const wiring: WiringCostSpec =
    config.wiring.form === "cross_entropy" ? { form: "cross_entropy", lambda: 1, sigma: config.wiring.sigma } : { form: "l1", lambda: 1, p: config.wiring.p };
  const positions = sheet.learn_positions
    ? { space: positionSpace(geometry), spacing: config.positions.min_spacing ?? medianSpacing(geometry) / 2 }
    : null;
  const spec: ObjectiveSpec = {
    sheet,
    vision,
    layout,
    wiring,
    communicability: config.wiring.form === "communicability",
    consistency: config.consistency.coef > 0,
    spatialCorrelation: config.spatial_correlation.coef > 0,
    topoBlur: config.topo_blur.coef > 0,
    positions,
  };
  const n = sheet.num_columns;
  const connectivity = resolveConnectivity(sheet, geometry, options.indices);
  if (spec.communicability && connectivity) {
    throw new Error(
      'wiring.form "communicability" needs a dense sheet (it takes the matrix exponential of the N x N mean attention); use sheet.connectivity {"kind": "dense"} or wiring.form "l1"',
    );
  }
  if (spec.topoBlur && !sheet.untie_attn && !sheet.untie_mlp) {
    throw new Error("topo_blur.coef > 0 needs untied weights to blur: set sheet.untie_attn or sheet.untie_mlp to true, or topo_blur.coef to 0");
  }
  const wiringWeights = positions
    ? null
    : connectivity
      ? sparseWiringWeights(geometryMetric(geometry), connectivity.distances, n, connectivity.k, wiring)
      : sparseWiringWeights(geometryMetric(geometry), distanceMatrix(geometry), n, n, wiring);
  const neighbours = spec.consistency ? nearestNeighbourGraph(distanceMatrix(geometry), n, config.consistency.neighbours) : null;
  const blur = spec.topoBlur ? blurMatrix(distanceMatrix(geometry), n, geometry.areas, config.topo_blur) : null;
  const spatial = config.spatial_correlation;
  if (spec.spatialCorrelation) {
    neighbourhoodAreas(geometry.areas, spatial.size); // fails now, naming the field, rather than at the first step
    if (config.batch_size < 2) throw new Error(`spatial_correlation correlates responses across the batch: batch_size must be at least 2, got ${config.batch_size}`);
  }
  const neighbourhoods = (step: number): Float32Array | null =>
    spec.spatialCorrelation ? selectionMatrix(drawNeighbourhoods(distanceMatrix(geometry), n, geometry.areas, spatial, mixSeed(config.seed, SPATIAL_NEIGHBOURHOODS, step)), n) : null;
  const wiringSchedule = penaltySchedule(config.wiring.lambda, config.wiring.schedule, config.steps);
  const consistencySchedule = penaltySchedule(config.consistency.coef, config.consistency.schedule, config.steps);
  const activationSchedule = penaltySchedule(config.activation_sparsity.coef, config.activation_sparsity.schedule, config.steps);
  const spatialSchedule = penaltySchedule(spatial.coef, spatial.schedule, config.steps);
  const topoSchedule = penaltySchedule(config.topo_blur.coef, config.topo_blur.schedule, config.steps);
  const coefficients = (step: number): PenaltyCoefficients => ({
    wiring: wiringSchedule(step),
    consistency: consistencySchedule(step),
    repulsion: positions ? config.positions.repulsion : 0,
    activation: activationSchedule(step),
    spatial: spatialSchedule(step),
    topo: topoSchedule(step),
  });
  const { backend, engine } = options.engine ?? chooseBackend(options.backend);
  const base = { config, sheet, vision, geometry, layout, spec, connectivity, wiringWeights, neighbours, blur, neighbourhoods, coefficients, backend };
  const compiled = engine && backend !== "jax" ? compileNative(base, engine, backend) : compileJax(base);
  return { ...base, compiled };
}

/** Free the session's compiled functions and buffers. */
export function disposeSession(session: Session): void {
  session.compiled.dispose();
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
