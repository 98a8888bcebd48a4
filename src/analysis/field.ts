/**
 * The topography metrics as published topographic models define them, per area of the sheet
 * (areas are the "layers" of TDANN / ITN): TDANN smoothness with its shuffled null, Welch-t
 * selectivity maps, Gaussian-smoothed maps and category patches, Moran's I with row-standardised
 * queen weights and its permutation null, a category localiser, energy maps, unit-level maps (a
 * column's D features as a sub-grid), orientation maps from gratings with circular variance and
 * pinwheels, and the effective dimensionality of the output area. Pure.
 */
import type { Area, Geometry } from "../geometry/index.ts";
import { columnDistance, geometryMetric } from "../geometry/metric.ts";
import type { SheetActivity } from "./collect.ts";
import { gridNeighbours, moransIPermutation, type MoransITest, nearestNeighbours, type Neighbours } from "./moran.ts";
import { orientationTuning, pinwheels, type Pinwheels } from "./orientation.ts";
import { columnEnergy, effectiveDimensionality, type ResponseMode, responsesByMode, unitGrid, unitMap, unitPosition } from "./population.ts";
import { argmaxRows, detectPatches, gaussianSmoothGrid, welchSelectivity } from "./selectivity.ts";
import { tdannSmoothness, type TdannSmoothness } from "./smoothness.ts";

/** Parameters of the field metrics (stored in analysis.json). */
export interface FieldOptions {
  /** The column response maps are drawn from. */
  response: ResponseMode;
  /** TDANN smoothness: distance bins, pairs, shuffles. */
  smoothnessBins: number;
  smoothnessPairs: number;
  smoothnessShuffles: number;
  /** Moran's I: contiguity, weight style, permutations. */
  moranContiguity: "queen" | "rook";
  moranStyle: "row" | "binary";
  moranPermutations: number;
  /** Patches: Gaussian SD (cells) of the t-map smoothing, t threshold, size limits (cells; max as a fraction of the map). */
  patchSigma: number;
  patchThreshold: number;
  patchMinSize: number;
  patchMaxFraction: number;
  /** Unit-level maps (each column's D features as a sub-grid). */
  unitLevel: boolean;
  /** Pinwheels: Gaussian SD (cells of the map) of the orientation-vector smoothing. */
  pinwheelSigma: number;
  /** Images used for the effective dimensionality (the first ones). */
  dimensionalityImages: number;
  seed: number;
}

export const DEFAULT_FIELD_OPTIONS: FieldOptions = {
  response: "mean",
  smoothnessBins: 20,
  smoothnessPairs: 200_000,
  smoothnessShuffles: 10,
  moranContiguity: "queen",
  moranStyle: "row",
  moranPermutations: 199,
  patchSigma: 1,
  patchThreshold: 4,
  patchMinSize: 2,
  patchMaxFraction: 0.5,
  unitLevel: true,
  pinwheelSigma: 1,
  dimensionalityImages: 1000,
  seed: 0,
};

/** Formula and source of every field metric (analysis.json `references`). */
export const FIELD_REFERENCES: Record<string, { formula: string; source: string }> = {
  tdann_smoothness: {
    formula:
      "curve[b] = mean over unit pairs with cortical distance in bin b (20 equal-width bins over [min, max] pair distance) of |difference of preference| (circular for orientation, period 180 deg; 0/1 mismatch for a preferred class; |t_i - t_j| for a t-map); smoothness = (max(curve) - curve[0]) / max(curve), curve[0] the nearest non-empty bin; shuffled = the same with preferences permuted over units (mean and SD over shuffles)",
    source: "Margalit et al. 2024, Neuron (TDANN), smoothness of preference maps; Lee et al. 2020 (NeurIPS)",
  },
  welch_t: {
    formula: "t = (mu_c - mu_rest) / sqrt(s_c^2 / n_c + s_rest^2 / n_rest), sample variances (n - 1), class c vs all other images",
    source: "category > rest localiser contrast as in TDANN (Margalit et al. 2024) and ITN (Blauch, Behrmann & Plaut 2022, PNAS)",
  },
  dprime: {
    formula: "d' = (mu_c - mu_rest) / sqrt((s_c^2 + s_rest^2) / 2): pooled SD = root of the unweighted mean of the two sample variances",
    source: "signal-detection d' (Green & Swets 1966)",
  },
  patches: {
    formula:
      "t-map Gaussian-smoothed (SD patch_sigma cells, normalised convolution) on the area's grid; cells with t > patch_threshold; 4-connected components with patch_min_size <= size <= patch_max_fraction * cells are patches",
    source: "category-selective patches as in TDANN (Margalit et al. 2024) and ITN (Blauch et al. 2022)",
  },
  morans_i: {
    formula:
      "I = (n / S0) sum_ij w_ij z_i z_j / sum_i z_i^2, z = x - mean(x); row-standardised queen (8-neighbour) contiguity on grid areas (wrap-around on a torus), 8 nearest neighbours without a grid; permutation null (values reassigned at random), one-sided pseudo p = (1 + #{I_perm >= I}) / (permutations + 1); E[I] = -1/(n-1)",
    source: "Moran 1950; Cliff & Ord 1981; as PySAL esda.Moran (transformation 'r') / R spdep moran.test (style 'W')",
  },
  localiser: {
    formula: "per area and class: fraction of columns (and of units) with Welch t > patch_threshold on unsmoothed maps, and the number of patches",
    source: "fMRI category localiser (Kanwisher, McDermott & Chun 1997) as applied to topographic models (TDANN, ITN)",
  },
  effective_dimensionality: {
    formula: "ED = (sum_i lambda_i)^2 / sum_i lambda_i^2, lambda the eigenvalues of the covariance of the output area's unit responses [images, P_out * D] (computed as trace(C)^2 / ||C||_F^2)",
    source: "participation ratio (Gao et al. 2017; Elmoznino & Bonner 2022)",
  },
  energy: { formula: "mean |activation| over images and the D features, per column; per area the mean over its columns", source: "activation energy as in TopoNets (Deb et al. 2025) / All-TNN (Lu et al. 2023) energy maps" },
  unit_level: {
    formula:
      "each column's D features laid out as an sr x sc sub-grid (sr = ceil(sqrt(D)), sc = ceil(D / sr)) centred on the column: unit (column (r, c), feature k) at (c + ((k mod sc) + 0.5)/sc - 0.5, r + (floor(k / sc) + 0.5)/sr - 0.5) in column units; unit-level maps use each feature's own response",
    source: "unit-level maps as in TDANN / All-TNN, where every unit has a cortical position",
  },
  orientation: {
    formula:
      "tuning r(theta) = mean over phases at the unit's preferred spatial frequency; r' = r - min r; preferred = arg(sum r' e^{2i theta}) / 2; circular variance CV = 1 - |sum r' e^{2i theta}| / sum r' (flat = 1); OSI = 1 - CV",
    source: "Ringach, Shapley & Hawken 2002 (J Neurosci); orientation maps as in TDANN and All-TNN",
  },
  pinwheels: {
    formula:
      "z = (1 - CV) e^{2i theta_pref} Gaussian-smoothed (SD pinwheel_sigma cells); winding number of arg z around every 2 x 2 plaquette (sum of wrapped steps / 2 pi); +-1 = a pinwheel; density = count / cells",
    source: "pinwheel singularities (Bonhoeffer & Grinvald 1991; Kaschube et al. 2010, Science)",
  },
};

/** Response, selectivity and smoothness of one map level (columns or units) of an area. */
export interface LevelSelectivity {
  /** Welch t per class [classes][units] (column level only: unit-level maps are not stored). */
  t: number[][] | null;
  /** d' per class [classes][units] (column level only). */
  dprime: number[][] | null;
  /** Class of largest t per unit (-1 = none). */
  preferred: number[];
  /** TDANN smoothness of the preferred class (0/1 mismatch). */
  smoothness_preferred: TdannSmoothness;
  /** TDANN smoothness of each class's t-map. */
  smoothness_t: number[];
  /** Fraction of units with t > threshold, per class. */
  selective_fraction: number[];
}

/** Orientation maps of one level. */
export interface LevelOrientation {
  preferred: number[];
  circular_variance: number[];
  mean_osi: number;
  smoothness: TdannSmoothness;
  pinwheels: Pinwheels | null;
}

/** Metrics of one area. */
export interface AreaField {
  name: string;
  columns: number;
  grid: [number, number] | null;
  energy: { per_column: number[]; mean: number };
  columns_level: {
    selectivity: (LevelSelectivity & { t: number[][]; patches: { count: number; sizes: number[] }[]; morans_i_max_t: MoransITest; smoothed_t: number[][] | null }) | null;
    orientation: LevelOrientation | null;
  };
  unit_level: {
    sub_grid: [number, number];
    fine_grid: [number, number];
    selectivity: LevelSelectivity | null;
    orientation: LevelOrientation | null;
  } | null;
}

/** All field metrics. */
export interface FieldResult {
  options: FieldOptions;
  references: typeof FIELD_REFERENCES;
  areas: AreaField[];
  effective_dimensionality: { area: string; value: number; images: number; units: number };
  localiser: { classes: number; threshold: number; areas: string[]; column_fraction: number[][]; unit_fraction: number[][] | null; patches: number[][] } | null;
}

/** Grating activity and its parameters (from src/data/gratings.ts). */
export interface GratingActivity {
  activity: SheetActivity;
  orientations: number[];
  orientationIndex: number[];
  frequencyIndex: number[];
  frequencies: number;
}

const rows = (a: Float64Array, k: number, n: number) => Array.from({ length: k }, (_, c) => Array.from(a.subarray(c * n, (c + 1) * n)));

/** Gather area columns' responses [images, N] -> [images, m]. */
function gather(responses: ArrayLike<number>, images: number, n: number, area: Area): Float64Array {
  const m = area.end - area.start;
  const out = new Float64Array(images * m);
  for (let i = 0; i < images; i++) for (let c = 0; c < m; c++) out[i * m + c] = responses[i * n + area.start + c];
  return out;
}

/** Gather area units' states [images, N, D] -> [images, m * D]. */
function gatherUnits(states: ArrayLike<number>, images: number, n: number, d: number, area: Area): Float64Array {
  const m = (area.end - area.start) * d;
  const out = new Float64Array(images * m);
  for (let i = 0; i < images; i++) for (let u = 0; u < m; u++) out[i * m + u] = states[(i * n + area.start) * d + u];
  return out;
}

function levelSelectivity(resp: Float64Array, labels: Int32Array, images: number, m: number, classes: number, dist: (i: number, j: number) => number, o: FieldOptions, keepMaps: boolean): LevelSelectivity & { t: number[][] } {
  const s = welchSelectivity(resp, labels, images, m, classes);
  const preferred = argmaxRows(s.t, classes, m);
  const sm = { bins: o.smoothnessBins, maxPairs: o.smoothnessPairs, seed: o.seed };
  const t = rows(s.t, classes, m);
  return {
    t,
    dprime: keepMaps ? rows(s.dprime, classes, m) : null,
    preferred: Array.from(preferred),
    smoothness_preferred: tdannSmoothness(Float64Array.from(preferred, (v) => (v < 0 ? NaN : v)), m, dist, { kind: "categorical" }, { ...sm, shuffles: o.smoothnessShuffles }),
    smoothness_t: t.map((tc) => tdannSmoothness(tc, m, dist, { kind: "linear" }, { ...sm, shuffles: 0 }).smoothness),
    selective_fraction: t.map((tc) => tc.filter((v) => v > o.patchThreshold).length / m),
  };
}

function levelOrientation(resp: Float64Array, m: number, g: GratingActivity, dist: (i: number, j: number) => number, grid: [number, number] | null, o: FieldOptions): LevelOrientation {
  const tun = orientationTuning(resp, g.activity.images, m, g.orientations, g.orientationIndex, g.frequencyIndex, g.frequencies);
  const osi = Array.from(tun.circularVariance, (v) => 1 - v);
  return {
    preferred: Array.from(tun.preferred),
    circular_variance: Array.from(tun.circularVariance),
    mean_osi: osi.reduce((a, v) => a + v, 0) / (m || 1),
    smoothness: tdannSmoothness(tun.preferred, m, dist, { kind: "circular", period: 180 }, { bins: o.smoothnessBins, maxPairs: o.smoothnessPairs, shuffles: o.smoothnessShuffles, seed: o.seed }),
    pinwheels: grid ? pinwheels(tun.preferred, grid[0], grid[1], { sigma: o.pinwheelSigma, weights: osi }) : null,
  };
}

/** Every field metric of a sheet's activity (and, when given, its grating activity). */
export function fieldTopography(
  activity: SheetActivity,
  geometry: Geometry,
  dim: number,
  numClasses: number | null,
  outputArea: Area,
  options: FieldOptions = DEFAULT_FIELD_OPTIONS,
  gratings?: GratingActivity,
): FieldResult {
  const n = geometry.numColumns;
  const o = options;
  const images = activity.images;
  const responses = responsesByMode(activity.states, images, n, dim, o.response);
  const gratingResponses = gratings ? responsesByMode(gratings.activity.states, gratings.activity.images, n, dim, o.response) : null;
  const energy = columnEnergy(activity.states, images, n, dim);
  const labelled = activity.labels && numClasses ? activity.labels : null;
  const areas: AreaField[] = geometry.areas.map((area) => {
    const m = area.end - area.start;
    const grid = area.grid && area.grid[0] * area.grid[1] === m ? area.grid : null;
    const metric = geometryMetric(geometry);
    const colDist = (i: number, j: number) => Math.fround(columnDistance(metric, area.start + i, area.start + j));
    const areaEnergy = Array.from(energy.subarray(area.start, area.end));
    const wrap = geometry.spec.kind === "torus";
    const nb: Neighbours = grid ? gridNeighbours(grid[0], grid[1], o.moranContiguity, wrap) : nearestNeighbours(Float64Array.from({ length: m * m }, (_, k) => colDist(Math.floor(k / m), k % m)), m, 8);
    let colSel: AreaField["columns_level"]["selectivity"] = null;
    if (labelled && numClasses) {
      const lv = levelSelectivity(gather(responses, images, n, area), labelled, images, m, numClasses, colDist, o, true);
      const smoothed = grid ? lv.t.map((tc) => Array.from(gaussianSmoothGrid(tc, grid[0], grid[1], o.patchSigma, wrap))) : null;
      const maxT = Float64Array.from({ length: m }, (_, c) => Math.max(...lv.t.map((tc) => (Number.isFinite(tc[c]) ? tc[c] : -Infinity))));
      colSel = {
        ...lv,
        smoothed_t: smoothed,
        patches: smoothed
          ? smoothed.map((sc) => {
              const p = detectPatches(sc, grid![0], grid![1], { threshold: o.patchThreshold, minSize: o.patchMinSize, maxSize: Math.floor(o.patchMaxFraction * m) });
              return { count: p.count, sizes: p.sizes };
            })
          : lv.t.map(() => ({ count: 0, sizes: [] })),
        morans_i_max_t: moransIPermutation(maxT.map((v) => (Number.isFinite(v) ? v : NaN)), nb, o.moranStyle, { permutations: o.moranPermutations, seed: o.seed }),
      };
    }
    const colOri = gratings && gratingResponses ? levelOrientation(gather(gratingResponses, gratings.activity.images, n, area), m, gratings, colDist, grid, o) : null;
    let unit: AreaField["unit_level"] = null;
    if (o.unitLevel && grid) {
      const ug = unitGrid(grid[0], grid[1], dim);
      const pos = new Float64Array(2 * m * dim);
      for (let c = 0; c < m; c++) for (let k = 0; k < dim; k++) pos.set(unitPosition(ug, c, k), 2 * (c * dim + k));
      const unitDist = (i: number, j: number) => Math.hypot(pos[2 * i] - pos[2 * j], pos[2 * i + 1] - pos[2 * j + 1]);
      const mu = m * dim;
      const sel = labelled && numClasses ? { ...levelSelectivity(gatherUnits(activity.states, images, n, dim, area), labelled, images, mu, numClasses, unitDist, o, false), t: null } : null;
      let ori: LevelOrientation | null = null;
      if (gratings) {
        ori = levelOrientation(gatherUnits(gratings.activity.states, gratings.activity.images, n, dim, area), mu, gratings, unitDist, null, o);
        // pinwheels on the fine grid (unit order -> fine-grid cells)
        const theta = unitMap(ug, ori.preferred);
        const osi = unitMap(ug, ori.circular_variance.map((v) => 1 - v));
        ori.pinwheels = pinwheels(theta, ug.fineRows, ug.fineCols, { sigma: o.pinwheelSigma * ug.sr, weights: osi });
      }
      unit = { sub_grid: [ug.sr, ug.sc], fine_grid: [ug.fineRows, ug.fineCols], selectivity: sel, orientation: ori };
    }
    return {
      name: area.name,
      columns: m,
      grid: grid ? [grid[0], grid[1]] : null,
      energy: { per_column: areaEnergy, mean: areaEnergy.reduce((a, v) => a + v, 0) / m },
      columns_level: { selectivity: colSel, orientation: colOri },
      unit_level: unit,
    };
  });
  const edImages = Math.min(o.dimensionalityImages, images);
  const units = (outputArea.end - outputArea.start) * dim;
  const ed = effectiveDimensionality(gatherUnits(activity.states.subarray(0, edImages * n * dim), edImages, n, dim, outputArea), edImages, units);
  const localiser =
    labelled && numClasses
      ? {
          classes: numClasses,
          threshold: o.patchThreshold,
          areas: areas.map((a) => a.name),
          column_fraction: areas.map((a) => a.columns_level.selectivity!.selective_fraction),
          unit_fraction: areas.every((a) => a.unit_level?.selectivity) ? areas.map((a) => a.unit_level!.selectivity!.selective_fraction) : null,
          patches: areas.map((a) => a.columns_level.selectivity!.patches.map((p) => p.count)),
        }
      : null;
  return {
    options: o,
    references: FIELD_REFERENCES,
    areas,
    effective_dimensionality: { area: outputArea.name, value: ed, images: edImages, units },
    localiser,
  };
}
