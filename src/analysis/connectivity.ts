/**
 * Connectivity metrics of one attention map, as pure functions over plain arrays.
 *
 * Conventions shared by every function here:
 * - An attention map `A` is a row-stochastic N x N matrix, row-major (`A[i * N + j]`):
 *   row i is where TARGET column i reads from, `A_ij` the mass it takes from SOURCE column j,
 *   and each row sums to 1.
 * - Distances `D` are the N x N pairwise column distances, row-major (e.g. `Geometry.distances`).
 * - "Mean over rows" is the plain average over the N target columns.
 * - N is inferred from the array length (which must be a perfect square); inputs may be any
 *   `ArrayLike<number>` (Float32Array, Float64Array, number[]). Sums run in float64.
 *
 * Nothing here needs jax-js: pass `await attn.data()` of one step (see {@link perStepAndMean}
 * for a `[depth, N, N]` stack).
 */
import type { Area } from "../geometry/types.ts";

/** A row-major square matrix of numbers (attention map or distances). */
export type SquareMatrix = ArrayLike<number>;

/** Side N of a row-major N x N matrix given as a flat array; throws unless the length is a perfect square. */
export function matrixSide(m: SquareMatrix, what = "matrix"): number {
  const n = Math.round(Math.sqrt(m.length));
  if (n * n !== m.length || n === 0) throw new Error(`${what}: length ${m.length} is not a non-empty N*N square`);
  return n;
}

function sideOf(a: SquareMatrix, d?: SquareMatrix): number {
  const n = matrixSide(a, "attention");
  if (d !== undefined && d.length !== a.length) {
    throw new Error(`distances: length ${d.length} does not match attention length ${a.length}`);
  }
  return n;
}

/** Options of {@link wiringCosts}. */
export interface WiringCostOptions {
  /** Overall scale lambda of both costs (default 1). */
  lambda?: number;
  /** Exponent p of the L1 form's weights d^p (default 1). */
  p?: number;
  /** Width sigma of the cross-entropy form's Gaussian (default 2). */
  sigma?: number;
}

/** The two wiring costs of one attention map (see {@link wiringCosts}). */
export interface WiringCosts {
  /** lambda * mean_i sum_j A_ij d_ij^p / mean(d^p). */
  l1: number;
  /** lambda * mean_i sum_j A_ij (-log_softmax_j(-d_ij^2 / (2 sigma^2))). */
  cross_entropy: number;
}

/**
 * Both wiring costs of one attention map, the same definitions as the training objective
 * (`src/objectives/wiring-cost.ts`), evaluated in float64:
 *
 *   cost = lambda * mean over rows i of sum_j A_ij W_ij, with
 *   - L1:            W_ij = d_ij^p / mean(d^p)   (mean over all N^2 pairs, diagonal included);
 *                    if every distance is 0, W = 0 (nothing costs) instead of 0/0;
 *   - cross-entropy: W_ij = -log_softmax_j(-d_ij^2 / (2 sigma^2))
 *                         = d_ij^2 / (2 sigma^2) + log sum_k exp(-d_ik^2 / (2 sigma^2)),
 *                    the cross-entropy of row i against a Gaussian centred on column i.
 *
 * Uniform attention (A_ij = 1/N) has L1 cost exactly lambda; pure self-attention has L1 cost
 * lambda * mean_i d_ii^p / mean(d^p) (0 without a self offset).
 */
export function wiringCosts(attn: SquareMatrix, distances: SquareMatrix, options: WiringCostOptions = {}): WiringCosts {
  const n = sideOf(attn, distances);
  const lambda = options.lambda ?? 1;
  const p = options.p ?? 1;
  const sigma = options.sigma ?? 2;
  const nn = n * n;

  // L1: sum_ij A_ij d_ij^p / (N * mean(d^p))
  let sumPow = 0;
  let weighted = 0;
  for (let k = 0; k < nn; k++) {
    const dp = p === 1 ? distances[k] : distances[k] ** p;
    sumPow += dp;
    weighted += attn[k] * dp;
  }
  const meanPow = sumPow / nn;
  const l1 = meanPow === 0 ? 0 : (lambda * weighted) / meanPow / n;

  // cross-entropy, with a stable log-sum-exp per row
  const scale = 1 / (2 * sigma * sigma);
  let ce = 0;
  for (let i = 0; i < n; i++) {
    const row = i * n;
    let maxLogit = -Infinity;
    for (let j = 0; j < n; j++) maxLogit = Math.max(maxLogit, -distances[row + j] * distances[row + j] * scale);
    let sumExp = 0;
    for (let j = 0; j < n; j++) sumExp += Math.exp(-distances[row + j] * distances[row + j] * scale - maxLogit);
    const logZ = maxLogit + Math.log(sumExp);
    for (let j = 0; j < n; j++) {
      const w = distances[row + j] * distances[row + j] * scale + logZ;
      ce += attn[row + j] * w;
    }
  }
  return { l1, cross_entropy: (lambda * ce) / n };
}

/**
 * Mean attention distance: mean over rows i of sum_j A_ij d_ij, the expected distance a
 * column reads over (in the geometry's distance units).
 */
export function meanAttentionDistance(attn: SquareMatrix, distances: SquareMatrix): number {
  const n = sideOf(attn, distances);
  let s = 0;
  for (let k = 0; k < n * n; k++) s += attn[k] * distances[k];
  return s / n;
}

/** Attention mass per distance bin (see {@link distanceHistogram}). */
export interface DistanceHistogram {
  /** Bin edges, increasing, length bins + 1. */
  edges: number[];
  /** Mean over rows of the fraction of the row's attention mass whose distance falls in each bin. */
  mass: number[];
}

function rowSum(attn: SquareMatrix, row: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s += attn[row + j];
  return s;
}

/** Index b with edges[b] <= x < edges[b + 1] (the last bin also takes x == last edge), or -1 outside. */
function binIndex(edges: number[], x: number): number {
  const last = edges.length - 1;
  if (!(x >= edges[0]) || x > edges[last]) return -1;
  if (x === edges[last]) return last - 1;
  let lo = 0;
  let hi = last; // invariant: edges[lo] <= x < edges[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (edges[mid] <= x) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Distance histogram of attention: how attention mass is spread over distance.
 *
 * `mass[b]` = mean over rows i of (sum of A_ij over j with d_ij in bin b) / (sum_j A_ij), i.e. the
 * fraction of each row's mass in the bin, averaged over rows (rows with zero total mass
 * contribute 0). Bins follow numpy.histogram: [e_b, e_{b+1}) half-open, the last bin closed.
 *
 * - `bins` a number B: B equal-width bins from the smallest to the largest distance in `D`
 *   (diagonal included; if all distances are equal, the range is widened by 0.5 each side).
 *   The bins cover every pair, so `mass` sums to 1.
 * - `bins` an array: the edges themselves (at least 2, strictly increasing). Mass at distances
 *   outside [edges[0], edges[last]] is dropped, so `mass` sums to 1 only if the edges cover
 *   the distance range.
 */
export function distanceHistogram(attn: SquareMatrix, distances: SquareMatrix, bins: number | number[]): DistanceHistogram {
  const n = sideOf(attn, distances);
  let edges: number[];
  if (typeof bins === "number") {
    if (!Number.isInteger(bins) || bins < 1) throw new Error(`distanceHistogram: bins must be a positive integer, got ${bins}`);
    let lo = Infinity;
    let hi = -Infinity;
    for (let k = 0; k < n * n; k++) {
      lo = Math.min(lo, distances[k]);
      hi = Math.max(hi, distances[k]);
    }
    if (lo === hi) {
      lo -= 0.5;
      hi += 0.5;
    }
    edges = Array.from({ length: bins + 1 }, (_, b) => (b === bins ? hi : lo + ((hi - lo) * b) / bins));
  } else {
    if (bins.length < 2) throw new Error("distanceHistogram: at least 2 bin edges are needed");
    for (let b = 1; b < bins.length; b++) {
      if (!(bins[b] > bins[b - 1])) throw new Error("distanceHistogram: bin edges must be strictly increasing");
    }
    edges = [...bins];
  }
  const mass = new Array<number>(edges.length - 1).fill(0);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    const total = rowSum(attn, row, n);
    if (total <= 0) continue;
    for (let j = 0; j < n; j++) {
      const b = binIndex(edges, distances[row + j]);
      if (b >= 0) mass[b] += attn[row + j] / total;
    }
  }
  return { edges, mass: mass.map((m) => m / n) };
}

/**
 * Locality curve: for each radius r, the mean over rows i of the fraction of row i's attention
 * mass at distance d_ij <= r (fraction = mass / sum_j A_ij; rows with zero mass contribute 0).
 *
 * Non-decreasing in r, 0 for r below the smallest distance, and exactly 1 for
 * r >= the largest distance. Comparisons are against the stored distances (float32 if `D` is a
 * Float32Array), so choose radii a little above exact distances such as sqrt(2).
 */
export function localityCurve(attn: SquareMatrix, distances: SquareMatrix, radii: number[]): number[] {
  const n = sideOf(attn, distances);
  const out = new Array<number>(radii.length).fill(0);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    const total = rowSum(attn, row, n);
    if (total <= 0) continue;
    for (let r = 0; r < radii.length; r++) {
      let within = 0;
      for (let j = 0; j < n; j++) if (distances[row + j] <= radii[r]) within += attn[row + j];
      out[r] += within === total ? 1 : within / total;
    }
  }
  return out.map((v) => v / n);
}

/** Self-attention mass: the mean of the diagonal, mean_i A_ii (1/N for uniform attention, 1 for identity). */
export function selfAttentionMass(attn: SquareMatrix): number {
  const n = sideOf(attn);
  let s = 0;
  for (let i = 0; i < n; i++) s += attn[i * n + i];
  return s / n;
}

/** Row entropy of an attention map (see {@link attentionEntropy}). */
export interface AttentionEntropy {
  /** Mean over rows of -sum_j A_ij log A_ij, in nats (0 log 0 = 0). */
  entropy: number;
  /** `entropy / log N`, in [0, 1] for row-stochastic maps (0 when N = 1). */
  normalized: number;
}

/**
 * Attention entropy: mean over rows i of H_i = -sum_j A_ij log A_ij (nats, 0 log 0 = 0),
 * and the same divided by log N, its maximum (uniform attention has entropy log N,
 * normalised 1; one-hot rows have 0).
 */
export function attentionEntropy(attn: SquareMatrix): AttentionEntropy {
  const n = sideOf(attn);
  let h = 0;
  for (let k = 0; k < n * n; k++) {
    const a = attn[k];
    if (a > 0) h -= a * Math.log(a);
  }
  const entropy = h / n;
  return { entropy, normalized: n > 1 ? entropy / Math.log(n) : 0 };
}

/** Attention flow between areas (see {@link areaFlow}). */
export interface AreaFlow {
  /**
   * `matrix[t][s]` = mean over the target rows i in area t of sum_{j in area s} A_ij:
   * how much of its attention area t takes from area s (each row sums to ~1 when the
   * areas cover all columns).
   */
  matrix: number[][];
  /** Fraction of all attention mass where the source area is BELOW the target area (s < t). */
  feedforward: number;
  /** Fraction of all attention mass where the source area is ABOVE the target area (s > t). */
  feedback: number;
  /** Fraction of all attention mass within an area (s == t). */
  lateral: number;
}

/**
 * Attention flow between areas.
 *
 * Areas are given in processing order, input -> output (index order, as in `Geometry.areas`).
 * A target column i in area t reading from a source column j in area s (mass A_ij) is:
 *   - FEEDFORWARD if s < t: information flows up, from an area nearer the input toward the output;
 *   - FEEDBACK    if s > t: information flows down, from an area nearer the output;
 *   - LATERAL     if s == t: within an area.
 *
 * `matrix[t][s]` is the mean over target rows in t of their mass into s. The three totals are
 * fractions of ALL attention mass between columns that lie in some area (so they sum to 1),
 * i.e. row-weighted: an area with more columns weighs more. Areas must be non-empty, lie in
 * [0, N) and be sorted and non-overlapping; columns outside every area are ignored.
 */
export function areaFlow(attn: SquareMatrix, areas: Area[]): AreaFlow {
  const n = sideOf(attn);
  if (areas.length === 0) throw new Error("areaFlow: no areas");
  const areaOf = new Int32Array(n).fill(-1);
  let prevEnd = 0;
  areas.forEach((a, idx) => {
    if (!(Number.isInteger(a.start) && Number.isInteger(a.end) && a.start >= prevEnd && a.end > a.start && a.end <= n)) {
      throw new Error(`areaFlow: area ${idx} (${a.name}) [${a.start}, ${a.end}) is empty, out of [0, ${n}), unsorted or overlapping`);
    }
    for (let c = a.start; c < a.end; c++) areaOf[c] = idx;
    prevEnd = a.end;
  });
  const k = areas.length;
  const sums = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < n; i++) {
    const t = areaOf[i];
    if (t < 0) continue;
    const row = i * n;
    for (let j = 0; j < n; j++) {
      const s = areaOf[j];
      if (s >= 0) sums[t][s] += attn[row + j];
    }
  }
  let ff = 0;
  let fb = 0;
  let lat = 0;
  for (let t = 0; t < k; t++) {
    for (let s = 0; s < k; s++) {
      if (s < t) ff += sums[t][s];
      else if (s > t) fb += sums[t][s];
      else lat += sums[t][s];
    }
  }
  const total = ff + fb + lat;
  const matrix = sums.map((row, t) => row.map((v) => v / (areas[t].end - areas[t].start)));
  if (total <= 0) return { matrix, feedforward: 0, feedback: 0, lateral: 0 };
  return { matrix, feedforward: ff / total, feedback: fb / total, lateral: lat / total };
}

/** Mean over steps of a `[depth, N, N]` stack of attention maps, as one `[N, N]` map (float64 sums, stored float32). */
export function stepMeanMap(maps: Float32Array, n: number): Float32Array {
  const nn = n * n;
  const depth = stackDepth(maps, n);
  const acc = new Float64Array(nn);
  for (let d = 0; d < depth; d++) {
    const off = d * nn;
    for (let k = 0; k < nn; k++) acc[k] += maps[off + k];
  }
  const out = new Float32Array(nn);
  for (let k = 0; k < nn; k++) out[k] = acc[k] / depth;
  return out;
}

function stackDepth(maps: Float32Array, n: number): number {
  const nn = n * n;
  if (!Number.isInteger(n) || n < 1 || maps.length === 0 || maps.length % nn !== 0) {
    throw new Error(`attention stack: length ${maps.length} is not a positive multiple of N*N = ${nn}`);
  }
  return maps.length / nn;
}

/** A metric evaluated on every step and on the step-mean map (see {@link perStepAndMean}). */
export interface PerStepAndMean<T> {
  /** `perStep[d]` = fn(step d's map). */
  perStep: T[];
  /** fn(mean over steps of the maps) — for non-linear metrics this differs from the mean of `perStep`. */
  mean: T;
}

/**
 * Evaluate a one-map metric on each step of a `[depth, N, N]` stack of attention maps
 * (row-major, as returned by a sheet's attention output for one sample) and on the
 * step-mean map ({@link stepMeanMap}). `fn` gets a `[N*N]` view per step (do not mutate it)
 * and the step index (`-1` for the mean map).
 *
 * Example: `perStepAndMean(maps, n, (a) => meanAttentionDistance(a, distanceMatrix(geometry)))`.
 */
export function perStepAndMean<T>(maps: Float32Array, n: number, fn: (attn: Float32Array, step: number) => T): PerStepAndMean<T> {
  const depth = stackDepth(maps, n);
  const nn = n * n;
  const perStep: T[] = [];
  for (let d = 0; d < depth; d++) perStep.push(fn(maps.subarray(d * nn, (d + 1) * nn), d));
  return { perStep, mean: fn(stepMeanMap(maps, n), -1) };
}
