/**
 * Activation-correlation spatial loss of the Topographic Deep Artificial Neural Network (TDANN;
 * Margalit et al. 2024, Neuron 112, "A unifying framework for functional organization in early
 * and higher ventral visual cortex"): nearby units should respond alike, so within a randomly
 * drawn cortical neighbourhood the pairwise response correlations r_ij should follow the
 * inverse distances 1 / (d_ij + 1):
 *
 *   SL = 1 - corr(r, 1 / (d + 1))        over the pairs i < j of one neighbourhood,
 *
 * averaged over neighbourhoods; corr is Pearson's, r_ij the Pearson correlation of units i and
 * j's responses across the images of the batch.
 *
 * Here the units are the columns and a column's response to an image is the mean over its D
 * features of its final state (after the last recurrent step; the `mean` response of
 * `columnformer analyze`). A neighbourhood is drawn per optimiser step: a centre column
 * uniformly among the columns of areas with at least `size` columns, and its `size` nearest
 * columns within the centre's own area (the centre included; ties by index), so cortical areas
 * are separate sheets, as TDANN's layers are, and every neighbourhood has the same shape (a
 * k-nearest neighbourhood instead of TDANN's fixed radius). Distances d are the geometry's (grid
 * units; learned positions: the current ones, not differentiated). Both variances get 1e-8
 * added, so a constant response or a constant r gives correlation 0 rather than NaN.
 *
 * The loss is a function of the final states only: the native backend computes it and its
 * gradient in jax-js on the native forward's final states and adds that gradient to the
 * cotangent of the final states before the native backward.
 */
import { numpy as np } from "../engine/jax.ts";
import type { Area } from "../geometry/index.ts";
import { Rng } from "../engine/rng.ts";

/** Added to every variance in the two correlations. */
const VARIANCE_EPS = 1e-8;

/** How neighbourhoods are drawn (spatial_correlation in the training config). */
export interface NeighbourhoodSpec {
  /** Neighbourhoods per step M. */
  neighbourhoods: number;
  /** Columns per neighbourhood K (>= 3). */
  size: number;
}

/** The areas a neighbourhood of `size` columns fits in; throws, naming the field, when none does. */
export function neighbourhoodAreas(areas: Area[], size: number): Area[] {
  if (size < 3) throw new Error(`spatial_correlation.size must be at least 3 (a correlation over pairs needs two distinct distances), got ${size}`);
  const fit = areas.filter((a) => a.end - a.start >= size);
  if (fit.length === 0) {
    const largest = Math.max(...areas.map((a) => a.end - a.start));
    throw new Error(`spatial_correlation.size is ${size} but the largest area has ${largest} columns; set spatial_correlation.size to at most ${largest}`);
  }
  return fit;
}

/**
 * Draw M neighbourhoods (see the file comment) from `seed`. distances: [N * N]. Returns the
 * member columns [M * K] (row m: neighbourhood m, its centre first).
 */
export function drawNeighbourhoods(distances: ArrayLike<number>, n: number, areas: Area[], spec: NeighbourhoodSpec, seed: number): Int32Array {
  const fit = neighbourhoodAreas(areas, spec.size);
  const candidates = fit.reduce((sum, a) => sum + a.end - a.start, 0);
  const rng = new Rng(seed);
  const out = new Int32Array(spec.neighbourhoods * spec.size);
  for (let m = 0; m < spec.neighbourhoods; m++) {
    // the r-th candidate column, counting through the fitting areas in order
    let r = rng.int(candidates);
    let a = 0;
    while (r >= fit[a].end - fit[a].start) {
      r -= fit[a].end - fit[a].start;
      a++;
    }
    const area = fit[a];
    const centre = area.start + r;
    const members = Array.from({ length: area.end - area.start }, (_, t) => area.start + t);
    members.sort((a, b) => distances[centre * n + a] - distances[centre * n + b] || (a === centre ? -1 : b === centre ? 1 : a - b));
    out.set(members.slice(0, spec.size), m * spec.size);
  }
  return out;
}

/** One-hot selection [N, M, K] (flattened) of neighbourhood members [M * K]. */
export function selectionMatrix(members: Int32Array, n: number): Float32Array {
  const out = new Float32Array(n * members.length);
  members.forEach((column, t) => {
    out[column * members.length + t] = 1;
  });
  return out;
}

/**
 * TDANN's spatial loss, mean over neighbourhoods of 1 - corr(r, 1 / (d + 1)).
 * Consumes `states` [B, N, D] (final column states), `selection` [N, M, K] (one-hot: column n
 * is member k of neighbourhood m) and `distances` [N, N]. Returns a scalar.
 */
export function spatialCorrelation(states: np.Array, selection: np.Array, distances: np.Array): np.Array {
  const [b, n] = states.shape;
  const [, m, k] = selection.shape;
  const flat = selection.reshape([n, m * k]);
  // responses [B, M, K], standardised over the batch
  const responses = np.matmul(states.mean(-1), flat.ref).reshape([b, m, k]);
  const centred = responses.ref.sub(responses.mean(0, { keepdims: true }));
  const z = centred.ref.div(np.sqrt(np.square(centred).mean(0, { keepdims: true }).add(VARIANCE_EPS)));
  const zt = z.transpose([1, 2, 0]); // [M, K, B]
  const r = np.matmul(zt.ref, zt.transpose([0, 2, 1])).div(b); // response correlations [M, K, K]
  // pair distances [M, K, K]: d[m, i, j] = sum_n sel[n, m, i] (D sel)[n, m, j]
  const dSel = np.matmul(distances, flat.ref).reshape([n, m, k]).transpose([1, 0, 2]); // [M, N, K]
  const pairDistances = np.matmul(flat.reshape([n, m, k]).transpose([1, 2, 0]), dSel); // [M, K, K]
  const inverse = np.reciprocal(pairDistances.add(1));
  // Pearson correlation over the pairs i < j of each neighbourhood
  const pairs = np.triu(np.ones([k, k]), 1); // [K, K]
  const count = (k * (k - 1)) / 2;
  const pairMean = (a: np.Array) => a.mul(pairs.ref).sum([1, 2], { keepdims: true }).div(count); // [M, 1, 1]
  const rc = r.ref.sub(pairMean(r)).mul(pairs.ref);
  const ic = inverse.ref.sub(pairMean(inverse)).mul(pairs);
  const cov = rc.ref.mul(ic.ref).sum([1, 2]).div(count); // [M]
  const varR = np.square(rc).sum([1, 2]).div(count);
  const varI = np.square(ic).sum([1, 2]).div(count);
  const corr = cov.div(np.sqrt(varR.add(VARIANCE_EPS).mul(varI.add(VARIANCE_EPS))));
  return np.subtract(1, corr.mean());
}
