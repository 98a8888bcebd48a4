/**
 * Column MLP: the computation inside a column.
 *   fc1 (D -> mlp_dim, bias) -> GELU (exact, erf) -> fc2 (mlp_dim -> D, no bias)
 */
import { nn, type numpy as np } from "../engine/jax.ts";
import { splitKey } from "../engine/prng.ts";
import { columnLinear, initColumnLinear } from "./column-linear.ts";
import type { ColumnMlpParams } from "./params.ts";

/** `lead`: [N] untied, [] tied (see initColumnLinear). Consumes `key`. */
export function initColumnMlp(key: np.Array, lead: number[], dim: number, mlpDim: number): ColumnMlpParams {
  const [k1, k2] = splitKey(key, 2);
  const fc1 = initColumnLinear(k1, lead, dim, mlpDim, true);
  const fc2 = initColumnLinear(k2, lead, mlpDim, dim, false);
  return { fc1: { weight: fc1.weight, bias: fc1.bias! }, fc2: { weight: fc2.weight } };
}

/** Consumes `p` and `x`. x: [batch, N, D] -> [batch, N, D]. */
export function columnMlp(p: ColumnMlpParams, x: np.Array): np.Array {
  const hidden = nn.gelu(columnLinear(p.fc1, x), { approximate: false }); // [batch, N, mlp_dim]
  return columnLinear(p.fc2, hidden);
}
