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
 * thread), which the following multiply-and-reduce consumes. Two backward passes:
 *
 * - `sparseAttention` under autodiff (`grad`, `valueAndGrad`, `jit`): the transpose of a gather is
 *   a scatter-add, which jax-js runs as a single-threaded JavaScript routine (about 60 ns per
 *   scattered element): at N = 16,384 (B 2, K 16, D = qk = 8) attention forward + backward takes
 *   1.25 s against 0.19 s for the hand-written VJP. jax-js's jit also requires a routine's inputs
 *   to be materialised buffers ("jit: routine primitive scatter input is not imm" otherwise): a
 *   gather must not feed a bare reshape or reduction, so here each gathered array feeds a
 *   multiply, whose cotangent is a real buffer, and the index array is 2-D (a flat index array
 *   plus a reshape fails).
 * - `sparseAttention` forward + `sparseAttentionBackward` (hand-written VJP): the backward reads
 *   the TRANSPOSED connectivity (for every source column, the connections that read from it,
 *   from {@link reverseConnectivity}) with gathers only, so everything runs as Wasm kernels on the
 *   worker threads. jax-js has no custom_vjp, so callers chain it with `vjp` of the rest of the
 *   model themselves (see bench/scale-sheet.ts). Its halves, {@link sparseAttentionTargetGrads}
 *   and {@link sparseAttentionSourceGrads}, work on blocks of columns.
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

/**
 * The transpose of a connectivity pattern, for gather-only backward passes: for every source
 * column m, the flat positions p = i * K + j of the R connections (i, j) with idx[i, j] = m,
 * padded to the largest out-degree R with the position N * K (a zero appended by the backward)
 * and target 0.
 */
export interface ReverseConnectivity {
  /** int32 [N, R]: flat connection positions reading from column m, or N * K (padding). */
  positions: np.Array;
  /** int32 [N, R]: the target column i of each of those connections (0 for padding). */
  targets: np.Array;
  /** Largest out-degree (connections reading from one column), at least 1. */
  r: number;
}

/** Host-side transpose of `indices` [N * K] (see {@link ReverseConnectivity}): plain arrays. */
export function reverseConnectivityHost(indices: Int32Array, n: number, k: number): { positions: Int32Array; targets: Int32Array; r: number } {
  if (indices.length !== n * k) throw new Error(`reverseConnectivity: indices has ${indices.length} entries, expected ${n} * ${k}`);
  const degree = new Int32Array(n);
  for (let p = 0; p < n * k; p++) {
    const m = indices[p];
    if (m < 0 || m >= n) throw new Error(`reverseConnectivity: indices[${p}] = ${m} is out of range 0..${n - 1}`);
    degree[m]++;
  }
  let r = 1;
  for (let m = 0; m < n; m++) if (degree[m] > r) r = degree[m];
  const positions = new Int32Array(n * r).fill(n * k);
  const targets = new Int32Array(n * r);
  const fill = new Int32Array(n);
  for (let p = 0; p < n * k; p++) {
    const m = indices[p];
    const slot = m * r + fill[m]++;
    positions[slot] = p;
    targets[slot] = Math.floor(p / k);
  }
  return { positions, targets, r };
}

/** Device-side transpose of `indices` [N * K]; see {@link ReverseConnectivity}. */
export function reverseConnectivity(indices: Int32Array, n: number, k: number): ReverseConnectivity {
  const host = reverseConnectivityHost(indices, n, k);
  return {
    positions: np.array(host.positions, { dtype: np.int32 }).reshape([n, host.r]),
    targets: np.array(host.targets, { dtype: np.int32 }).reshape([n, host.r]),
    r: host.r,
  };
}

/** Cotangents of the sparse attention inputs. */
export interface SparseAttentionGrads {
  /** [B, N, qk] */
  q: np.Array;
  /** [B, N, qk] */
  k: np.Array;
  /** [B, N, D] */
  h: np.Array;
  /** [N, K] */
  bias: np.Array;
}

/** Target-side cotangents: everything indexed by the attending column i. */
export interface SparseAttentionTargetGrads {
  /** gQ: [B, Nt, qk]. */
  q: np.Array;
  /** gS, the cotangent of the scores: [B, Nt, K]. */
  scores: np.Array;
  /** gBias = sum_b gS: [Nt, K]. */
  bias: np.Array;
}

/**
 * Target side of the hand-written VJP, for a block of Nt target columns (Nt = N for all of them).
 * Consumes every argument.
 *
 * attn: [B, Nt, K] of the targets, gOut: [B, Nt, D] their output cotangent,
 * idx: int32 [Nt, K] their sources; kSrc: [B, N, qk] and hSrc: [B, N, D] of ALL columns.
 *
 *   gA[b,i,j] = gOut[b,i] . h[b, idx[i,j]]
 *   gS        = a * (gA - sum_j a gA)
 *   gBias     = sum_b gS
 *   gQ[b,i]   = scale * sum_j gS[b,i,j] k[b, idx[i,j]]
 */
export function sparseAttentionTargetGrads(
  kSrc: np.Array,
  hSrc: np.Array,
  attn: np.Array,
  gOut: np.Array,
  idx: np.Array,
  scale: number,
): SparseAttentionTargetGrads {
  const [b, nt] = attn.shape;
  const d = gOut.shape[2];
  const kk = idx.shape[1];
  const gA = gOut.reshape([b, nt, 1, d]).mul(np.take(hSrc, idx.ref, 1)).sum(-1); // [B, Nt, K]
  const gS = attn.ref.mul(gA.ref.sub(attn.mul(gA).sum(-1, { keepdims: true }))); // [B, Nt, K]
  const gQ = gS.ref.reshape([b, nt, kk, 1]).mul(np.take(kSrc, idx, 1)).sum(2).mul(scale); // [B, Nt, qk]
  return { q: gQ, scores: gS.ref, bias: gS.sum(0) };
}

/**
 * Flatten per-connection values [B, N, K] to [B, N*K + 1] with a trailing zero, the layout
 * {@link sparseAttentionSourceGrads} reads through the reverse connectivity (padding reads 0).
 * Also takes the values as blocks of target columns ([B, Nt, K] each, in column order), which
 * are joined in the same single copy. Consumes its input(s).
 */
export function padConnections(x: np.Array | np.Array[]): np.Array {
  const parts = Array.isArray(x) ? x : [x];
  const b = parts[0].shape[0];
  const flat = parts.map((p) => p.reshape([b, p.shape[1] * p.shape[2]]));
  return np.concatenate([...flat, np.zeros([b, 1], { dtype: parts[0].dtype })], 1);
}

/**
 * Source side of the hand-written VJP, for a block of Ns source columns whose reverse
 * connectivity rows are `positions`/`targets` [Ns, R] (rows of {@link ReverseConnectivity};
 * all of them for Ns = N). Consumes every argument.
 *
 * gScores, attn: [B, N*K + 1] from {@link padConnections} (all connections);
 * q: [B, N, qk] and gOut: [B, N, D] of ALL columns.
 *
 *   gK[b,m] = scale * sum_r gS[b, pos[m,r]] q[b, tgt[m,r]]
 *   gH[b,m] = sum_r a[b, pos[m,r]] gOut[b, tgt[m,r]]
 * Returns gK: [B, Ns, qk] and gH: [B, Ns, D] (the attention's share of the value gradient).
 */
export function sparseAttentionSourceGrads(
  gScores: np.Array,
  attn: np.Array,
  q: np.Array,
  gOut: np.Array,
  positions: np.Array,
  targets: np.Array,
  scale: number,
): { k: np.Array; h: np.Array } {
  const b = q.shape[0];
  const [ns, r] = positions.shape;
  const gSRev = np.take(gScores, positions.ref, 1).reshape([b, ns, r, 1]); // [B, Ns, R, 1]
  const gK = gSRev.mul(np.take(q, targets.ref, 1)).sum(2).mul(scale); // [B, Ns, qk]
  const aRev = np.take(attn, positions, 1).reshape([b, ns, r, 1]); // [B, Ns, R, 1]
  const gH = aRev.mul(np.take(gOut, targets, 1)).sum(2); // [B, Ns, D]
  return { k: gK, h: gH };
}

/**
 * Hand-written VJP of sparse attention using gathers only (no scatter): the target side and the
 * source side above, over all N columns. Consumes every argument.
 *
 * q, k: [B, N, qk], h: [B, N, D] and attn [B, N, K] are the forward's inputs and attention;
 * gOut: [B, N, D] the cotangent of `out`; idx: int32 [N, K]; rev: the transposed pattern.
 * Returns the cotangents of q, k, h and bias (for h only the attention's share: h is also the
 * value, so a caller adds what flows into h through q and k).
 */
export function sparseAttentionBackward(
  q: np.Array,
  k: np.Array,
  h: np.Array,
  attn: np.Array,
  gOut: np.Array,
  idx: np.Array,
  rev: ReverseConnectivity,
  scale: number,
): SparseAttentionGrads {
  const t = sparseAttentionTargetGrads(k, h, attn.ref, gOut.ref, idx, scale);
  const s = sparseAttentionSourceGrads(padConnections(t.scores), padConnections(attn), q, gOut, rev.positions, rev.targets, scale);
  return { q: t.q, k: s.k, h: s.h, bias: t.bias };
}
