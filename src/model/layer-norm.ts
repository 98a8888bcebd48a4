/**
 * Per-column LayerNorm: normalise each column's state over its D features,
 * then apply that column's own affine weight and bias.
 */
import { numpy as np } from "../engine/jax.ts";
import type { ColumnLayerNormParams } from "./params.ts";

/** Weight ones, bias zeros, both [N, D]. */
export function initColumnLayerNorm(numColumns: number, dim: number): ColumnLayerNormParams {
  return { weight: np.ones([numColumns, dim]), bias: np.zeros([numColumns, dim]) };
}

/** Consumes `p` and `x`. x: [batch, N, D] -> [batch, N, D]. */
export function columnLayerNorm(p: ColumnLayerNormParams, x: np.Array, eps: number): np.Array {
  const centred = x.ref.sub(x.mean(-1, { keepdims: true }));
  const variance = np.square(centred.ref).mean(-1, { keepdims: true });
  const normed = centred.div(np.sqrt(variance.add(eps)));
  return normed.mul(p.weight).add(p.bias);
}
