/**
 * Population measures of column states: the response a map is drawn from (by option),
 * unit-level layouts (a column's D features as a sub-grid), effective dimensionality and
 * energy. Pure functions over plain arrays; `states` is row-major [images, N, D].
 */
import type { NumericArray } from "./topography.ts";

/**
 * Which scalar a column's response is: the mean of its D features, their L2 norm, one feature
 * (an integer index 0..D-1), or the projection on the column's first principal component
 * ("pc1": the centred [images, D] states projected on the top eigenvector of their D x D
 * covariance, signed so the eigenvector's components sum to >= 0).
 */
export type ResponseMode = "mean" | "norm" | "pc1" | number;

/** Parse a response mode as written on the command line: mean, norm, pc1 or feature:K. */
export function parseResponseMode(text: string): ResponseMode {
  if (text === "mean" || text === "norm" || text === "pc1") return text;
  const m = /^feature:(\d+)$/.exec(text);
  if (m) return Number(m[1]);
  throw new Error(`response must be mean, norm, pc1 or feature:K (K a feature index), got ${text}`);
}

/** Top eigenvector of a symmetric p x p matrix (power iteration from a fixed start; 200 iterations at most). */
function topEigenvector(c: Float64Array, p: number): Float64Array {
  let v = new Float64Array(p).fill(1 / Math.sqrt(p));
  // a fixed, generic start avoids an exactly orthogonal start for the all-ones direction
  for (let i = 0; i < p; i++) v[i] += 1e-3 * Math.sin(i + 1);
  for (let it = 0; it < 200; it++) {
    const w = new Float64Array(p);
    for (let i = 0; i < p; i++) {
      let s = 0;
      for (let j = 0; j < p; j++) s += c[i * p + j] * v[j];
      w[i] = s;
    }
    let norm = 0;
    for (const x of w) norm += x * x;
    norm = Math.sqrt(norm);
    if (norm === 0) return v;
    let diff = 0;
    for (let i = 0; i < p; i++) {
      w[i] /= norm;
      diff += Math.abs(w[i] - v[i]);
    }
    v = w;
    if (diff < 1e-10) break;
  }
  let sum = 0;
  for (const x of v) sum += x;
  if (sum < 0) for (let i = 0; i < p; i++) v[i] = -v[i];
  return v;
}

/** One scalar response per column and image, row-major [images, N], by `mode` (see {@link ResponseMode}). */
export function responsesByMode(states: NumericArray, images: number, n: number, d: number, mode: ResponseMode): Float32Array {
  if (states.length !== images * n * d) throw new RangeError(`responses: expected ${images * n * d} states, got ${states.length}`);
  const out = new Float32Array(images * n);
  if (typeof mode === "number") {
    if (!(Number.isInteger(mode) && mode >= 0 && mode < d)) throw new RangeError(`response feature ${mode} is outside 0..${d - 1}`);
    for (let r = 0; r < images * n; r++) out[r] = states[r * d + mode];
    return out;
  }
  if (mode === "mean" || mode === "norm") {
    for (let r = 0; r < images * n; r++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += mode === "mean" ? states[r * d + k] : states[r * d + k] ** 2;
      out[r] = mode === "mean" ? s / d : Math.sqrt(s);
    }
    return out;
  }
  const mean = new Float64Array(d);
  const cov = new Float64Array(d * d);
  const x = new Float64Array(d);
  for (let c = 0; c < n; c++) {
    mean.fill(0);
    cov.fill(0);
    for (let m = 0; m < images; m++) for (let k = 0; k < d; k++) mean[k] += states[(m * n + c) * d + k] / images;
    for (let m = 0; m < images; m++) {
      const o = (m * n + c) * d;
      for (let k = 0; k < d; k++) x[k] = states[o + k] - mean[k];
      for (let i = 0; i < d; i++) {
        const xi = x[i];
        if (xi === 0) continue;
        for (let j = i; j < d; j++) cov[i * d + j] += xi * x[j];
      }
    }
    for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) cov[i * d + j] = cov[j * d + i];
    const v = topEigenvector(cov, d);
    for (let m = 0; m < images; m++) {
      const o = (m * n + c) * d;
      let s = 0;
      for (let k = 0; k < d; k++) s += (states[o + k] - mean[k]) * v[k];
      out[m * n + c] = s;
    }
  }
  return out;
}

/** How a grid area's units are laid out: each column's D features as an sr x sc sub-grid (row-major, padded). */
export interface UnitGrid {
  /** The area's column grid. */
  rows: number;
  cols: number;
  d: number;
  /** Sub-grid of one column: sr = ceil(sqrt(D)) rows, sc = ceil(D / sr) columns. */
  sr: number;
  sc: number;
  /** The fine grid: rows * sr x cols * sc cells. */
  fineRows: number;
  fineCols: number;
}

/** The unit layout of a rows x cols area with D features per column. */
export function unitGrid(rows: number, cols: number, d: number): UnitGrid {
  const sr = Math.ceil(Math.sqrt(d));
  const sc = Math.ceil(d / sr);
  return { rows, cols, d, sr, sc, fineRows: rows * sr, fineCols: cols * sc };
}

/** Fine-grid cell (row-major index) of feature k of the area's column (r, c) (column index within the area, row-major). */
export function unitCell(g: UnitGrid, column: number, k: number): number {
  const r = Math.floor(column / g.cols);
  const c = column % g.cols;
  return (r * g.sr + Math.floor(k / g.sc)) * g.fineCols + c * g.sc + (k % g.sc);
}

/** Position [x, y] in column units of feature k of column `column`: the column's centre plus its sub-grid offset. */
export function unitPosition(g: UnitGrid, column: number, k: number): [number, number] {
  const r = Math.floor(column / g.cols);
  const c = column % g.cols;
  return [c + ((k % g.sc) + 0.5) / g.sc - 0.5, r + (Math.floor(k / g.sc) + 0.5) / g.sr - 0.5];
}

/** Values per unit [columns * D] (column-major over the area: unit = column * D + k) painted on the fine grid (NaN in padding cells). */
export function unitMap(g: UnitGrid, values: NumericArray): Float64Array {
  if (values.length !== g.rows * g.cols * g.d) throw new RangeError(`unitMap: expected ${g.rows * g.cols * g.d} values, got ${values.length}`);
  const out = new Float64Array(g.fineRows * g.fineCols).fill(NaN);
  for (let col = 0; col < g.rows * g.cols; col++) for (let k = 0; k < g.d; k++) out[unitCell(g, col, k)] = values[col * g.d + k];
  return out;
}

/**
 * Effective dimensionality (participation ratio; Elmoznino & Bonner 2022, Del Giudice 2021) of
 * responses x [m, p] (m stimuli, p units): ED = (sum_i lambda_i)^2 / sum_i lambda_i^2 over the
 * eigenvalues of the p x p covariance. Computed without an eigendecomposition as
 * trace(C)^2 / ||C||_F^2, with ||C||_F^2 = ||Xc Xc^T||_F^2 / (m-1)^2 when m < p (the m x m
 * Gram matrix has the same non-zero eigenvalues). In [1, min(m - 1, p)]; NaN for constant data.
 */
export function effectiveDimensionality(x: NumericArray, m: number, p: number): number {
  if (x.length !== m * p) throw new RangeError(`effectiveDimensionality: expected ${m * p} values, got ${x.length}`);
  if (m < 2) return NaN;
  const xc = new Float64Array(m * p);
  const mean = new Float64Array(p);
  for (let r = 0; r < m; r++) for (let j = 0; j < p; j++) mean[j] += x[r * p + j] / m;
  let trace = 0;
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < p; j++) {
      const v = x[r * p + j] - mean[j];
      xc[r * p + j] = v;
      trace += v * v;
    }
  }
  if (!(trace > 0)) return NaN;
  let frob = 0;
  if (m <= p) {
    // Gram matrix G = Xc Xc^T (symmetric): off-diagonal entries count twice
    for (let a = 0; a < m; a++) {
      const oa = a * p;
      for (let b = a; b < m; b++) {
        const ob = b * p;
        let s = 0;
        for (let j = 0; j < p; j++) s += xc[oa + j] * xc[ob + j];
        frob += (a === b ? 1 : 2) * s * s;
      }
    }
  } else {
    const c = new Float64Array(p * p);
    for (let r = 0; r < m; r++) {
      const o = r * p;
      for (let i = 0; i < p; i++) {
        const xi = xc[o + i];
        for (let j = i; j < p; j++) c[i * p + j] += xi * xc[o + j];
      }
    }
    for (let i = 0; i < p; i++) for (let j = i; j < p; j++) frob += (i === j ? 1 : 2) * c[i * p + j] ** 2;
  }
  // the (m - 1) normalisation cancels in the ratio
  return (trace * trace) / frob;
}

/** Energy (mean |activation|) per column over images x D: [N]. */
export function columnEnergy(states: NumericArray, images: number, n: number, d: number): Float64Array {
  if (states.length !== images * n * d) throw new RangeError(`columnEnergy: expected ${images * n * d} states, got ${states.length}`);
  const out = new Float64Array(n);
  for (let m = 0; m < images; m++) for (let c = 0; c < n; c++) for (let k = 0; k < d; k++) out[c] += Math.abs(states[(m * n + c) * d + k]);
  for (let c = 0; c < n; c++) out[c] /= images * d;
  return out;
}
