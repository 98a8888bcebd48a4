/**
 * The model object: everything derived once from a training config, on the host: the sheet
 * and vision configs, the geometry, the patch layout, a sparse sheet's connectivity, the wiring
 * weights, the fixed inputs of the penalties and their schedules. `buildModel` makes it;
 * `compile` (session.ts) turns it into the calls of one engine.
 */
import { mixSeed } from "../engine/rng.ts";
import type { Geometry } from "../geometry/index.ts";
import { medianSpacing, positionSpace } from "../geometry/learned.ts";
import { distanceMatrix, geometryMetric } from "../geometry/metric.ts";
import { resolveSheetConfig, type SheetConfig } from "../model/config.ts";
import { resolveConnectivity, type SheetConnectivity } from "../model/sheet-connectivity.ts";
import { type VisionConfig, type VisionLayout, visionLayout } from "../model/vision.ts";
import { nearestNeighbourGraph } from "../objectives/feature-consistency.ts";
import { drawNeighbourhoods, neighbourhoodAreas, selectionMatrix } from "../objectives/spatial-correlation.ts";
import { blurMatrix } from "../objectives/topo-blur.ts";
import { sparseWiringWeights, type WiringCostSpec } from "../objectives/wiring-cost.ts";
import { penaltySchedule } from "../optim/schedule.ts";
import type { TrainConfig } from "./config.ts";
import type { ObjectiveSpec } from "./loss.ts";

/** Derived, immutable pieces of a run (host arrays only; nothing here belongs to an engine). */
export interface Model {
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

/** What a checkpoint fixes of the model beyond its config. */
export interface ModelOptions {
  /** Replaces the config's geometry (a trained model's learned positions; same columns and areas). */
  learned?: Geometry;
  /** A sparse sheet's connectivity [N * K] from a checkpoint, which wins over rebuilding it from the config. */
  indices?: Int32Array | null;
}

/** Seed purpose of the spatial-correlation neighbourhoods (see maskSeed). */
const SPATIAL_NEIGHBOURHOODS = 3;

/** Build the model of a resolved training config (with a checkpoint's learned geometry / connectivity). */
export function buildModel(config: TrainConfig, options: ModelOptions = {}): Model {
  const resolved = resolveSheetConfig(config.sheet);
  const sheet = resolved.config;
  const geometry = options.learned ?? resolved.geometry;
  if (geometry.numColumns !== sheet.num_columns) throw new Error(`buildModel: the geometry has ${geometry.numColumns} columns, the sheet ${sheet.num_columns}`);
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
  return { config, sheet, vision, geometry, layout, spec, connectivity, wiringWeights, neighbours, blur, neighbourhoods, coefficients };
}
