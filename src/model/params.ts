/**
 * Parameter trees of the column sheet. Names and layouts follow the earlier
 * PyTorch model's state dict (`sheet.attn.q.weight` is `params.attn.q.weight`),
 * so checkpoints interoperate.
 *
 * Every leaf has up to two leading axes in front of its own shape:
 *   [depth]  when the sheet is a stack (`recurrent: false`): one block per step;
 *   [N]      when the module is untied (`untie_norm/attn/mlp`): one per column.
 * The default Columnformer (recurrent, all untied) has only the column axis:
 * norm1.weight [N, D], attn.q.weight [N, qk, D], ...; a transformer stack has
 * only the depth axis: norm1.weight [depth, D], attn.q.weight [depth, qk, D].
 * The shapes below are written for one block of an untied sheet.
 */
import type { numpy as np } from "../engine/jax.ts";

type Array = np.Array;

/** Per-column linear map: weight [N, out, in], bias [N, out] ([out, in], [out] when tied). */
export interface ColumnLinearParams {
  weight: Array;
  bias?: Array;
}

/** Per-column LayerNorm affine: weight, bias [N, D] ([D] when tied). */
export interface ColumnLayerNormParams {
  weight: Array;
  bias: Array;
}

/** Column attention with `heads` heads. */
export interface ColumnAttentionParams {
  /** Query: weight [N, heads*qk_dim, D], bias [N, heads*qk_dim]. */
  q: { weight: Array; bias: Array };
  /** Key: weight [N, heads*qk_dim, D], no bias (zero activations get zero attention). */
  k: { weight: Array };
  /** Value projection (value_proj): weight [N, D, D], bias [N, D]. */
  v?: { weight: Array; bias: Array };
  /** Output projection (value_proj): weight [N, D, D], bias [N, D]. */
  o?: { weight: Array; bias: Array };
  /**
   * Learned attention bias [N, N] (target column i, source column j), shared by the heads;
   * [N, K] for a sparse sheet (entry (i, t): the connection from source connectivity[i, t]).
   */
  attn_bias?: Array;
}

/** Per-column MLP: fc1 [N, mlp_dim, D] with bias, fc2 [N, D, mlp_dim] without. */
export interface ColumnMlpParams {
  fc1: { weight: Array; bias: Array };
  fc2: { weight: Array };
}

/** The whole sheet: one block applied `depth` times, or `depth` blocks stacked along a leading axis. */
export interface SheetParams {
  norm1: ColumnLayerNormParams;
  attn: ColumnAttentionParams;
  norm2: ColumnLayerNormParams;
  mlp: ColumnMlpParams;
}
