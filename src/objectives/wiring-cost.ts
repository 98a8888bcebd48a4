/**
 * Wiring cost: a penalty on attention between distant columns, so that
 * connectivity becomes sparse and mostly local, as in cortex.
 *
 * Both forms are   lambda * mean over (batch, step, target column i) of sum_j A_ij W_ij,
 * i.e. the expected wiring weight of where each column reads from, and
 * differ only in the wiring weights W derived from the distances d:
 *   - "l1":            W = d^p / mean(d^p)   (mean over all N^2 pairs; p = 1 by default)
 *   - "cross_entropy": W = -log_softmax_j(-d_ij^2 / (2 sigma^2))   (sigma = 2 by default),
 *                      the cross-entropy of the attention row against a local Gaussian.
 * All functions are pure and differentiable in both the attention and the distances
 * (so learned geometry can move columns).
 */
import { nn, numpy as np } from "../engine/jax.ts";
import { distanceRow, type ColumnMetric } from "../geometry/metric.ts";

/** Which wiring cost to apply and how strongly. */
export type WiringCostSpec =
  | { form: "l1"; lambda: number; p?: number }
  | { form: "cross_entropy"; lambda: number; sigma?: number };

/** L1 wiring weights W = d^p / mean(d^p). Consumes `distances` [N, N]. */
export function l1WiringWeights(distances: np.Array, p = 1): np.Array {
  const powered = p === 1 ? distances : np.power(distances, p);
  return powered.ref.div(powered.mean());
}

/** Cross-entropy wiring weights W = -log_softmax_j(-d^2 / (2 sigma^2)). Consumes `distances` [N, N]. */
export function crossEntropyWiringWeights(distances: np.Array, sigma = 2): np.Array {
  return nn.logSoftmax(np.square(distances).mul(-1 / (2 * sigma * sigma)), -1).neg();
}

/** Wiring weights for a spec. Consumes `distances` [N, N]. */
export function wiringWeights(distances: np.Array, spec: WiringCostSpec): np.Array {
  return spec.form === "l1"
    ? l1WiringWeights(distances, spec.p ?? 1)
    : crossEntropyWiringWeights(distances, spec.sigma ?? 2);
}

/**
 * lambda * mean over all leading axes and rows i of sum_j attn_ij W_ij.
 * Consumes `attn` [..., N, N] (e.g. [batch, depth, N, N]) and `weights` [N, N]. Returns a scalar.
 */
export function wiringCost(attn: np.Array, weights: np.Array, lambda: number): np.Array {
  return attn.mul(weights).sum(-1).mean().mul(lambda);
}

/** Wiring cost of `attn` [..., N, N] under `spec`, from `distances` [N, N]. Consumes both. */
export function wiringCostFromDistances(attn: np.Array, distances: np.Array, spec: WiringCostSpec): np.Array {
  return wiringCost(attn, wiringWeights(distances, spec), spec.lambda);
}

/** Rows of the metric averaged for the L1 normaliser: all up to this many columns, else this many evenly spaced rows. */
export const L1_NORMALISER_ROWS = 4096;

/**
 * Wiring weights of the connections (a sparse sheet's K, or all N for a dense one), on the host:
 * the dense definition restricted to them, so dense and sparse costs compare directly. `l1`:
 * W_it = d_it^p / mean(d^p) with the mean over all N^2 column pairs (beyond
 * {@link L1_NORMALISER_ROWS} columns: over that many evenly spaced rows, each against all N
 * columns); `cross_entropy`: W_it = d_it^2 / (2 sigma^2) + log sum_j exp(-d_ij^2 / (2 sigma^2))
 * with the sum over ALL N columns (O(N^2) time). Rows of the metric stream one at a time
 * (float32-rounded, as the dense matrix stores them): O(N) memory, no N x N matrix.
 * connectionDistances: [N * K] (row i: d(i, source t)). Returns [N * K].
 */
export function sparseWiringWeights(metric: ColumnMetric, connectionDistances: ArrayLike<number>, n: number, k: number, spec: WiringCostSpec): Float32Array {
  const out = new Float32Array(n * k);
  const row = new Float64Array(n);
  const rowOf = (i: number): Float64Array => {
    distanceRow(metric, i, row);
    for (let j = 0; j < n; j++) row[j] = Math.fround(row[j]);
    return row;
  };
  if (spec.form === "l1") {
    const p = spec.p ?? 1;
    const rows = Math.min(n, L1_NORMALISER_ROWS);
    let sum = 0;
    for (let r = 0; r < rows; r++) for (const d of rowOf(Math.floor((r * n) / rows))) sum += d ** p;
    const mean = sum / (rows * n);
    for (let t = 0; t < n * k; t++) out[t] = connectionDistances[t] ** p / mean;
    return out;
  }
  const c = 1 / (2 * (spec.sigma ?? 2) ** 2);
  for (let i = 0; i < n; i++) {
    const d = rowOf(i);
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, -(d[j] ** 2) * c);
    let z = 0;
    for (let j = 0; j < n; j++) z += Math.exp(-(d[j] ** 2) * c - max);
    const logZ = max + Math.log(z);
    for (let t = 0; t < k; t++) out[i * k + t] = connectionDistances[i * k + t] ** 2 * c + logZ;
  }
  return out;
}
