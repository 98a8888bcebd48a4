/**
 * Every analysis metric of a trained sheet, from its activity on held-out
 * images: connectivity (per step and on the step-mean map), flow between
 * areas, the effective connectivity graph, topography of responses and, when
 * given the untied weights, their similarity vs distance.
 * Pure: the same activity, weights and options give the same result.
 */
import type { Area, Geometry } from "../geometry/index.ts";
import { distanceMatrix } from "../geometry/metric.ts";
import type { SheetActivity } from "./collect.ts";
import {
  areaFlow,
  attentionEntropy,
  distanceHistogram,
  localityCurve,
  meanAttentionDistance,
  perStepAndMean,
  selfAttentionMass,
  stepMeanMap,
  wiringCosts,
} from "./connectivity.ts";
import { characteristicPathLength, clusteringCoefficient, degrees, modularity, smallWorldness, symmetrize, thresholdTopFraction } from "./graph.ts";
import {
  activationSparsity,
  ckaVsDistance,
  classSelectivity,
  columnResponses,
  correlationVsDistance,
  moransINull,
  smoothnessIndex,
} from "./topography.ts";
import { DEFAULT_FIELD_OPTIONS, fieldTopography, type FieldOptions, type FieldResult, type GratingActivity } from "./field.ts";
import { weightSimilarityVsDistance, type ColumnWeights, type WeightSimilarityCurve } from "./weight-similarity.ts";

/** Parameters of the analysis (stored in analysis.json next to the results). */
export interface AnalysisOptions {
  /** Fraction of strongest off-diagonal edges kept in the connectivity graph. */
  edgeFraction: number;
  /** Distance bins of histograms and curves. */
  bins: number;
  /** Radii of the locality curve (default: bins evenly up to the largest distance). */
  radii?: number[];
  /** Degree-preserving random graphs for small-worldness. */
  randomGraphs: number;
  /** Position shuffles of the Moran's I null. */
  shuffles: number;
  /** Column pairs sampled for the CKA curve. */
  ckaPairs: number;
  /** Images used for the CKA curve (the first ones). */
  ckaImages: number;
  seed: number;
  /** Wiring-cost parameters (lambda is 1 here: raw costs). */
  wiring: { p: number; sigma: number };
  /** The published-definition metrics (field.ts); their seed is `seed`. */
  field: Omit<FieldOptions, "seed">;
}

export const DEFAULT_ANALYSIS_OPTIONS: AnalysisOptions = {
  edgeFraction: 0.05,
  bins: 12,
  randomGraphs: 10,
  shuffles: 100,
  ckaPairs: 500,
  ckaImages: 300,
  seed: 0,
  wiring: { p: 1, sigma: 2 },
  field: (({ seed: _, ...rest }) => rest)(DEFAULT_FIELD_OPTIONS),
};

/** Definitions written into analysis.json, so the numbers explain themselves. */
export const DEFINITIONS: Record<string, string> = {
  wiring_cost_l1: "mean over target columns i of sum_j A_ij W_ij, W = d^p / mean(d^p) (lambda = 1); uniform attention scores 1",
  wiring_cost_cross_entropy: "mean over i of sum_j A_ij * -log_softmax_j(-d_ij^2 / (2 sigma^2)) (lambda = 1)",
  mean_attention_distance: "mean over target columns i of sum_j A_ij d_ij (sheet distance units)",
  distance_histogram: "attention mass per distance bin, averaged over target columns; sums to 1",
  locality_curve: "fraction of attention mass within distance <= r, averaged over target columns",
  self_attention_mass: "mean over i of A_ii",
  attention_entropy: "mean over i of -sum_j A_ij ln A_ij (nats); normalized divides by ln N",
  area_flow:
    "matrix[t][s] = mean over target columns in area t of their attention mass on area s; areas ordered input -> output; feedforward = mass from a lower area (s < t), feedback = from a higher area (s > t), lateral = within an area, as fractions of all mass",
  graph:
    "effective connectivity: the step-mean attention thresholded to its top edge_fraction off-diagonal edges (directed); modularity (Louvain, Newman Q), clustering and path length on the symmetrised graph; small-world sigma = (C/C_rand)/(L/L_rand) against degree-preserving random graphs",
  response:
    "topography.*: a column's response to an image = mean over its D state features at the final step; field.*: the response chosen by options.field.response (mean, norm, pc1 or a feature index), and every feature on its own at unit level",
  correlation_vs_distance: "Pearson correlation of two columns' responses across images, averaged in distance bins",
  smoothness_index:
    "project-specific (NOT TDANN's smoothness, see field.areas[].*.smoothness_*): mean correlation in the nearest distance bin minus the farthest (positive = smooth map)",
  selectivity:
    "project-specific: d' of class c for a column = (mu_c - mu_rest) / sqrt((var_c + var_rest) / 2) of its responses, population variances; preferred class = argmax d' (field.areas[].columns_level.selectivity has Welch t and d' with sample variances)",
  morans_i:
    "project-specific: spatial autocorrelation of each column's max d' over the whole sheet with inverse-distance weights, against a null of shuffled positions (z, one-sided p); the standard definition (row-standardised queen weights, per area) is field.areas[].columns_level.selectivity.morans_i_max_t",
  field: "the metrics as the topographic-modelling literature defines them, per area; formulas and sources in field.references",
  activation_sparsity: "per column over images x features: fraction of |activation| < 1% of the column's max, and Hoyer sparsity",
  cka_vs_distance: "linear CKA between two columns' [images, D] final states, averaged in distance bins: do untied columns share a feature space?",
  weight_similarity_vs_distance:
    "cosine similarity of two columns' flattened untied weight matrices (attention q, k, v, o; MLP fc1, fc2), averaged in distance bins (per bin: mean over pairs, then over blocks, then over matrices); neighbour_similarity = mean over columns of their mean cosine with their nearest neighbours (the feature-consistency penalty's k nearest, or all at the nearest distance when neighbours is null), so 1 - neighbour_similarity is that penalty; null without untied weights",
};

/** All metrics (JSON-serialisable). */
export interface AnalysisResult {
  images: number;
  options: AnalysisOptions;
  definitions: Record<string, string>;
  connectivity: {
    per_step: ConnectivityMetrics[];
    mean: ConnectivityMetrics;
  };
  area_flow: { per_step: ReturnType<typeof areaFlow>[]; mean: ReturnType<typeof areaFlow>; areas: string[] } | null;
  graph: {
    edges: number;
    modularity: number;
    communities: number[];
    clustering: number;
    path_length: number;
    disconnected_fraction: number;
    small_world: ReturnType<typeof smallWorldness>;
    in_degree: number[];
    out_degree: number[];
  };
  topography: {
    correlation_vs_distance: ReturnType<typeof correlationVsDistance>;
    smoothness_index: number;
    selectivity: { dprime: number[][]; preferred: number[]; max_dprime: number[]; morans_i: ReturnType<typeof moransINull> } | null;
    sparsity: { fraction_near_zero: number[]; hoyer: number[]; mean_hoyer: number };
    cka_vs_distance: ReturnType<typeof ckaVsDistance>;
    weight_similarity_vs_distance: WeightSimilarityCurve | null;
  };
  /** The metrics with the field's definitions (see field.ts). */
  field: FieldResult;
}

/** Inputs of the analysis besides the activity: read from the checkpoint by the caller. */
export interface AnalysisExtras {
  /** The sheet's untied per-column weight matrices ([N, out, in] or [depth, N, out, in]). */
  weights?: readonly ColumnWeights[];
  /** Neighbours per column for the weight neighbour similarity (the consistency penalty's k); default: all at the nearest distance. */
  neighbours?: number;
  /** The area read out (effective dimensionality); default the last area. */
  outputArea?: Area;
  /** Activity on the sine-grating set, for orientation maps. */
  gratings?: GratingActivity;
}

export interface ConnectivityMetrics {
  wiring_cost_l1: number;
  wiring_cost_cross_entropy: number;
  mean_attention_distance: number;
  self_attention_mass: number;
  attention_entropy: number;
  attention_entropy_normalized: number;
  distance_histogram: { edges: number[]; mass: number[] };
  locality_curve: { radii: number[]; fraction: number[] };
}

/** Compute every metric. */
export function analyzeActivity(
  activity: SheetActivity,
  geometry: Geometry,
  dim: number,
  numClasses: number | null,
  options: AnalysisOptions = DEFAULT_ANALYSIS_OPTIONS,
  extras: AnalysisExtras = {},
): AnalysisResult {
  const n = geometry.numColumns;
  const D = distanceMatrix(geometry);
  let maxDist = 0;
  for (const d of D) maxDist = Math.max(maxDist, d);
  const radii = options.radii ?? Array.from({ length: options.bins + 1 }, (_, i) => (maxDist * i) / options.bins);
  const connectivity = perStepAndMean(activity.attention, n, (a): ConnectivityMetrics => {
    const wiring = wiringCosts(a, D, { lambda: 1, ...options.wiring });
    const entropy = attentionEntropy(a);
    return {
      wiring_cost_l1: wiring.l1,
      wiring_cost_cross_entropy: wiring.cross_entropy,
      mean_attention_distance: meanAttentionDistance(a, D),
      self_attention_mass: selfAttentionMass(a),
      attention_entropy: entropy.entropy,
      attention_entropy_normalized: entropy.normalized,
      distance_histogram: distanceHistogram(a, D, options.bins),
      locality_curve: { radii, fraction: localityCurve(a, D, radii) },
    };
  });
  const flow = geometry.areas.length > 1 ? perStepAndMean(activity.attention, n, (a) => areaFlow(a, geometry.areas)) : null;

  const meanMap = stepMeanMap(activity.attention, n);
  const adj = thresholdTopFraction(meanMap, n, options.edgeFraction);
  const sym = symmetrize(adj, n);
  const deg = degrees(adj, n);
  const communities = modularity(adj, n, { seed: options.seed });
  const path = characteristicPathLength(sym, n);

  const responses = columnResponses(activity.states, activity.images, n, dim, "mean");
  const corr = correlationVsDistance(responses, activity.images, n, D, options.bins);
  let selectivity: AnalysisResult["topography"]["selectivity"] = null;
  if (activity.labels && numClasses) {
    const sel = classSelectivity(responses, activity.labels, activity.images, n, numClasses);
    selectivity = {
      dprime: Array.from({ length: numClasses }, (_, c) => Array.from(sel.dprime.subarray(c * n, (c + 1) * n))),
      preferred: Array.from(sel.preferred),
      max_dprime: Array.from(sel.maxDprime),
      morans_i: moransINull(sel.maxDprime, D, n, { weights: "inverse" }, { shuffles: options.shuffles, seed: options.seed }),
    };
  }
  const sparsity = activationSparsity(activity.states, activity.images, n, dim);
  const ckaImages = Math.min(options.ckaImages, activity.images);
  const cka = ckaVsDistance(activity.states.subarray(0, ckaImages * n * dim), ckaImages, n, dim, D, options.bins, {
    maxPairs: options.ckaPairs,
    seed: options.seed,
  });
  const weightSimilarity =
    extras.weights && extras.weights.length > 0 && n > 1
      ? weightSimilarityVsDistance(extras.weights, D, n, options.bins, { neighbours: extras.neighbours === undefined ? undefined : Math.min(extras.neighbours, n - 1) })
      : null;
  const field = fieldTopography(
    activity,
    geometry,
    dim,
    activity.labels ? numClasses : null,
    extras.outputArea ?? geometry.areas[geometry.areas.length - 1],
    { ...DEFAULT_FIELD_OPTIONS, ...options.field, seed: options.seed },
    extras.gratings,
  );
  return {
    images: activity.images,
    options: { ...options, radii },
    definitions: DEFINITIONS,
    connectivity: { per_step: connectivity.perStep, mean: connectivity.mean },
    area_flow: flow ? { per_step: flow.perStep, mean: flow.mean, areas: geometry.areas.map((a) => a.name) } : null,
    graph: {
      edges: adj.reduce((s, v) => s + v, 0),
      modularity: communities.modularity,
      communities: Array.from(communities.communities),
      clustering: clusteringCoefficient(sym, n),
      path_length: path.L,
      disconnected_fraction: path.disconnectedFraction,
      small_world: smallWorldness(sym, n, { randomGraphs: options.randomGraphs, seed: options.seed }),
      in_degree: Array.from(deg.in),
      out_degree: Array.from(deg.out),
    },
    topography: {
      correlation_vs_distance: corr,
      smoothness_index: smoothnessIndex(corr),
      selectivity,
      sparsity: { fraction_near_zero: Array.from(sparsity.fractionNearZero), hoyer: Array.from(sparsity.hoyer), mean_hoyer: sparsity.meanHoyer },
      cka_vs_distance: cka,
      weight_similarity_vs_distance: weightSimilarity,
    },
    field,
  };
}
