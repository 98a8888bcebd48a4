/**
 * Feature-consistency penalty: pulls neighbouring columns' weights together,
 * so that untied columns come to agree on a feature space (as the smoothness
 * term of end-to-end topographic networks does).
 *
 * For every untied weight matrix W of the sheet (one [out, in] matrix per
 * column: attention projections and MLP layers; biases and norms left out),
 * with w_i column i's matrix flattened and A the neighbour graph (each column's
 * k nearest other columns in the geometry):
 *   penalty(W) = sum_ij A_ij (1 - cos(w_i, w_j)) / sum_ij A_ij
 * and the penalty is the mean over those matrices (and over blocks of a stack).
 * 0 when neighbours are identical up to scale, 1 for orthogonal ones.
 */
import { numpy as np } from "../engine/jax.ts";
import type { SheetConfig } from "../model/config.ts";
import type { SheetParams } from "../model/params.ts";

/**
 * Neighbour graph: A_ij = 1 for the k nearest other columns j of column i
 * (ties broken by index), else 0. distances: [N*N] -> [N*N].
 */
export function nearestNeighbourGraph(distances: ArrayLike<number>, n: number, k: number): Float32Array {
  if (k < 1 || k > n - 1) throw new Error(`consistency.neighbours must be in 1..${n - 1} (the sheet has ${n} columns), got ${k}`);
  const adjacency = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    const others = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i);
    others.sort((a, b) => distances[i * n + a] - distances[i * n + b] || a - b);
    for (const j of others.slice(0, k)) adjacency[i * n + j] = 1;
  }
  return adjacency;
}

/** The sheet's per-column weight matrices (those of untied modules). Borrows nothing: returns the leaves themselves. */
export function untiedWeights(p: SheetParams, config: SheetConfig): np.Array[] {
  const out: np.Array[] = [];
  if (config.untie_attn) {
    out.push(p.attn.q.weight, p.attn.k.weight);
    if (p.attn.v && p.attn.o) out.push(p.attn.v.weight, p.attn.o.weight);
  }
  if (config.untie_mlp) out.push(p.mlp.fc1.weight, p.mlp.fc2.weight);
  return out;
}

/**
 * Mean over `weights` of sum_ij A_ij (1 - cos(w_i, w_j)) / sum_ij A_ij.
 * weights: arrays [N, out, in] or [depth, N, out, in] (consumed);
 * neighbours: [N, N] (consumed). Returns a scalar.
 */
export function featureConsistency(weights: np.Array[], neighbours: np.Array): np.Array {
  if (weights.length === 0) throw new Error("feature consistency needs untied weights (untie_attn or untie_mlp)");
  const total = neighbours.ref.sum();
  let sum: np.Array = np.zeros([]);
  for (const w of weights) {
    const blocks = w.ndim === 4 ? w.shape[0] : 1;
    const n = w.shape[w.ndim - 3];
    const rows = w.reshape([blocks, n, -1]); // [blocks, N, out*in]
    const unit = rows.ref.div(np.sqrt(np.square(rows).sum(-1, { keepdims: true }).add(1e-12)));
    const cosine = np.matmul(unit.ref, unit.transpose([0, 2, 1])); // [blocks, N, N]
    const dissimilarity = np.subtract(1, cosine).mul(neighbours.ref).sum().div(blocks);
    sum = sum.add(dissimilarity);
  }
  neighbours.dispose();
  return sum.div(total.mul(weights.length));
}
