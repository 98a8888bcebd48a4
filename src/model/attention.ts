/**
 * Single-head column attention: how columns communicate.
 *
 * Each column has its own query (with bias) and key (no bias, so a column
 * whose state is zero gets no attention) projections. The value is the
 * normed input itself: no value or output projection. A learned N x N
 * attention bias adds a per-connection prior (initialised local in space).
 */
import { nn, numpy as np } from "../engine/jax.ts";
import { splitKey } from "../engine/prng.ts";
import { columnLinear, initColumnLinear } from "./column-linear.ts";
import type { ColumnAttentionParams } from "./params.ts";

/** Local Gaussian attention-bias prior: max(-d^2 / (2 sigma^2), -8), from distances [N*N]. */
export function localAttentionBias(distances: Float32Array, sigma: number): Float32Array {
  return distances.map((d) => Math.max(-(d * d) / (2 * sigma * sigma), -8));
}

/** Initialise q [N, qk, D] (+bias), k [N, qk, D] and the attention bias [N, N]. Consumes `key`. */
export function initColumnAttention(
  key: np.Array,
  numColumns: number,
  dim: number,
  qkDim: number,
  attnBias: Float32Array,
): ColumnAttentionParams {
  const [kq, kk] = splitKey(key, 2);
  const q = initColumnLinear(kq, numColumns, dim, qkDim, true);
  const k = initColumnLinear(kk, numColumns, dim, qkDim, false);
  return {
    q: { weight: q.weight, bias: q.bias! },
    k: { weight: k.weight },
    attn_bias: np.array(attnBias).reshape([numColumns, numColumns]),
  };
}

/**
 * Consumes `p` and `h`. h: [batch, N, D] (the normed states, also the values).
 * Returns out [batch, N, D] and attn [batch, N, N] (row i: where column i reads from; rows sum to 1).
 */
export function columnAttention(
  p: ColumnAttentionParams,
  h: np.Array,
  scale: number,
): { out: np.Array; attn: np.Array } {
  const q = columnLinear(p.q, h.ref); // [batch, N, qk]
  const k = columnLinear(p.k, h.ref); // [batch, N, qk]
  const scores = np.matmul(q, k.transpose([0, 2, 1])).mul(scale).add(p.attn_bias); // [batch, N, N]
  const attn = nn.softmax(scores, -1);
  const out = np.matmul(attn.ref, h); // [batch, N, D]
  return { out, attn };
}
