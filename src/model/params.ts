/**
 * Parameter trees of the column sheet. Names and layouts follow the earlier
 * PyTorch model's state dict (`sheet.attn.q.weight` is `params.attn.q.weight`),
 * so checkpoints interoperate. Leading axis N = columns: nothing is shared
 * across columns.
 */
import type { numpy as np } from "../engine/jax.ts";

type Array = np.Array;

/** Per-column linear map: weight [N, out, in], bias [N, out]. */
export interface ColumnLinearParams {
  weight: Array;
  bias?: Array;
}

/** Per-column LayerNorm affine: weight, bias [N, D]. */
export interface ColumnLayerNormParams {
  weight: Array;
  bias: Array;
}

/** Single-head column attention. */
export interface ColumnAttentionParams {
  /** Query: weight [N, qk_dim, D], bias [N, qk_dim]. */
  q: { weight: Array; bias: Array };
  /** Key: weight [N, qk_dim, D], no bias (zero activations get zero attention). */
  k: { weight: Array };
  /** Learned attention bias [N, N] (target column i, source column j). */
  attn_bias: Array;
}

/** Per-column MLP: fc1 [N, mlp_dim, D] with bias, fc2 [N, D, mlp_dim] without. */
export interface ColumnMlpParams {
  fc1: { weight: Array; bias: Array };
  fc2: { weight: Array };
}

/** The whole sheet (one block, applied `depth` times). */
export interface SheetParams {
  norm1: ColumnLayerNormParams;
  attn: ColumnAttentionParams;
  norm2: ColumnLayerNormParams;
  mlp: ColumnMlpParams;
}
