/**
 * Learned geometry: column positions as trainable parameters.
 *
 * The positions [N, k] start where the geometry puts the columns and move with
 * the gradient of the wiring cost (and anything else that reads distances).
 * Distances are recomputed from them every step, in the geometry's own space:
 *   grid, stacked, custom  Euclidean, in a layout of FIXED SPREAD: positions are
 *                          re-centred and rescaled to their initial RMS radius;
 *   torus                  wrap-around (periods = the grid's width and height);
 *   sphere                 great-circle distance on the sphere's radius
 *                          (positions are projected onto it).
 *
 * Collapse (all columns at one point makes all wiring free) is prevented by
 * three things: the fixed spread above (the sheet cannot shrink), the L1 wiring
 * cost being normalised by the mean distance (W = d^p / mean d^p: shrinking
 * buys nothing), and a repulsion term that penalises pairs closer than a
 * minimum spacing, so columns cannot pile up into clusters either:
 *   repulsion = mean over columns i of sum over j != i of relu(1 - d_ij / s)^2
 * (per column, like the wiring cost).
 */
import { numpy as np } from "../engine/jax.ts";
import { columnDistance, geometryMetric } from "./metric.ts";
import type { Geometry } from "./types.ts";

/** How distances are computed from learned positions; derived from the geometry. */
export interface PositionSpace {
  metric: "euclidean" | "torus" | "sphere";
  /** Euclidean: the RMS distance of the positions from their centroid, held fixed. */
  rmsRadius: number;
  /** Torus: periods per coordinate [width, height]. */
  periods: number[];
  /** Sphere: radius. */
  radius: number;
  /** sqrt(d^2 + s^2) as in the geometry (0: none). */
  selfOffset: number;
  positionDim: number;
}

/** The space in which `geometry`'s columns can move. */
export function positionSpace(geometry: Geometry): PositionSpace {
  const { spec, positions, numColumns: n, positionDim: k } = geometry;
  const centroid = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) centroid[c] += positions[i * k + c] / n;
  let sq = 0;
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) sq += (positions[i * k + c] - centroid[c]) ** 2;
  const base = { rmsRadius: Math.sqrt(sq / n), periods: [], radius: 1, selfOffset: spec.self_offset ?? 0, positionDim: k };
  if (spec.kind === "torus") return { ...base, metric: "torus", periods: [spec.width, spec.height] };
  if (spec.kind === "sphere") return { ...base, metric: "sphere", radius: spec.radius ?? 1 };
  return { ...base, metric: "euclidean" };
}

/**
 * The positions actually used: Euclidean layouts re-centred and rescaled to
 * the fixed RMS radius, sphere points projected onto the sphere; torus as is.
 * Consumes `positions` [N, k] -> [N, k].
 */
export function constrainPositions(positions: np.Array, space: PositionSpace): np.Array {
  if (space.metric === "euclidean") {
    const centred = positions.ref.sub(positions.mean(0, { keepdims: true }));
    const rms = np.sqrt(np.square(centred.ref).sum(-1).mean().add(1e-12));
    return centred.mul(space.rmsRadius).div(rms);
  }
  if (space.metric === "sphere") {
    const norm = np.sqrt(np.square(positions.ref).sum(-1, { keepdims: true }).add(1e-12));
    return positions.mul(space.radius).div(norm);
  }
  return positions;
}

/**
 * Pairwise distances of learned positions, differentiable. Consumes `positions`.
 * positions: [N, k] -> distances [N, N].
 */
export function positionDistances(positions: np.Array, space: PositionSpace): np.Array {
  const p = constrainPositions(positions, space);
  const [n, k] = p.shape;
  let squared: np.Array;
  if (space.metric === "sphere") {
    const r2 = space.radius * space.radius;
    const cos = np.clip(np.matmul(p.ref, p.transpose()).div(r2), -1 + 1e-6, 1 - 1e-6);
    const d = np.acos(cos).mul(space.radius);
    squared = np.square(d);
  } else {
    let diff = p.ref.reshape([n, 1, k]).sub(p.reshape([1, n, k])); // [N, N, k]
    if (space.metric === "torus") {
      const period = np.array(new Float32Array(space.periods)); // [k]
      // nearest image: diff - period * round(diff / period); round has zero gradient, so this is the wrapped difference
      diff = diff.ref.sub(np.floor(diff.div(period.ref).add(0.5)).mul(period));
    }
    squared = np.square(diff).sum(-1);
  }
  // the small floor keeps the gradient of sqrt finite on the diagonal (where d = 0)
  return np.sqrt(squared.add(space.selfOffset * space.selfOffset + 1e-8));
}

/**
 * Repulsion between columns closer than `spacing`: mean over columns i of
 * sum over j != i of relu(1 - d_ij / spacing)^2. Zero while every pair is at
 * least `spacing` apart. Consumes `distances` [N, N] -> scalar.
 */
export function repulsion(distances: np.Array, spacing: number): np.Array {
  const n = distances.shape[0];
  const close = np.maximum(np.subtract(1, distances.div(spacing)), 0);
  const offDiagonal = np.subtract(1, np.eye(n));
  return np.square(close).mul(offDiagonal).sum().div(n);
}

/** Median nearest-neighbour distance of a geometry: the natural column spacing. */
export function medianSpacing(geometry: Geometry): number {
  const n = geometry.numColumns;
  const metric = geometryMetric(geometry);
  const nearest: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    for (let j = 0; j < n; j++) if (j !== i) best = Math.min(best, Math.fround(columnDistance(metric, i, j)));
    nearest.push(best);
  }
  nearest.sort((a, b) => a - b);
  return nearest[Math.floor(n / 2)];
}

/**
 * The geometry with its learned positions in place: the constrained positions as a host
 * array (areas and spec unchanged; the spec describes where the columns started; distances
 * follow from the positions in the geometry's metric). Consumes `positions` [N, k].
 */
export async function withLearnedPositions(geometry: Geometry, positions: np.Array): Promise<Geometry> {
  const placed = new Float64Array(await constrainPositions(positions, positionSpace(geometry)).data());
  return { ...geometry, positions: placed };
}
