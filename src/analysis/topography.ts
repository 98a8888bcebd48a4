/**
 * Topography metrics for a column sheet: pure functions over plain typed arrays.
 *
 * These are the measures used by topographic-modelling work (TDANN, All-TNN, ITN,
 * TopoNets) to ask whether a trained sheet has a MAP: do nearby columns respond alike
 * (correlation vs distance, smoothness, Moran's I), are columns category selective
 * (d'), how sparse are activations (Hoyer), and do the untied columns share a feature
 * space (linear CKA vs distance)?
 *
 * Conventions:
 * - `states` is a row-major Float32Array of shape [images, N, D]: the final D-dim state of
 *   each of the N columns for each held-out image.
 * - `distances` is the row-major [N, N] distance matrix of the geometry (positions are not
 *   needed).
 * - The scalar RESPONSE of column n to image m is, by default, the mean over D of its
 *   state, `r[m, n] = (1/D) sum_k states[m, n, k]` (see {@link columnResponses}, which
 *   also offers the L2 norm).
 * - All accumulation is in float64. Anything random (pair sampling, shuffles) takes a seed
 *   and uses the project's mulberry32 ({@link Rng}), so equal seeds give equal results.
 */
import { Rng, mixSeed } from "../engine/rng.ts";

/** Any numeric array the metrics read (typed arrays or plain arrays). */
export type NumericArray = ArrayLike<number>;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function checkLength(name: string, a: NumericArray, expected: number): void {
  if (a.length !== expected) {
    throw new RangeError(`${name}: expected length ${expected}, got ${a.length}`);
  }
}

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
}

/**
 * Equal-width distance bin edges shared by the distance-binned curves: `bins + 1` edges over the
 * range [lo, hi] of d_ij over pairs i<j (or over `range` when given). Use with {@link binOf}.
 */
export function distanceEdges(
  distances: NumericArray,
  n: number,
  bins: number,
  range: readonly [number, number] | undefined,
): number[] {
  checkPositiveInt("bins", bins);
  let lo: number;
  let hi: number;
  if (range) {
    [lo, hi] = range;
    if (!(hi >= lo)) throw new RangeError(`range: need hi >= lo, got [${lo}, ${hi}]`);
  } else {
    lo = Infinity;
    hi = -Infinity;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const v = distances[i * n + j];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (lo === Infinity) {
      lo = 0;
      hi = 0;
    }
  }
  const edges: number[] = [];
  for (let b = 0; b <= bins; b++) edges.push(b === bins ? hi : lo + ((hi - lo) * b) / bins);
  return edges;
}

/** Bin of distance v for equal-width edges (see {@link distanceEdges}); the last bin is closed on the right; -1 outside. */
export function binOf(v: number, edges: readonly number[]): number {
  const bins = edges.length - 1;
  const lo = edges[0];
  const hi = edges[bins];
  if (!(v >= lo && v <= hi)) return -1;
  if (hi === lo) return 0;
  const b = Math.floor(((v - lo) / (hi - lo)) * bins);
  return b >= bins ? bins - 1 : b;
}

/** Column-major copy of responses as centred, unit-norm rows [N, images]; zero-variance columns flagged. */
function unitCentredColumns(
  responses: NumericArray,
  images: number,
  n: number,
): { u: Float64Array; constant: Uint8Array } {
  const u = new Float64Array(n * images);
  const constant = new Uint8Array(n);
  for (let c = 0; c < n; c++) {
    let mean = 0;
    for (let m = 0; m < images; m++) mean += responses[m * n + c];
    mean /= images;
    let ss = 0;
    let raw = 0;
    for (let m = 0; m < images; m++) {
      const x = responses[m * n + c];
      const dx = x - mean;
      u[c * images + m] = dx;
      ss += dx * dx;
      raw += x * x;
    }
    if (!(ss > 1e-12 * raw) || ss === 0) {
      constant[c] = 1;
      continue;
    }
    const inv = 1 / Math.sqrt(ss);
    for (let m = 0; m < images; m++) u[c * images + m] *= inv;
  }
  return { u, constant };
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/**
 * Scalar response of every column to every image, shape [images, N] row-major.
 *
 * - `"mean"` (the default response used throughout this module):
 *   `r[m, n] = (1/D) sum_k states[m, n, k]`.
 * - `"norm"`: `r[m, n] = sqrt(sum_k states[m, n, k]^2)` (L2 norm of the state).
 *
 * @param states row-major [images, N, D]
 */
export function columnResponses(
  states: NumericArray,
  images: number,
  n: number,
  d: number,
  kind: "mean" | "norm" = "mean",
): Float32Array {
  checkPositiveInt("d", d);
  checkLength("states", states, images * n * d);
  const out = new Float32Array(images * n);
  for (let r = 0; r < images * n; r++) {
    let s = 0;
    const base = r * d;
    if (kind === "mean") {
      for (let k = 0; k < d; k++) s += states[base + k];
      out[r] = s / d;
    } else {
      for (let k = 0; k < d; k++) s += states[base + k] * states[base + k];
      out[r] = Math.sqrt(s);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Correlation vs distance and smoothness
// ---------------------------------------------------------------------------

/** Options of the distance-binned curves. */
export interface DistanceBinOptions {
  /**
   * Distance range [lo, hi] split into `bins` equal-width bins (pairs outside are ignored).
   * Default: min and max of d_ij over all pairs i<j. Fix it to compare curves across models.
   */
  range?: readonly [number, number];
}

/** Outcome of {@link correlationVsDistance}. */
export interface CorrelationCurve {
  /** bins+1 equal-width bin edges; bin b is [edges[b], edges[b+1]) (the last bin also includes its right edge). */
  edges: number[];
  /** Mean Pearson correlation of the pairs in each bin; NaN for an empty bin. */
  meanCorrelation: number[];
  /** Number of (non-skipped) pairs i<j in each bin. */
  counts: number[];
  /** Pairs in range skipped because at least one of the two columns has zero response variance. */
  skippedPairs: number;
  /** Number of columns with zero response variance across images. */
  constantColumns: number;
}

/**
 * Pearson correlation, across images, of the responses of every column pair i<j, binned by
 * their distance d_ij: `corr(i, j) = sum_m (r_mi - mean_i)(r_mj - mean_j) /
 * sqrt(sum_m (r_mi - mean_i)^2 sum_m (r_mj - mean_j)^2)`.
 *
 * Columns whose response is constant across images (sum of squared deviations
 * <= 1e-12 x sum of squares) have no correlation: their pairs are skipped and counted in
 * `skippedPairs`. A topographic map gives a curve that decreases with distance. Cost
 * O(N^2 images).
 *
 * @param responses row-major [images, N] (e.g. from {@link columnResponses})
 * @param distances row-major [N, N]
 * @param bins number of equal-width distance bins
 */
export function correlationVsDistance(
  responses: NumericArray,
  images: number,
  n: number,
  distances: NumericArray,
  bins: number,
  opts: DistanceBinOptions = {},
): CorrelationCurve {
  checkPositiveInt("images", images);
  checkPositiveInt("n", n);
  checkLength("responses", responses, images * n);
  checkLength("distances", distances, n * n);
  const edges = distanceEdges(distances, n, bins, opts.range);
  const { u, constant } = unitCentredColumns(responses, images, n);
  const sums = new Float64Array(bins);
  const counts = new Array<number>(bins).fill(0);
  let skippedPairs = 0;
  let constantColumns = 0;
  for (let i = 0; i < n; i++) constantColumns += constant[i];
  for (let i = 0; i < n; i++) {
    const oi = i * images;
    for (let j = i + 1; j < n; j++) {
      const b = binOf(distances[i * n + j], edges);
      if (b < 0) continue;
      if (constant[i] || constant[j]) {
        skippedPairs++;
        continue;
      }
      const oj = j * images;
      let dot = 0;
      for (let m = 0; m < images; m++) dot += u[oi + m] * u[oj + m];
      sums[b] += dot;
      counts[b]++;
    }
  }
  const meanCorrelation = counts.map((c, b) => (c > 0 ? sums[b] / c : NaN));
  return { edges, meanCorrelation, counts, skippedPairs, constantColumns };
}

/** A distance-binned similarity curve: {@link CorrelationCurve} or {@link CKACurve}. */
export type SimilarityCurve =
  | Pick<CorrelationCurve, "meanCorrelation" | "counts">
  | Pick<CKACurve, "meanCKA" | "counts">;

/**
 * Smoothness of a map from its similarity-vs-distance curve ({@link correlationVsDistance}
 * or {@link ckaVsDistance}). With `near` = mean similarity of the nearest non-empty bin
 * and `far` = mean similarity of the farthest non-empty bin:
 *
 * - `"difference"` (default): `near - far`. For correlations it lies in [-2, 2].
 * - `"normalized"`: `(near - far) / (|near| + |far|)`, in [-1, 1] (0 when both are 0): a
 *   scale-free contrast in the spirit of TDANN's normalised smoothness profile.
 *
 * Positive = nearby columns are more alike than distant ones (a smooth map); about 0 for a
 * map with no spatial structure. NaN when fewer than two bins are non-empty.
 */
export function smoothnessIndex(
  curve: SimilarityCurve,
  kind: "difference" | "normalized" = "difference",
): number {
  const values = "meanCorrelation" in curve ? curve.meanCorrelation : curve.meanCKA;
  let first = -1;
  let last = -1;
  for (let b = 0; b < curve.counts.length; b++) {
    if (curve.counts[b] > 0 && Number.isFinite(values[b])) {
      if (first < 0) first = b;
      last = b;
    }
  }
  if (first < 0 || first === last) return NaN;
  const near = values[first];
  const far = values[last];
  if (kind === "difference") return near - far;
  const denom = Math.abs(near) + Math.abs(far);
  return denom === 0 ? 0 : (near - far) / denom;
}

// ---------------------------------------------------------------------------
// Class selectivity
// ---------------------------------------------------------------------------

/** Outcome of {@link classSelectivity}. */
export interface ClassSelectivity {
  /** d' of every class for every column, row-major [numClasses, N]; NaN where undefined. */
  dprime: Float32Array;
  /** Class with the largest d' per column [N]; -1 where every d' is NaN. */
  preferred: Int32Array;
  /** That largest d' per column [N]; NaN where every d' is NaN. */
  maxDprime: Float32Array;
}

/** Options of {@link classSelectivity}. */
export interface ClassSelectivityOptions {
  /** Floor on the pooled variance (var_c + var_rest)/2 before the square root (default 1e-12). */
  varianceFloor?: number;
}

/**
 * Category selectivity (d') of every column for every class:
 * `d'[c, n] = (mu_c - mu_rest) / sqrt(max((var_c + var_rest) / 2, floor))`, where mu_c and
 * var_c are the mean and population variance (divide by the count) of column n's response
 * over the images of class c, and mu_rest, var_rest over all other images. The floor
 * (default 1e-12) guards zero variance, so a perfectly separating noiseless column gets a
 * very large finite d'. d' is NaN for a class with no images or no other images.
 * `preferred[n]` is argmax_c d'[c, n] (lowest class on ties, NaN ignored).
 *
 * @param responses row-major [images, N]
 * @param labels [images], integers in [0, numClasses)
 */
export function classSelectivity(
  responses: NumericArray,
  labels: Int32Array,
  images: number,
  n: number,
  numClasses: number,
  opts: ClassSelectivityOptions = {},
): ClassSelectivity {
  checkPositiveInt("numClasses", numClasses);
  checkLength("responses", responses, images * n);
  checkLength("labels", labels, images);
  const floor = opts.varianceFloor ?? 1e-12;
  const classCount = new Float64Array(numClasses);
  for (let m = 0; m < images; m++) {
    const y = labels[m];
    if (!(y >= 0 && y < numClasses)) throw new RangeError(`labels[${m}] = ${y} is outside [0, ${numClasses})`);
    classCount[y]++;
  }
  // Per class and column: sum and sum of squared deviations from the column's overall mean
  // (shifted sums keep the variances accurate for responses with a large offset).
  const overall = new Float64Array(n);
  for (let m = 0; m < images; m++) for (let c = 0; c < n; c++) overall[c] += responses[m * n + c];
  for (let c = 0; c < n; c++) overall[c] /= images;
  const s1 = new Float64Array(numClasses * n);
  const s2 = new Float64Array(numClasses * n);
  for (let m = 0; m < images; m++) {
    const o = labels[m] * n;
    for (let c = 0; c < n; c++) {
      const x = responses[m * n + c] - overall[c];
      s1[o + c] += x;
      s2[o + c] += x * x;
    }
  }
  const t1 = new Float64Array(n);
  const t2 = new Float64Array(n);
  for (let k = 0; k < numClasses; k++) {
    for (let c = 0; c < n; c++) {
      t1[c] += s1[k * n + c];
      t2[c] += s2[k * n + c];
    }
  }
  const dprime = new Float32Array(numClasses * n);
  for (let k = 0; k < numClasses; k++) {
    const nc = classCount[k];
    const nr = images - nc;
    for (let c = 0; c < n; c++) {
      if (nc === 0 || nr === 0) {
        dprime[k * n + c] = NaN;
        continue;
      }
      const a1 = s1[k * n + c];
      const a2 = s2[k * n + c];
      const muC = a1 / nc;
      const muR = (t1[c] - a1) / nr;
      const varC = Math.max(0, a2 / nc - muC * muC);
      const varR = Math.max(0, (t2[c] - a2) / nr - muR * muR);
      dprime[k * n + c] = (muC - muR) / Math.sqrt(Math.max((varC + varR) / 2, floor));
    }
  }
  const preferred = new Int32Array(n).fill(-1);
  const maxDprime = new Float32Array(n).fill(NaN);
  for (let c = 0; c < n; c++) {
    for (let k = 0; k < numClasses; k++) {
      const v = dprime[k * n + c];
      if (Number.isNaN(v)) continue;
      if (preferred[c] < 0 || v > maxDprime[c]) {
        preferred[c] = k;
        maxDprime[c] = v;
      }
    }
  }
  return { dprime, preferred, maxDprime };
}

// ---------------------------------------------------------------------------
// Moran's I
// ---------------------------------------------------------------------------

/** Spatial weights of {@link moransI}. */
export interface MoransIOptions {
  /**
   * `"inverse"`: w_ij = 1/d_ij for i != j (pairs with d_ij <= 0 get 0; with `radius`, also
   * only d_ij <= radius). `"neighbors"`: w_ij = 1 for i != j with d_ij <= radius, else 0.
   */
  weights: "inverse" | "neighbors";
  /** Neighbourhood radius (required for `"neighbors"`, an optional cutoff for `"inverse"`). */
  radius?: number;
}

/** Dense [N, N] weight matrix and its total W = sum_ij w_ij. */
function spatialWeights(distances: NumericArray, n: number, opts: MoransIOptions): { w: Float64Array; total: number } {
  checkLength("distances", distances, n * n);
  const radius = opts.radius;
  if (opts.weights === "neighbors" && (radius === undefined || !(radius >= 0))) {
    throw new RangeError(`moransI: weights "neighbors" needs a radius >= 0, got ${radius}`);
  }
  const w = new Float64Array(n * n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const dij = distances[i * n + j];
      if (radius !== undefined && !(dij <= radius)) continue;
      let v: number;
      if (opts.weights === "neighbors") v = 1;
      else v = dij > 0 ? 1 / dij : 0;
      w[i * n + j] = v;
      total += v;
    }
  }
  return { w, total };
}

/** z^T W z for z permuted by perm (identity when perm is undefined). */
function quadForm(w: Float64Array, z: Float64Array, n: number, perm?: Int32Array): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    const zi = perm ? z[perm[i]] : z[i];
    if (zi === 0) continue;
    let row = 0;
    const o = i * n;
    if (perm) for (let j = 0; j < n; j++) row += w[o + j] * z[perm[j]];
    else for (let j = 0; j < n; j++) row += w[o + j] * z[j];
    s += zi * row;
  }
  return s;
}

function deviations(values: NumericArray, n: number): { z: Float64Array; ss: number } {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i];
  mean /= n;
  const z = new Float64Array(n);
  let ss = 0;
  for (let i = 0; i < n; i++) {
    z[i] = values[i] - mean;
    ss += z[i] * z[i];
  }
  return { z, ss };
}

/**
 * Moran's I spatial autocorrelation of one value per column:
 * `I = (N / W) * sum_ij w_ij (x_i - xbar)(x_j - xbar) / sum_i (x_i - xbar)^2`, with
 * `W = sum_ij w_ij` and weights from {@link MoransIOptions} (w_ii = 0). About 1 for a
 * smooth map, about -1/(N-1) (its expectation under random placement) for no structure,
 * negative for a checkerboard. NaN if the values are constant or W = 0.
 *
 * @param values [N], e.g. a column's d' for one class, or its preferred-class score
 * @param distances row-major [N, N]
 */
export function moransI(values: NumericArray, distances: NumericArray, n: number, opts: MoransIOptions): number {
  checkPositiveInt("n", n);
  checkLength("values", values, n);
  const { w, total } = spatialWeights(distances, n, opts);
  const { z, ss } = deviations(values, n);
  if (total === 0 || ss === 0) return NaN;
  return ((n / total) * quadForm(w, z, n)) / ss;
}

/** Options of {@link moransINull}. */
export interface PermutationOptions {
  /** Number of random permutations (default 100). */
  shuffles?: number;
  /** Seed of the permutations (default 0). */
  seed?: number;
}

/** Outcome of {@link moransINull}. */
export interface MoransINull {
  /** Moran's I of the values in their real places. */
  observed: number;
  /** Mean of Moran's I over the permutations. */
  nullMean: number;
  /** Sample standard deviation (divide by shuffles - 1) of Moran's I over the permutations. */
  nullStd: number;
  /** (observed - nullMean) / nullStd (NaN if nullStd is 0). */
  z: number;
  /** One-sided permutation p-value for positive autocorrelation: (1 + #{null >= observed}) / (shuffles + 1). */
  p: number;
}

/**
 * Permutation test of {@link moransI}: the values are randomly reassigned to columns
 * (equivalently, positions are shuffled) `shuffles` times with a seeded Fisher-Yates
 * shuffle, and the observed I is compared with that null distribution. Same seed, same
 * result. Cost O(shuffles N^2).
 */
export function moransINull(
  values: NumericArray,
  distances: NumericArray,
  n: number,
  opts: MoransIOptions,
  perm: PermutationOptions = {},
): MoransINull {
  checkPositiveInt("n", n);
  checkLength("values", values, n);
  const shuffles = perm.shuffles ?? 100;
  checkPositiveInt("shuffles", shuffles);
  const { w, total } = spatialWeights(distances, n, opts);
  const { z, ss } = deviations(values, n);
  if (total === 0 || ss === 0) return { observed: NaN, nullMean: NaN, nullStd: NaN, z: NaN, p: NaN };
  const scale = n / total / ss;
  const observed = scale * quadForm(w, z, n);
  const rng = new Rng(mixSeed(perm.seed ?? 0, 0x4d6f72616e));
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const samples = new Float64Array(shuffles);
  let atLeast = 0;
  for (let s = 0; s < shuffles; s++) {
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    const v = scale * quadForm(w, z, n, order);
    samples[s] = v;
    if (v >= observed) atLeast++;
  }
  let mean = 0;
  for (const v of samples) mean += v;
  mean /= shuffles;
  let varSum = 0;
  for (const v of samples) varSum += (v - mean) * (v - mean);
  const nullStd = shuffles > 1 ? Math.sqrt(varSum / (shuffles - 1)) : NaN;
  return {
    observed,
    nullMean: mean,
    nullStd,
    z: nullStd > 0 ? (observed - mean) / nullStd : NaN,
    p: (1 + atLeast) / (shuffles + 1),
  };
}

// ---------------------------------------------------------------------------
// Sparsity
// ---------------------------------------------------------------------------

/**
 * Hoyer sparsity of a vector of k entries: `(sqrt(k) - L1/L2) / (sqrt(k) - 1)`, 1 for a
 * one-hot vector and 0 for a constant (non-zero) vector. NaN for k < 2 or an all-zero vector.
 */
export function hoyerSparsity(values: NumericArray): number {
  const k = values.length;
  let l1 = 0;
  let l2 = 0;
  for (let i = 0; i < k; i++) {
    l1 += Math.abs(values[i]);
    l2 += values[i] * values[i];
  }
  if (k < 2 || l2 === 0) return NaN;
  const sk = Math.sqrt(k);
  return (sk - l1 / Math.sqrt(l2)) / (sk - 1);
}

/** Options of {@link activationSparsity}. */
export interface SparsityOptions {
  /** An entry is "near zero" when |a| <= threshold x scale (default 1e-2). */
  threshold?: number;
  /**
   * The scale: `"column"` (default) = that column's max |a| over images x D; `"global"` =
   * max |a| over the whole tensor; `"absolute"` = 1 (threshold in activation units).
   */
  relativeTo?: "column" | "global" | "absolute";
}

/** Outcome of {@link activationSparsity}. */
export interface ActivationSparsity {
  /** Per column [N]: fraction of its images x D entries that are near zero. */
  fractionNearZero: Float32Array;
  /** Per column [N]: Hoyer sparsity of its images x D entries (NaN for an all-zero column). */
  hoyer: Float32Array;
  /** Mean of the finite `hoyer` entries (NaN if none). */
  meanHoyer: number;
}

/**
 * Activation sparsity of each column over all its k = images x D entries
 * `states[m, n, :]`: the fraction of entries with |a| <= threshold x scale (see
 * {@link SparsityOptions}; default: 1e-2 of the column's own max |a|), and the Hoyer
 * sparsity `(sqrt(k) - L1/L2) / (sqrt(k) - 1)` (1 = one active entry, 0 = all equal magnitude).
 *
 * @param states row-major [images, N, D]
 */
export function activationSparsity(
  states: NumericArray,
  images: number,
  n: number,
  d: number,
  opts: SparsityOptions = {},
): ActivationSparsity {
  checkPositiveInt("n", n);
  checkPositiveInt("d", d);
  checkLength("states", states, images * n * d);
  const threshold = opts.threshold ?? 1e-2;
  const relativeTo = opts.relativeTo ?? "column";
  const k = images * d;
  const l1 = new Float64Array(n);
  const l2 = new Float64Array(n);
  const maxAbs = new Float64Array(n);
  for (let m = 0; m < images; m++) {
    for (let c = 0; c < n; c++) {
      const base = (m * n + c) * d;
      let a1 = 0;
      let a2 = 0;
      let mx = maxAbs[c];
      for (let j = 0; j < d; j++) {
        const v = states[base + j];
        const av = Math.abs(v);
        a1 += av;
        a2 += v * v;
        if (av > mx) mx = av;
      }
      l1[c] += a1;
      l2[c] += a2;
      maxAbs[c] = mx;
    }
  }
  let globalMax = 0;
  for (let c = 0; c < n; c++) if (maxAbs[c] > globalMax) globalMax = maxAbs[c];
  const cut = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    cut[c] = threshold * (relativeTo === "column" ? maxAbs[c] : relativeTo === "global" ? globalMax : 1);
  }
  const near = new Float64Array(n);
  for (let m = 0; m < images; m++) {
    for (let c = 0; c < n; c++) {
      const base = (m * n + c) * d;
      const t = cut[c];
      let cnt = 0;
      for (let j = 0; j < d; j++) if (Math.abs(states[base + j]) <= t) cnt++;
      near[c] += cnt;
    }
  }
  const fractionNearZero = new Float32Array(n);
  const hoyer = new Float32Array(n);
  const sk = Math.sqrt(k);
  let hSum = 0;
  let hCount = 0;
  for (let c = 0; c < n; c++) {
    fractionNearZero[c] = k > 0 ? near[c] / k : NaN;
    const h = k < 2 || l2[c] === 0 ? NaN : (sk - l1[c] / Math.sqrt(l2[c])) / (sk - 1);
    hoyer[c] = h;
    if (Number.isFinite(h)) {
      hSum += h;
      hCount++;
    }
  }
  return { fractionNearZero, hoyer, meanHoyer: hCount > 0 ? hSum / hCount : NaN };
}

// ---------------------------------------------------------------------------
// Linear CKA
// ---------------------------------------------------------------------------

/** Squared Frobenius norm of A^T B for row-major A [m, p], B [m, q] (dense, float64). */
function crossFrobSq(a: Float64Array, b: Float64Array, m: number, p: number, q: number): number {
  const c = new Float64Array(p * q);
  let r = 0;
  // Four rows at a time: a quarter of the loads/stores of the accumulator (about 3x faster).
  for (; r + 4 <= m; r += 4) {
    const a0 = r * p;
    const a1 = a0 + p;
    const a2 = a1 + p;
    const a3 = a2 + p;
    const b0 = r * q;
    const b1 = b0 + q;
    const b2 = b1 + q;
    const b3 = b2 + q;
    for (let i = 0; i < p; i++) {
      const x0 = a[a0 + i];
      const x1 = a[a1 + i];
      const x2 = a[a2 + i];
      const x3 = a[a3 + i];
      const co = i * q;
      for (let j = 0; j < q; j++) c[co + j] += x0 * b[b0 + j] + x1 * b[b1 + j] + x2 * b[b2 + j] + x3 * b[b3 + j];
    }
  }
  for (; r < m; r++) {
    const ao = r * p;
    const bo = r * q;
    for (let i = 0; i < p; i++) {
      const x = a[ao + i];
      const co = i * q;
      for (let j = 0; j < q; j++) c[co + j] += x * b[bo + j];
    }
  }
  let s = 0;
  for (let i = 0; i < p * q; i++) s += c[i] * c[i];
  return s;
}

function centreColumns(x: NumericArray, m: number, p: number): Float64Array {
  const out = new Float64Array(m * p);
  const mean = new Float64Array(p);
  for (let r = 0; r < m; r++) for (let i = 0; i < p; i++) mean[i] += x[r * p + i];
  for (let i = 0; i < p; i++) mean[i] /= m;
  for (let r = 0; r < m; r++) for (let i = 0; i < p; i++) out[r * p + i] = x[r * p + i] - mean[i];
  return out;
}

/**
 * Linear centred kernel alignment (Kornblith et al. 2019) between two representations of
 * the same m examples: `CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`, with Xc, Yc
 * the column-centred X and Y. In [0, 1]; invariant to orthogonal transforms and isotropic
 * scaling of either side; NaN if either centred matrix is all zero. Cost O(m (p + q)^2).
 *
 * @param x row-major [m, p]
 * @param y row-major [m, q]
 */
export function linearCKA(x: NumericArray, y: NumericArray, m: number, p: number, q: number): number {
  checkPositiveInt("m", m);
  checkPositiveInt("p", p);
  checkPositiveInt("q", q);
  checkLength("x", x, m * p);
  checkLength("y", y, m * q);
  const xc = centreColumns(x, m, p);
  const yc = centreColumns(y, m, q);
  const xy = crossFrobSq(xc, yc, m, p, q);
  const xx = Math.sqrt(crossFrobSq(xc, xc, m, p, p));
  const yy = Math.sqrt(crossFrobSq(yc, yc, m, q, q));
  if (xx === 0 || yy === 0) return NaN;
  return xy / (xx * yy);
}

/** Options of {@link ckaVsDistance}. */
export interface CKAVsDistanceOptions extends DistanceBinOptions {
  /**
   * Most column pairs to evaluate (default 2000). When N(N-1)/2 exceeds it, that many
   * distinct pairs i<j are drawn uniformly without replacement with the seed.
   */
  maxPairs?: number;
  /** Seed of the pair sample (default 0). */
  seed?: number;
}

/** Outcome of {@link ckaVsDistance}. */
export interface CKACurve {
  /** bins+1 equal-width bin edges (over all pairs' distances unless `range` is given). */
  edges: number[];
  /** Mean linear CKA of the evaluated pairs in each bin; NaN for an empty bin. */
  meanCKA: number[];
  /** Number of evaluated pairs in each bin. */
  counts: number[];
  /** Sampled pairs skipped because a column's state matrix is constant over images (CKA undefined). */
  skippedPairs: number;
  /** Pairs sampled (in range or not). */
  sampledPairs: number;
}

/** The sampled column pairs i<j, as flat [i0, j0, i1, j1, ...]. */
function samplePairs(n: number, maxPairs: number, seed: number): Int32Array {
  const total = (n * (n - 1)) / 2;
  const all = (): Int32Array => {
    const out = new Int32Array(2 * total);
    let k = 0;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        out[k++] = i;
        out[k++] = j;
      }
    }
    return out;
  };
  if (total <= maxPairs) return all();
  const rng = new Rng(mixSeed(seed, 0x434b41));
  if (maxPairs * 2 > total) {
    // Dense case: partial Fisher-Yates over the full pair list.
    const pairs = all();
    for (let s = 0; s < maxPairs; s++) {
      const r = s + rng.int(total - s);
      const i0 = pairs[2 * s];
      const j0 = pairs[2 * s + 1];
      pairs[2 * s] = pairs[2 * r];
      pairs[2 * s + 1] = pairs[2 * r + 1];
      pairs[2 * r] = i0;
      pairs[2 * r + 1] = j0;
    }
    return pairs.slice(0, 2 * maxPairs);
  }
  const seen = new Set<number>();
  const out = new Int32Array(2 * maxPairs);
  let k = 0;
  while (k < maxPairs) {
    let i = rng.int(n);
    let j = rng.int(n);
    if (i === j) continue;
    if (i > j) [i, j] = [j, i];
    const key = i * n + j;
    if (seen.has(key)) continue;
    seen.add(key);
    out[2 * k] = i;
    out[2 * k + 1] = j;
    k++;
  }
  return out;
}

/**
 * Linear CKA ({@link linearCKA}) between the [images, D] state matrices of column pairs
 * i<j, binned by distance d_ij: "do nearby / distant untied columns encode the same
 * feature space (up to rotation and scale)?". All pairs are used when N(N-1)/2 <=
 * `maxPairs` (default 2000), otherwise a seeded uniform sample of distinct pairs. Pairs
 * where a column's states are constant over images (centred sum of squares <= 1e-12 x raw
 * sum of squares) are skipped and counted. Pairs are visited grouped by their first column,
 * whose centred matrix is gathered once. Cost O(pairs images D^2) time, O(images D) memory.
 *
 * @param states row-major [images, N, D]
 * @param distances row-major [N, N]
 */
export function ckaVsDistance(
  states: NumericArray,
  images: number,
  n: number,
  d: number,
  distances: NumericArray,
  bins: number,
  opts: CKAVsDistanceOptions = {},
): CKACurve {
  checkPositiveInt("images", images);
  checkPositiveInt("n", n);
  checkPositiveInt("d", d);
  checkLength("states", states, images * n * d);
  checkLength("distances", distances, n * n);
  const maxPairs = opts.maxPairs ?? 2000;
  checkPositiveInt("maxPairs", maxPairs);
  const edges = distanceEdges(distances, n, bins, opts.range);
  const pairs = samplePairs(n, maxPairs, opts.seed ?? 0);
  const numPairs = pairs.length / 2;

  // Visit pairs grouped by their first column so that column's centred [images, D]
  // matrix is gathered once; the second column is gathered into a scratch buffer.
  const order = Array.from({ length: numPairs }, (_, k) => k);
  order.sort((a, b) => pairs[2 * a] - pairs[2 * b] || pairs[2 * a + 1] - pairs[2 * b + 1]);
  const gather = (c: number, out: Float64Array): boolean => {
    const mean = new Float64Array(d);
    let raw = 0;
    for (let m = 0; m < images; m++) {
      const o = (m * n + c) * d;
      for (let k = 0; k < d; k++) {
        const v = states[o + k];
        out[m * d + k] = v;
        mean[k] += v;
        raw += v * v;
      }
    }
    for (let k = 0; k < d; k++) mean[k] /= images;
    let ss = 0;
    for (let m = 0; m < images; m++) {
      for (let k = 0; k < d; k++) {
        const v = out[m * d + k] - mean[k];
        out[m * d + k] = v;
        ss += v * v;
      }
    }
    // Constant over images (up to rounding): CKA is undefined.
    return ss === 0 || !(ss > 1e-12 * raw);
  };
  const selfNorm = new Float64Array(n).fill(-1);
  const constant = new Int8Array(n).fill(-1);
  const a = new Float64Array(images * d);
  const b = new Float64Array(images * d);
  let current = -1;

  const sums = new Float64Array(bins);
  const counts = new Array<number>(bins).fill(0);
  let skippedPairs = 0;
  for (const k of order) {
    const i = pairs[2 * k];
    const j = pairs[2 * k + 1];
    const bin = binOf(distances[i * n + j], edges);
    if (bin < 0) continue;
    if (constant[i] === 1 || constant[j] === 1) {
      skippedPairs++;
      continue;
    }
    if (current !== i) {
      current = i;
      constant[i] = gather(i, a) ? 1 : 0;
      if (constant[i] === 1) {
        skippedPairs++;
        continue;
      }
      if (selfNorm[i] < 0) selfNorm[i] = Math.sqrt(crossFrobSq(a, a, images, d, d));
    }
    const cj = gather(j, b);
    constant[j] = cj ? 1 : 0;
    if (cj) {
      skippedPairs++;
      continue;
    }
    if (selfNorm[j] < 0) selfNorm[j] = Math.sqrt(crossFrobSq(b, b, images, d, d));
    sums[bin] += crossFrobSq(a, b, images, d, d) / (selfNorm[i] * selfNorm[j]);
    counts[bin]++;
  }
  const meanCKA = counts.map((c, b) => (c > 0 ? sums[b] / c : NaN));
  return { edges, meanCKA, counts, skippedPairs, sampledPairs: numPairs };
}
