/**
 * Column attention: how columns communicate.
 *
 * Queries (with bias) and keys (no bias, so a column whose state is zero gets
 * no attention) are column linear maps, per column when untied. By default
 * (a Columnformer) there is one head and the value is the normed input itself,
 * with no value or output projection; `value_proj` adds both (a transformer's),
 * and `heads` splits the scores into heads, each mixing D / heads of the value
 * features. A learned N x N attention bias adds a per-connection prior
 * (initialised local in space), shared by the heads.
 */
import { nn, numpy as np } from "../engine/jax.ts";
import { columnLinear, columnLinearSpec } from "./column-linear.ts";
import { type ParamSpec, prefixSpecs } from "./param-spec.ts";
import { sparseAttention } from "./sparse-attention.ts";
import type { ColumnAttentionParams } from "./params.ts";

/** Local Gaussian attention-bias prior: max(-d^2 / (2 sigma^2), -8), from distances [N*N]. */
export function localAttentionBias(distances: Float32Array, sigma: number): Float32Array {
  return distances.map((d) => Math.max(-(d * d) / (2 * sigma * sigma), -8));
}

/** Shape of the attention projections. */
export interface AttentionShape {
  dim: number;
  /** Query/key width per head. */
  qkDim: number;
  heads: number;
  /** Value and output projections. */
  valueProj: boolean;
}

/**
 * The leaves of the projections: q, k [...lead, heads*qk, D] (q with bias) and, with value_proj,
 * v and o [...lead, D, D] with biases (see columnLinearSpec). The attention bias is the sheet's
 * business (it is N x N whatever the tying).
 */
export function columnAttentionSpec(lead: number[], shape: AttentionShape, columnAxis: number | null): ParamSpec[] {
  const { dim, qkDim, heads, valueProj } = shape;
  return [
    ...prefixSpecs("q", columnLinearSpec(lead, dim, heads * qkDim, true, columnAxis)),
    ...prefixSpecs("k", columnLinearSpec(lead, dim, heads * qkDim, false, columnAxis)),
    ...(valueProj ? [...prefixSpecs("v", columnLinearSpec(lead, dim, dim, true, columnAxis)), ...prefixSpecs("o", columnLinearSpec(lead, dim, dim, true, columnAxis))] : []),
  ];
}

/**
 * Consumes `p`, `h` and `connectivity`. h: [batch, N, D] (the normed states).
 * Returns out [batch, N, D] and attn [batch, N, N] (row i: where column i
 * reads from, averaged over heads; rows sum to 1).
 *
 * Sparse sheets pass `connectivity`, int32 [N, K] (column i reads from
 * connectivity[i, 0..K)); the attention bias is then [N, K] and attn is
 * [batch, N, K] (attn[b, i, t] = weight of source connectivity[i, t]).
 */
export function columnAttention(
  p: ColumnAttentionParams,
  h: np.Array,
  scale: number,
  heads = 1,
  connectivity?: np.Array,
): { out: np.Array; attn: np.Array } {
  const q = columnLinear(p.q, h.ref); // [batch, N, heads*qk]
  const k = columnLinear(p.k, h.ref); // [batch, N, heads*qk]
  const v = p.v ? columnLinear(p.v, h) : h; // [batch, N, D]
  let out: np.Array;
  let attn: np.Array;
  if (connectivity) {
    const [n, kk] = connectivity.shape;
    const bias = p.attn_bias ?? np.zeros([n, kk], { dtype: q.dtype });
    ({ out, attn } = heads === 1 ? sparseAttention(q, k, v, bias, connectivity, scale) : sparseMultiHead(q, k, v, bias, connectivity, scale, heads));
  } else if (heads === 1) {
    let scores = np.matmul(q, k.transpose([0, 2, 1])).mul(scale); // [batch, N, N]
    if (p.attn_bias) scores = scores.add(p.attn_bias);
    attn = nn.softmax(scores, -1);
    out = np.matmul(attn.ref, v); // [batch, N, D]
  } else {
    const [b, n, d] = v.shape;
    const perHead = (t: np.Array): np.Array => t.reshape([b, n, heads, -1]).transpose([0, 2, 1, 3]); // [batch, heads, N, width]
    let scores = np.matmul(perHead(q), perHead(k).transpose([0, 1, 3, 2])).mul(scale); // [batch, heads, N, N]
    if (p.attn_bias) scores = scores.add(p.attn_bias);
    const a = nn.softmax(scores, -1);
    out = np.matmul(a.ref, perHead(v)).transpose([0, 2, 1, 3]).reshape([b, n, d]); // [batch, N, D]
    attn = a.mean(1);
  }
  if (p.o) out = columnLinear(p.o, out);
  return { out, attn };
}

/**
 * Sparse attention with several heads (each mixes D / heads value features; the bias [N, K] is
 * shared by the heads). Consumes every argument. q, k: [B, N, heads*qk], v: [B, N, D],
 * idx: int32 [N, K]. Returns out [B, N, D] and attn [B, N, K] (mean over heads). Arrays are split
 * into heads BEFORE the gathers, so every gather feeds a multiply (see sparse-attention.ts).
 */
function sparseMultiHead(q: np.Array, k: np.Array, v: np.Array, bias: np.Array, idx: np.Array, scale: number, heads: number): { out: np.Array; attn: np.Array } {
  const [b, n, d] = v.shape;
  const [, kk] = idx.shape;
  const keys = np.take(k.reshape([b, n, heads, -1]), idx.ref, 1); // [B, N, K, heads, qk]
  const scores = q
    .reshape([b, n, 1, heads, -1])
    .mul(keys)
    .sum(-1)
    .mul(scale)
    .add(bias.reshape([n, kk, 1])); // [B, N, K, heads]
  const a = nn.softmax(scores, 2); // over the K sources
  const values = np.take(v.reshape([b, n, heads, d / heads]), idx, 1); // [B, N, K, heads, D/heads]
  const out = a.ref.reshape([b, n, kk, heads, 1]).mul(values).sum(2).reshape([b, n, d]); // [B, N, D]
  return { out, attn: a.mean(-1) };
}
