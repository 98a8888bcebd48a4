/**
 * Moran's I as spatial statistics defines it (Moran 1950; Cliff & Ord 1981; the default of
 * PySAL's esda.Moran and R's spdep::moran.test with style "W"):
 *
 *   I = (n / S0) * sum_i sum_j w_ij z_i z_j / sum_i z_i^2,   z = x - mean(x),  S0 = sum_ij w_ij
 *
 * with ROW-STANDARDISED contiguity weights (w_ij = 1 / |neighbours of i| for each neighbour
 * j, so S0 = n): on a grid, QUEEN contiguity (the 8 surrounding cells) by default, rook (the 4
 * edge neighbours) or unstandardised binary weights as options; k nearest neighbours on
 * layouts without a grid. E[I] = -1/(n-1) under random placement; the permutation null
 * reassigns the values to the cells at random.
 */
import { Rng, mixSeed } from "../engine/rng.ts";
import type { NumericArray } from "./topography.ts";

/** Neighbour lists in CSR form: neighbours of i are index[offset[i] .. offset[i+1]). */
export interface Neighbours {
  n: number;
  offset: Int32Array;
  index: Int32Array;
}

/** Contiguity on a grid. */
export type Contiguity = "queen" | "rook";
/** "row": w_ij = 1/deg(i) (row-standardised, style "W"); "binary": w_ij = 1 (style "B"). */
export type WeightStyle = "row" | "binary";

/** Neighbours of the cells of a rows x cols grid (row-major): queen (8) or rook (4); `wrap` for a torus. */
export function gridNeighbours(rows: number, cols: number, contiguity: Contiguity = "queen", wrap = false): Neighbours {
  const n = rows * cols;
  const offset = new Int32Array(n + 1);
  const index: number[] = [];
  const steps = contiguity === "queen" ? [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1]] : [[-1, 0], [0, -1], [0, 1], [1, 0]];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const seen = new Set<number>();
      for (const [dr, dc] of steps) {
        let rr = r + dr;
        let cc = c + dc;
        if (wrap) {
          rr = (rr + rows) % rows;
          cc = (cc + cols) % cols;
        } else if (rr < 0 || rr >= rows || cc < 0 || cc >= cols) continue;
        const j = rr * cols + cc;
        if (j === r * cols + c || seen.has(j)) continue; // tiny tori: a cell is its own or a repeated neighbour
        seen.add(j);
        index.push(j);
      }
      offset[r * cols + c + 1] = index.length;
    }
  }
  return { n, offset, index: Int32Array.from(index) };
}

/** The k nearest other units of each unit, from a row-major [n, n] distance matrix (ties: lower index). */
export function nearestNeighbours(distances: NumericArray, n: number, k: number): Neighbours {
  const kk = Math.min(k, n - 1);
  const offset = new Int32Array(n + 1);
  const index = new Int32Array(n * kk);
  const order = Array.from({ length: n }, (_, j) => j);
  for (let i = 0; i < n; i++) {
    const others = order.filter((j) => j !== i).sort((a, b) => distances[i * n + a] - distances[i * n + b] || a - b);
    for (let t = 0; t < kk; t++) index[i * kk + t] = others[t];
    offset[i + 1] = (i + 1) * kk;
  }
  return { n, offset, index };
}

/** Outcome of {@link moransIPermutation}. */
export interface MoransITest {
  /** Moran's I of the values in place; NaN when constant or no neighbours. */
  I: number;
  /** -1 / (n - 1), its expectation under random placement. */
  expected: number;
  /** Mean and sample SD of I over the permutations. */
  null_mean: number;
  null_std: number;
  /** (I - null_mean) / null_std. */
  z: number;
  /** One-sided pseudo p-value for positive autocorrelation: (1 + #{I_perm >= I}) / (permutations + 1). */
  p: number;
  permutations: number;
  /** Units with a finite value (NaN values are left out, with their links). */
  n: number;
}

/** Weights, restricted to the units with finite values: CSR with weights. */
function weightsOf(values: NumericArray, nb: Neighbours, style: WeightStyle) {
  const keep: number[] = [];
  const where = new Int32Array(nb.n).fill(-1);
  for (let i = 0; i < nb.n; i++) {
    if (Number.isFinite(values[i])) {
      where[i] = keep.length;
      keep.push(i);
    }
  }
  const m = keep.length;
  const offset = new Int32Array(m + 1);
  const index: number[] = [];
  const weight: number[] = [];
  for (let a = 0; a < m; a++) {
    const i = keep[a];
    const js: number[] = [];
    for (let t = nb.offset[i]; t < nb.offset[i + 1]; t++) if (where[nb.index[t]] >= 0) js.push(where[nb.index[t]]);
    for (const j of js) {
      index.push(j);
      weight.push(style === "row" ? 1 / js.length : 1);
    }
    offset[a + 1] = index.length;
  }
  let s0 = 0;
  for (const w of weight) s0 += w;
  const z = new Float64Array(m);
  let mean = 0;
  for (const i of keep) mean += values[i];
  mean /= m || 1;
  let ss = 0;
  keep.forEach((i, a) => {
    z[a] = values[i] - mean;
    ss += z[a] * z[a];
  });
  return { m, offset, index: Int32Array.from(index), weight: Float64Array.from(weight), s0, z, ss };
}

function statistic(w: ReturnType<typeof weightsOf>, z: Float64Array): number {
  let s = 0;
  for (let i = 0; i < w.m; i++) {
    let row = 0;
    for (let t = w.offset[i]; t < w.offset[i + 1]; t++) row += w.weight[t] * z[w.index[t]];
    s += z[i] * row;
  }
  return ((w.m / w.s0) * s) / w.ss;
}

/** Moran's I of `values` [n] over the neighbour lists `nb` (see the module doc). NaN values are left out. */
export function moransIWeighted(values: NumericArray, nb: Neighbours, style: WeightStyle = "row"): number {
  if (values.length !== nb.n) throw new RangeError(`moransI: expected ${nb.n} values, got ${values.length}`);
  const w = weightsOf(values, nb, style);
  if (w.s0 === 0 || !(w.ss > 0)) return NaN;
  return statistic(w, w.z);
}

/** Moran's I with its permutation null (`permutations` random reassignments of the values; seeded). */
export function moransIPermutation(
  values: NumericArray,
  nb: Neighbours,
  style: WeightStyle = "row",
  opts: { permutations?: number; seed?: number } = {},
): MoransITest {
  if (values.length !== nb.n) throw new RangeError(`moransI: expected ${nb.n} values, got ${values.length}`);
  const permutations = opts.permutations ?? 199;
  const w = weightsOf(values, nb, style);
  const expected = w.m > 1 ? -1 / (w.m - 1) : NaN;
  if (w.s0 === 0 || !(w.ss > 0)) return { I: NaN, expected, null_mean: NaN, null_std: NaN, z: NaN, p: NaN, permutations, n: w.m };
  const I = statistic(w, w.z);
  const rng = new Rng(mixSeed(opts.seed ?? 0, 0x6d6f72));
  const z = Float64Array.from(w.z);
  const samples: number[] = [];
  let atLeast = 0;
  for (let s = 0; s < permutations; s++) {
    for (let i = z.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = z[i];
      z[i] = z[j];
      z[j] = t;
    }
    const v = statistic(w, z);
    samples.push(v);
    if (v >= I - 1e-12) atLeast++;
  }
  const mean = samples.reduce((a, v) => a + v, 0) / (samples.length || 1);
  const std = samples.length > 1 ? Math.sqrt(samples.reduce((a, v) => a + (v - mean) ** 2, 0) / (samples.length - 1)) : NaN;
  return { I, expected, null_mean: mean, null_std: std, z: std > 0 ? (I - mean) / std : NaN, p: (1 + atLeast) / (permutations + 1), permutations, n: w.m };
}
