/**
 * How far apart two columns are, in the geometry's own metric, without the N x N matrix.
 *
 * Every geometry's distance is a function of the straight-line distance e between two
 * positions, taken over the nearest periodic image where axes wrap:
 *   - grid, stacked, custom: d = e (Euclidean);
 *   - torus: both grid axes wrap (period H and W), d = e of the nearest image;
 *   - sphere: e is the chord, d = 2 r asin(e / 2r) (the great-circle distance);
 *   - `self_offset` s > 0: d -> sqrt(d^2 + s^2), the diagonal included.
 * The warp from e to d never decreases and never falls below e, so a spatial search over
 * positions finds the geometry's nearest columns, and e bounds d from below (the connectivity
 * samplers rely on both). The dense matrix exists only for what needs every pair (dense
 * attention, a few objectives, the analysis): {@link distanceMatrix}.
 */
import type { Geometry } from "./types.ts";

/** Column coordinates, [N * dims] row-major. */
export type Positions = Float32Array | Float64Array;

/** The geometry's distance as positions, periodic axes and a warp of the straight-line distance. */
export interface ColumnMetric {
  /** [N * dims] row-major. */
  positions: Positions;
  dims: number;
  /** Period of each axis, [dims] (0: the axis does not wrap; positions span less than it); null when no axis wraps. */
  period: Float64Array | null;
  /** d as a function of the straight-line distance e (non-decreasing, d >= e); null: d = e. */
  warp: ((e: number) => number) | null;
}

/** Most columns whose dense N x N distance matrix is built (4 GiB of float32). */
export const MAX_DENSE_COLUMNS = 32768;

/** The Euclidean metric of plain positions. */
export function euclideanMetric(positions: Positions, dims: number): ColumnMetric {
  return { positions, dims, period: null, warp: null };
}

/** The metric of a built geometry (see the module comment). */
export function geometryMetric(g: Geometry): ColumnMetric {
  const spec = g.spec;
  const s = spec.self_offset ?? 0;
  const r = spec.kind === "sphere" ? (spec.radius ?? 1) : 0;
  const base = r > 0 ? (e: number) => 2 * r * Math.asin(Math.min(1, e / (2 * r))) : null;
  const warp = s > 0 ? (e: number) => Math.hypot(base ? base(e) : e, s) : base;
  // a torus is its grid layout, x along the width (period W), y along the height (period H)
  const period = spec.kind === "torus" ? Float64Array.of(spec.width, spec.height) : null;
  return { positions: g.positions, dims: g.positionDim, period, warp };
}

/** Offset x_j - x_i along an axis of period L wrapped into (-L/2, L/2] (L = 0: no wrap). */
export function wrapOffset(delta: number, period: number): number {
  if (period === 0) return delta;
  const w = delta - period * Math.round(delta / period);
  return w <= -period / 2 ? w + period : w > period / 2 ? w - period : w;
}

/** Straight-line distance e between columns i and j, over the nearest periodic image. */
export function straightDistance(m: ColumnMetric, i: number, j: number): number {
  const { positions: p, dims, period } = m;
  let s = 0;
  for (let a = 0; a < dims; a++) {
    const delta = period ? wrapOffset(p[j * dims + a] - p[i * dims + a], period[a]) : p[j * dims + a] - p[i * dims + a];
    s += delta * delta;
  }
  return Math.sqrt(s);
}

/** Distance between columns i and j in the geometry's metric (float64). */
export function columnDistance(m: ColumnMetric, i: number, j: number): number {
  const e = i === j ? 0 : straightDistance(m, i, j);
  return m.warp ? m.warp(e) : e;
}

/** Distances from column i to every column: out[j] = d(i, j), out [N]. O(N) time and memory. */
export function distanceRow(m: ColumnMetric, i: number, out: Float64Array): Float64Array {
  const { positions: p, dims, period, warp } = m;
  out.fill(0);
  for (let a = 0; a < dims; a++) {
    const x = p[i * dims + a];
    const l = period ? period[a] : 0;
    for (let j = 0; j < out.length; j++) {
      const delta = l === 0 ? p[j * dims + a] - x : wrapOffset(p[j * dims + a] - x, l);
      out[j] += delta * delta;
    }
  }
  for (let j = 0; j < out.length; j++) out[j] = j === i ? 0 : Math.sqrt(out[j]);
  if (warp) for (let j = 0; j < out.length; j++) out[j] = warp(out[j]);
  return out;
}

const matrices = new WeakMap<Geometry, Float32Array>();

/**
 * The dense pairwise distances [N * N] row-major (computed in float64, stored as float32),
 * built on first use and kept with the geometry. Throws above {@link MAX_DENSE_COLUMNS}
 * columns, naming what needs it and the fix.
 */
export function distanceMatrix(g: Geometry): Float32Array {
  const cached = matrices.get(g);
  if (cached) return cached;
  const n = g.numColumns;
  if (n > MAX_DENSE_COLUMNS) {
    throw new Error(
      `the geometry's ${n} columns are too many for its dense ${n} x ${n} distance matrix (at most ${MAX_DENSE_COLUMNS}); dense attention, the consistency, topo_blur and spatial_correlation objectives and the analysis need it: use a sparse sheet.connectivity ("local" or "small_world") and leave those off`,
    );
  }
  const m = geometryMetric(g);
  const out = new Float32Array(n * n);
  const self = m.warp ? m.warp(0) : 0;
  for (let i = 0; i < n; i++) {
    out[i * n + i] = self;
    for (let j = i + 1; j < n; j++) {
      const d = columnDistance(m, i, j);
      out[i * n + j] = d;
      out[j * n + i] = d;
    }
  }
  matrices.set(g, out);
  return out;
}
