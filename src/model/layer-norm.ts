/**
 * Column LayerNorm: normalise each column's state over its D features, then
 * apply an affine weight and bias, the column's own ([N, D], untied) or one
 * shared by all columns ([D], tied).
 */
import { numpy as np } from "../engine/jax.ts";
import type { ColumnLayerNormParams } from "./params.ts";

/** Weight ones, bias zeros, both [...lead, D] (lead: [N] untied, [] tied, with [depth] in front for a stack). */
export function initColumnLayerNorm(lead: number[], dim: number): ColumnLayerNormParams {
  return { weight: np.ones([...lead, dim]), bias: np.zeros([...lead, dim]) };
}

/** Consumes `p` and `x`. x: [batch, N, D] -> [batch, N, D]. */
export function columnLayerNorm(p: ColumnLayerNormParams, x: np.Array, eps: number): np.Array {
  const centred = x.ref.sub(x.mean(-1, { keepdims: true }));
  const variance = np.square(centred.ref).mean(-1, { keepdims: true });
  const normed = centred.div(np.sqrt(variance.add(eps)));
  return normed.mul(p.weight).add(p.bias);
}
