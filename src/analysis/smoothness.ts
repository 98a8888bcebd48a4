/**
 * TDANN smoothness (Margalit et al. 2024, "A unifying framework for functional organization in
 * early and higher ventral visual cortex", Neuron; also Lee et al. 2020): the mean absolute
 * difference of a preference between two units, binned by their cortical distance, and
 *
 *   smoothness = (max(curve) - curve[0]) / max(curve)
 *
 * where curve[0] is the nearest distance bin. 1 = neighbours have identical preferences and
 * distant units differ; 0 = no spatial structure (the curve is flat). The same is computed on
 * preferences shuffled over positions (the null). Pure functions over plain arrays.
 */
import { Rng, mixSeed } from "../engine/rng.ts";
import type { NumericArray } from "./topography.ts";

/** How two preferences differ. */
export type PreferenceKind =
  /** |a - b| (e.g. a selectivity t-value). */
  | { kind: "linear" }
  /** min(|a - b| mod P, P - |a - b| mod P): orientation (P = 180 degrees or pi), direction (P = 360). */
  | { kind: "circular"; period: number }
  /** 1 when a != b else 0: the preferred class / category (the curve is a mismatch rate). */
  | { kind: "categorical" };

/** Options of {@link tdannSmoothness}. */
export interface TdannSmoothnessOptions {
  /** Distance bins (default 20, as TDANN). Equal width over [min, max] of the pairs' distances. */
  bins?: number;
  /** Most unit pairs evaluated (default 200,000); above it, that many pairs i != j are drawn uniformly (with replacement) with the seed. */
  maxPairs?: number;
  /** Shuffles of the null (default 10; 0 skips it). */
  shuffles?: number;
  seed?: number;
}

/** A difference-vs-distance curve and its smoothness. */
export interface SmoothnessCurve {
  /** bins + 1 bin edges. */
  edges: number[];
  /** Mean |difference of preference| per bin (NaN when empty). */
  curve: number[];
  counts: number[];
  /** (max(curve) - curve[first non-empty bin]) / max(curve); NaN when fewer than two bins are filled or max(curve) = 0. */
  smoothness: number;
}

/** Outcome of {@link tdannSmoothness}. */
export interface TdannSmoothness extends SmoothnessCurve {
  /** Pairs evaluated (all pairs i<j, or the sample). */
  pairs: number;
  /** Preferences shuffled over positions: the mean curve, and the mean and SD of its smoothness; null when shuffles = 0. */
  shuffled: { curve: number[]; smoothness: number; smoothness_std: number; shuffles: number } | null;
}

/** Difference of two preferences for a {@link PreferenceKind}. NaN when either is NaN. */
export function preferenceDifference(a: number, b: number, kind: PreferenceKind): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return NaN;
  if (kind.kind === "linear") return Math.abs(a - b);
  if (kind.kind === "categorical") return a === b ? 0 : 1;
  const p = kind.period;
  const d = Math.abs(a - b) % p;
  return Math.min(d, p - d);
}

/** smoothness = (max(curve) - curve[first non-empty bin]) / max(curve) of a binned curve. */
export function smoothnessOfCurve(curve: readonly number[]): number {
  let first = NaN;
  let max = -Infinity;
  let filled = 0;
  for (const v of curve) {
    if (!Number.isFinite(v)) continue;
    if (filled === 0) first = v;
    filled++;
    if (v > max) max = v;
  }
  if (filled < 2 || !(max > 0)) return NaN;
  return (max - first) / max;
}

/** The pairs (i, j), i != j: all i<j, or `maxPairs` uniform draws. */
function pairList(n: number, maxPairs: number, seed: number): Int32Array {
  const total = (n * (n - 1)) / 2;
  if (total <= maxPairs) {
    const out = new Int32Array(2 * total);
    let k = 0;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        out[k++] = i;
        out[k++] = j;
      }
    }
    return out;
  }
  const rng = new Rng(mixSeed(seed, 0x7464616e));
  const out = new Int32Array(2 * maxPairs);
  for (let k = 0; k < maxPairs; k++) {
    const i = rng.int(n);
    let j = rng.int(n - 1);
    if (j >= i) j++;
    out[2 * k] = i;
    out[2 * k + 1] = j;
  }
  return out;
}

function binnedCurve(prefs: NumericArray, perm: Int32Array | null, pairs: Int32Array, bin: Int32Array, bins: number, kind: PreferenceKind) {
  const sums = new Float64Array(bins);
  const counts = new Array<number>(bins).fill(0);
  for (let k = 0; k < bin.length; k++) {
    const b = bin[k];
    if (b < 0) continue;
    const i = pairs[2 * k];
    const j = pairs[2 * k + 1];
    const d = preferenceDifference(prefs[perm ? perm[i] : i], prefs[perm ? perm[j] : j], kind);
    if (Number.isNaN(d)) continue;
    sums[b] += d;
    counts[b]++;
  }
  return { curve: counts.map((c, b) => (c > 0 ? sums[b] / c : NaN)), counts };
}

/**
 * TDANN smoothness of a preference map: `prefs[i]` is unit i's preference (NaN = no
 * preference, its pairs skipped), `distance(i, j)` the cortical distance between units i and j.
 * The null shuffles the preferences over the units (Fisher-Yates, seeded) and keeps pairs,
 * distances and bins. Same seed, same result.
 */
export function tdannSmoothness(
  prefs: NumericArray,
  n: number,
  distance: (i: number, j: number) => number,
  kind: PreferenceKind,
  opts: TdannSmoothnessOptions = {},
): TdannSmoothness {
  if (prefs.length !== n) throw new RangeError(`tdannSmoothness: expected ${n} preferences, got ${prefs.length}`);
  const bins = opts.bins ?? 20;
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`bins must be a positive integer, got ${bins}`);
  const seed = opts.seed ?? 0;
  const pairs = n >= 2 ? pairList(n, opts.maxPairs ?? 200_000, seed) : new Int32Array(0);
  const numPairs = pairs.length / 2;
  const dist = new Float64Array(numPairs);
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < numPairs; k++) {
    const d = distance(pairs[2 * k], pairs[2 * k + 1]);
    dist[k] = d;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  if (lo === Infinity) lo = hi = 0;
  const edges = Array.from({ length: bins + 1 }, (_, b) => (b === bins ? hi : lo + ((hi - lo) * b) / bins));
  const bin = new Int32Array(numPairs);
  for (let k = 0; k < numPairs; k++) {
    const b = hi === lo ? 0 : Math.floor(((dist[k] - lo) / (hi - lo)) * bins);
    bin[k] = b >= bins ? bins - 1 : b;
  }
  const observed = binnedCurve(prefs, null, pairs, bin, bins, kind);
  const result: TdannSmoothness = { edges, curve: observed.curve, counts: observed.counts, smoothness: smoothnessOfCurve(observed.curve), pairs: numPairs, shuffled: null };
  const shuffles = opts.shuffles ?? 10;
  if (shuffles > 0) {
    const rng = new Rng(mixSeed(seed, 0x73687566));
    const perm = Int32Array.from({ length: n }, (_, i) => i);
    const meanCurve = new Float64Array(bins);
    const curveCount = new Float64Array(bins);
    const values: number[] = [];
    for (let s = 0; s < shuffles; s++) {
      for (let i = n - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
      }
      const c = binnedCurve(prefs, perm, pairs, bin, bins, kind);
      c.curve.forEach((v, b) => {
        if (Number.isFinite(v)) {
          meanCurve[b] += v;
          curveCount[b]++;
        }
      });
      values.push(smoothnessOfCurve(c.curve));
    }
    const finite = values.filter((v) => Number.isFinite(v));
    const mean = finite.length ? finite.reduce((a, v) => a + v, 0) / finite.length : NaN;
    const std = finite.length > 1 ? Math.sqrt(finite.reduce((a, v) => a + (v - mean) ** 2, 0) / (finite.length - 1)) : NaN;
    result.shuffled = { curve: Array.from(meanCurve, (v, b) => (curveCount[b] > 0 ? v / curveCount[b] : NaN)), smoothness: mean, smoothness_std: std, shuffles };
  }
  return result;
}
