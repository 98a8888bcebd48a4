/**
 * Column linear map. Untied, every column n has its own weight and bias:
 *   y[b, n, :] = W[n] x[b, n, :] + b[n]          W: [N, out, in], b: [N, out]
 * Tied, all columns share one (a transformer's linear layer):
 *   y[b, n, :] = W x[b, n, :] + b                W: [out, in],    b: [out]
 */
import { numpy as np } from "../engine/jax.ts";
import type { ParamSpec } from "./param-spec.ts";
import type { ColumnLinearParams } from "./params.ts";

/**
 * The leaves of a column linear map: weight [...lead, out, in] ~ U(-in^-1/2, in^-1/2) (PRNG
 * stream "weight"), bias zeros [...lead, out] when `bias`. `lead` is [N] for one map per column,
 * [] for a shared map, [depth, N] / [depth] for a stack of blocks; `columnAxis` is where N is
 * (null when shared).
 */
export function columnLinearSpec(lead: number[], inDim: number, outDim: number, bias: boolean, columnAxis: number | null): ParamSpec[] {
  return [
    { path: "weight", shape: [...lead, outDim, inDim], init: { kind: "uniform", bound: inDim ** -0.5, stream: "weight" }, columnAxis },
    ...(bias ? [{ path: "bias", shape: [...lead, outDim], init: { kind: "zeros" }, columnAxis } satisfies ParamSpec] : []),
  ];
}

/**
 * Apply a column linear map, untied (weight [N, out, in]) or tied (weight [out, in]).
 * Consumes `p` and `x`. x: [batch, N, in] -> [batch, N, out].
 */
export function columnLinear(p: ColumnLinearParams, x: np.Array): np.Array {
  // untied: one batched matmul over columns, [N, B, in] x [N, in, out] (faster on jax-js's Wasm
  // backend than einsum "bni,noi->bno", which keeps the batch axis outermost)
  const y = p.weight.ndim === 3 ? np.matmul(x.transpose([1, 0, 2]), p.weight.transpose([0, 2, 1])).transpose([1, 0, 2]) : np.matmul(x, p.weight.transpose());
  return p.bias ? y.add(p.bias) : y;
}
