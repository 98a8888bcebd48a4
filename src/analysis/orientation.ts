/**
 * Orientation maps from responses to sine gratings, as V1 physiology and topographic models
 * (TDANN, Margalit et al. 2024; All-TNN, Lu et al. 2023) measure them.
 *
 * - Tuning curve r(theta): per unit, the mean response over phases at each orientation and
 *   spatial frequency; the curve is taken at the unit's preferred frequency (the one whose
 *   phase-averaged response is largest at any orientation).
 * - Preferred orientation (vector sum, doubled angles, Ringach et al. 2002):
 *   theta_pref = arg(sum_k r'_k e^{2 i theta_k}) / 2, in [0, 180) degrees, with
 *   r' = r - min_k r_k (responses shifted to be non-negative; model units may be negative).
 * - Circular variance CV = 1 - |sum_k r'_k e^{2 i theta_k}| / sum_k r'_k (0 = responds to one
 *   orientation, 1 = untuned; a flat curve counts as 1); orientation selectivity = 1 - CV.
 * - Pinwheels: the map z = e^{2 i theta_pref} (weighted by 1 - CV) is Gaussian-smoothed on
 *   the grid; around every 2 x 2 plaquette of cells the winding number of arg z is
 *   (sum of the four wrapped angle steps) / 2 pi, +1 or -1 at a pinwheel (an orientation
 *   singularity of index +-1/2) and 0 elsewhere.
 */
import { gaussianSmoothGrid } from "./selectivity.ts";
import type { NumericArray } from "./topography.ts";

/** Outcome of {@link orientationTuning}. */
export interface OrientationTuning {
  /** Tuning at the preferred frequency, row-major [orientations, n]. */
  curves: Float64Array;
  /** Preferred spatial-frequency index per unit. */
  preferredFrequency: Int32Array;
  /** Preferred orientation per unit, degrees in [0, 180); NaN for a flat curve. */
  preferred: Float64Array;
  /** Circular variance per unit, in [0, 1]. */
  circularVariance: Float64Array;
}

/**
 * Tuning, preferred orientation and circular variance of every unit.
 *
 * @param responses row-major [images, n]
 * @param orientationIndex [images]: index into `orientations` (degrees)
 * @param frequencyIndex [images]: index of the image's spatial frequency (0..frequencies-1)
 */
export function orientationTuning(
  responses: NumericArray,
  images: number,
  n: number,
  orientations: readonly number[],
  orientationIndex: ArrayLike<number>,
  frequencyIndex: ArrayLike<number>,
  frequencies: number,
): OrientationTuning {
  const K = orientations.length;
  const sums = new Float64Array(frequencies * K * n);
  const counts = new Float64Array(frequencies * K);
  for (let m = 0; m < images; m++) {
    const o = (frequencyIndex[m] * K + orientationIndex[m]) * n;
    counts[frequencyIndex[m] * K + orientationIndex[m]]++;
    for (let u = 0; u < n; u++) sums[o + u] += responses[m * n + u];
  }
  const curves = new Float64Array(K * n);
  const preferredFrequency = new Int32Array(n);
  const preferred = new Float64Array(n);
  const circularVariance = new Float64Array(n);
  for (let u = 0; u < n; u++) {
    let best = -Infinity;
    for (let f = 0; f < frequencies; f++) {
      for (let k = 0; k < K; k++) {
        const c = counts[f * K + k];
        const v = c > 0 ? sums[(f * K + k) * n + u] / c : -Infinity;
        if (v > best) {
          best = v;
          preferredFrequency[u] = f;
        }
      }
    }
    const f = preferredFrequency[u];
    for (let k = 0; k < K; k++) {
      const c = counts[f * K + k];
      curves[k * n + u] = c > 0 ? sums[(f * K + k) * n + u] / c : NaN;
    }
    const curve = Array.from({ length: K }, (_, k) => curves[k * n + u]);
    const v = vectorSum(curve, orientations);
    preferred[u] = v.preferred;
    circularVariance[u] = v.circularVariance;
  }
  return { curves, preferredFrequency, preferred, circularVariance };
}

/** Preferred orientation (degrees, [0, 180)) and circular variance of one tuning curve (see the module doc). */
export function vectorSum(curve: readonly number[], orientations: readonly number[]): { preferred: number; circularVariance: number } {
  let min = Infinity;
  for (const v of curve) if (Number.isFinite(v) && v < min) min = v;
  let re = 0;
  let im = 0;
  let total = 0;
  curve.forEach((v, k) => {
    if (!Number.isFinite(v)) return;
    const r = v - min;
    const a = (2 * orientations[k] * Math.PI) / 180;
    re += r * Math.cos(a);
    im += r * Math.sin(a);
    total += r;
  });
  if (!(total > 0)) return { preferred: NaN, circularVariance: 1 };
  const len = Math.hypot(re, im);
  let deg = ((Math.atan2(im, re) / 2) * 180) / Math.PI;
  if (deg < 0) deg += 180;
  if (deg >= 180) deg -= 180;
  return { preferred: len / total < 1e-12 ? NaN : deg, circularVariance: Math.min(1, Math.max(0, 1 - len / total)) };
}

/** Outcome of {@link pinwheels}. */
export interface Pinwheels {
  /** Plaquettes with winding +1 or -1. */
  count: number;
  positive: number;
  negative: number;
  /** Pinwheel centres in cell coordinates [row, col] (the plaquette's centre, e.g. [2.5, 3.5]). */
  locations: [number, number][];
  /** Pinwheels per cell of the map (count / (rows * cols)). */
  density: number;
}

function wrapAngle(a: number): number {
  return a - 2 * Math.PI * Math.round(a / (2 * Math.PI));
}

/**
 * Pinwheels of an orientation map `theta` (degrees, period 180; NaN = no preference) on a
 * rows x cols grid. `weights` (default 1) scale each cell's unit vector before smoothing
 * (e.g. orientation selectivity 1 - CV); `sigma` (cells, default 0 = no smoothing) is the
 * Gaussian's SD. A plaquette with a cell whose smoothed vector is zero or NaN is skipped.
 */
export function pinwheels(theta: NumericArray, rows: number, cols: number, opts: { sigma?: number; weights?: NumericArray } = {}): Pinwheels {
  if (theta.length !== rows * cols) throw new RangeError(`pinwheels: expected ${rows * cols} values, got ${theta.length}`);
  const sigma = opts.sigma ?? 0;
  const re = new Float64Array(rows * cols);
  const im = new Float64Array(rows * cols);
  for (let i = 0; i < rows * cols; i++) {
    const w = opts.weights ? opts.weights[i] : 1;
    const a = (2 * theta[i] * Math.PI) / 180;
    re[i] = Number.isFinite(a) && Number.isFinite(w) ? w * Math.cos(a) : NaN;
    im[i] = Number.isFinite(a) && Number.isFinite(w) ? w * Math.sin(a) : NaN;
  }
  const sre = gaussianSmoothGrid(re, rows, cols, sigma);
  const sim = gaussianSmoothGrid(im, rows, cols, sigma);
  const phase = new Float64Array(rows * cols);
  for (let i = 0; i < rows * cols; i++) phase[i] = Number.isFinite(sre[i]) && Math.hypot(sre[i], sim[i]) > 1e-12 ? Math.atan2(sim[i], sre[i]) : NaN;
  const locations: [number, number][] = [];
  let positive = 0;
  let negative = 0;
  for (let r = 0; r + 1 < rows; r++) {
    for (let c = 0; c + 1 < cols; c++) {
      // counter-clockwise in (x right, y up): (r+1, c) -> (r+1, c+1) -> (r, c+1) -> (r, c), rows growing downwards
      const loop = [(r + 1) * cols + c, (r + 1) * cols + c + 1, r * cols + c + 1, r * cols + c];
      if (loop.some((i) => Number.isNaN(phase[i]))) continue;
      let s = 0;
      for (let k = 0; k < 4; k++) s += wrapAngle(phase[loop[(k + 1) % 4]] - phase[loop[k]]);
      const w = Math.round(s / (2 * Math.PI));
      if (w === 0) continue;
      if (w > 0) positive++;
      else negative++;
      locations.push([r + 0.5, c + 0.5]);
    }
  }
  return { count: positive + negative, positive, negative, locations, density: (positive + negative) / (rows * cols) };
}
