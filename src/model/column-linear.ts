/**
 * Per-column linear map: every column n has its own weight W[n] and bias b[n].
 *   y[b, n, :] = W[n] x[b, n, :] + b[n]
 */
import { numpy as np, random } from "../engine/jax.ts";
import type { ColumnLinearParams } from "./params.ts";

/**
 * Initialise a per-column linear map, weight U(-in^-1/2, in^-1/2) [N, out, in],
 * bias zeros [N, out] when `bias` is true. Consumes `key`.
 */
export function initColumnLinear(
  key: np.Array,
  numColumns: number,
  inDim: number,
  outDim: number,
  bias: boolean,
): ColumnLinearParams {
  const bound = inDim ** -0.5;
  const weight = random.uniform(key, [numColumns, outDim, inDim], { minval: -bound, maxval: bound });
  return bias ? { weight, bias: np.zeros([numColumns, outDim]) } : { weight };
}

/** Apply a per-column linear map. Consumes `p` and `x`. x: [batch, N, in] -> [batch, N, out]. */
export function columnLinear(p: ColumnLinearParams, x: np.Array): np.Array {
  const y = np.einsum("bni,noi->bno", x, p.weight);
  return p.bias ? y.add(p.bias) : y;
}
