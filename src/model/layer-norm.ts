/**
 * Column LayerNorm: normalise each column's state over its D features, then
 * apply an affine weight and bias, the column's own ([N, D], untied) or one
 * shared by all columns ([D], tied).
 */
import { numpy as np } from "../engine/jax.ts";
import type { ParamSpec } from "./param-spec.ts";
import type { ColumnLayerNormParams } from "./params.ts";

/** The leaves: weight ones, bias zeros, both [...lead, D] (lead: [N] untied, [] tied, with [depth] in front for a stack; N at `columnAxis`). */
export function columnLayerNormSpec(lead: number[], dim: number, columnAxis: number | null): ParamSpec[] {
  return [
    { path: "weight", shape: [...lead, dim], init: { kind: "ones" }, columnAxis },
    { path: "bias", shape: [...lead, dim], init: { kind: "zeros" }, columnAxis },
  ];
}

/** Consumes `p` and `x`. x: [batch, N, D] -> [batch, N, D]. */
export function columnLayerNorm(p: ColumnLayerNormParams, x: np.Array, eps: number): np.Array {
  const centred = x.ref.sub(x.mean(-1, { keepdims: true }));
  const variance = np.square(centred.ref).mean(-1, { keepdims: true });
  const normed = centred.div(np.sqrt(variance.add(eps)));
  return normed.mul(p.weight).add(p.bias);
}
