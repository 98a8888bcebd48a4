/**
 * Column MLP: the computation inside a column.
 *   fc1 (D -> mlp_dim, bias) -> GELU (exact, erf) -> fc2 (mlp_dim -> D, no bias)
 */
import { nn, type numpy as np } from "../engine/jax.ts";
import { columnLinear, columnLinearSpec } from "./column-linear.ts";
import { type ParamSpec, prefixSpecs } from "./param-spec.ts";
import type { ColumnMlpParams } from "./params.ts";

/** The leaves: fc1 [...lead, mlp_dim, D] with bias, fc2 [...lead, D, mlp_dim] without (see columnLinearSpec; streams "fc1.weight", "fc2.weight"). */
export function columnMlpSpec(lead: number[], dim: number, mlpDim: number, columnAxis: number | null): ParamSpec[] {
  return [...prefixSpecs("fc1", columnLinearSpec(lead, dim, mlpDim, true, columnAxis)), ...prefixSpecs("fc2", columnLinearSpec(lead, mlpDim, dim, false, columnAxis))];
}

/** Consumes `p` and `x`. x: [batch, N, D] -> [batch, N, D]. */
export function columnMlp(p: ColumnMlpParams, x: np.Array): np.Array {
  const hidden = nn.gelu(columnLinear(p.fc1, x), { approximate: false }); // [batch, N, mlp_dim]
  return columnLinear(p.fc2, hidden);
}
