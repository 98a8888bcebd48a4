/**
 * Sparse single-head column attention: column i attends only to its K source columns
 * idx[i, 0..K) (a connectivity pattern, see src/geometry/connectivity.ts), never to all N.
 *
 *   s[b,i,j]   = scale * q[b,i] . k[b, idx[i,j]] + bias[i,j]      scores       [B, N, K]
 *   a[b,i,:]   = softmax_j s[b,i,:]                                attention    [B, N, K]
 *   out[b,i]   = sum_j a[b,i,j] h[b, idx[i,j]]                     output       [B, N, D]
 *
 * Memory and time are O(B N K D); nothing N x N is built.
 *
 * jax-js formulation (measured on @jax-js/jax 0.1.25, Wasm backend). Sources are read with
 * `np.take(x, idx, 1)` and a 2-D index array idx [N, K] (the "gather" primitive). jit always
 * materialises a gather as its own kernel (a [B, N, K, .] temporary, about 3 ns per element on one
 * thread), which the following multiply-and-reduce consumes.
 *
 * - `sparseAttention` under autodiff (`grad`, `valueAndGrad`, `jit`): the transpose of a gather is
 *   a scatter-add, which jax-js runs as a single-threaded JavaScript routine (about 60 ns per
 *   scattered element): at N = 16,384 (B 2, K 16, D = qk = 8) attention forward + backward takes
 *   1.25 s. jax-js's jit also requires a routine's inputs
 *   to be materialised buffers ("jit: routine primitive scatter input is not imm" otherwise): a
 *   gather must not feed a bare reshape or reduction, so here each gathered array feeds a
 *   multiply, whose cotangent is a real buffer, and the index array is 2-D (a flat index array
 *   plus a reshape fails).
 * The native backend (src/engine/native-sheet.ts) has its own hand-written sparse backward; this
 * jax-js formulation is its reference and the path where the addon is not built.
 */
import { nn, numpy as np } from "../engine/jax.ts";

/** Results of a sparse attention call. */
export interface SparseAttentionOutput {
  /** out: [B, N, D]. */
  out: np.Array;
  /** attn: [B, N, K], attn[b, i, j] = weight of source idx[i, j] (rows sum to 1). */
  attn: np.Array;
}

/**
 * Sparse attention, differentiable by jax-js autodiff (backward through a scatter-add).
 * Consumes every argument.
 *
 * q: [B, Nt, qk] (already projected per column), k: [B, N, qk], h: [B, N, D] (values),
 * bias: [Nt, K] (per-connection prior), idx: int32 [Nt, K] (source columns, 0..N-1).
 * Returns out [B, Nt, D] and attn [B, Nt, K]. Nt = N normally; a block of Nt target columns
 * (their q, bias and idx rows) attending over all N sources also works.
 */
export function sparseAttention(q: np.Array, k: np.Array, h: np.Array, bias: np.Array, idx: np.Array, scale: number): SparseAttentionOutput {
  const [b, n, qk] = q.shape;
  const kk = idx.shape[1];
  const keys = np.take(k, idx.ref, 1); // [B, N, K, qk]
  const scores = q.reshape([b, n, 1, qk]).mul(keys).sum(-1).mul(scale).add(bias); // [B, N, K]
  const attn = nn.softmax(scores, -1); // [B, N, K]
  const values = np.take(h, idx, 1); // [B, N, K, D]
  const out = attn.ref.reshape([b, n, kk, 1]).mul(values).sum(2); // [B, N, D]
  return { out, attn };
}

/**
 * Dense reference: softmax(scale * q k^T + bias) h over all N sources. Consumes every argument.
 * q, k: [B, N, qk], h: [B, N, D], bias: [N, N]. Returns out [B, N, D] and attn [B, N, N].
 */
export function denseAttention(q: np.Array, k: np.Array, h: np.Array, bias: np.Array, scale: number): SparseAttentionOutput {
  const scores = np.matmul(q, k.transpose([0, 2, 1])).mul(scale).add(bias); // [B, N, N]
  const attn = nn.softmax(scores, -1);
  return { out: np.matmul(attn.ref, h), attn };
}
