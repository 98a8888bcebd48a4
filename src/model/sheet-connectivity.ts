/**
 * The connectivity of a sparse sheet: for every column i, the K source columns it attends to,
 * `indices` [N, K] int32 (row-major; entry 0 of a library-built row is the column itself).
 *
 * It is part of the model but not trained: it travels next to the parameters (an int32 input
 * of the jitted step, never a leaf of the parameter tree), is saved in checkpoints as the
 * safetensors I32 tensor `sheet.connectivity` [N, K], and a checkpoint's indices win over
 * recomputing them from the config. Attention maps of a sparse sheet are [..., N, K]:
 * attn[..., i, t] is the weight of source indices[i, t]; {@link scatterAttention} turns them
 * into dense [..., N, N] maps for the analysis.
 */
import { numpy as np } from "../engine/jax.ts";
import { connectionDistances, connectivityFromFile, localConnectivity, smallWorldConnectivity, validateConnectivity } from "../geometry/connectivity.ts";
import type { Geometry } from "../geometry/index.ts";
import { geometryMetric } from "../geometry/metric.ts";
import { connectivityK, type SheetConfig } from "./config.ts";

/** A resolved sparse connectivity. */
export interface SheetConnectivity {
  n: number;
  k: number;
  /** Source columns [N * K], row-major. */
  indices: Int32Array;
  /** Distance of every connection [N * K]: distances[i*K + t] = d(i, indices[i*K + t]) in the geometry's metric. */
  distances: Float32Array;
}

/**
 * The connectivity of a sheet: null for a dense one; else `indices` (e.g. a checkpoint's,
 * validated: shape N * K, range, distinct sources per row) or, when not given, built from the
 * config: `local` and `small_world` choose neighbours in the geometry's own metric (no N x N
 * matrix), `file` reads the file. Throws one line naming the problem.
 */
export function resolveConnectivity(config: SheetConfig, geometry: Geometry, indices?: Int32Array | null): SheetConnectivity | null {
  const spec = config.connectivity;
  if (!spec || spec.kind === "dense") {
    if (indices) throw new Error(`connectivity: the sheet is dense but sparse indices were given`);
    return null;
  }
  const n = config.num_columns;
  const k = connectivityK(config)!;
  if (geometry.numColumns !== n) throw new Error(`connectivity: the geometry has ${geometry.numColumns} columns, the sheet ${n}`);
  let idx: Int32Array;
  if (indices) {
    validateConnectivity(indices, n, k, `connectivity (${n} x ${k} indices)`);
    idx = indices;
  } else if (spec.kind === "local") {
    idx = localConnectivity(geometryMetric(geometry), k);
  } else if (spec.kind === "small_world") {
    idx = smallWorldConnectivity(geometryMetric(geometry), spec.k_local, spec.k_long, { seed: spec.seed ?? 0, decay: spec.decay });
  } else {
    const file = connectivityFromFile(spec.path, n);
    if (file.k !== k) throw new Error(`connectivity file ${spec.path}: rows have ${file.k} sources but the config says k = ${k}`);
    idx = file.indices;
  }
  return connectivityOf(geometry, idx, k);
}

/** A connectivity from its indices [N * K], with the connection distances in the geometry's metric. */
export function connectivityOf(geometry: Geometry, indices: Int32Array, k: number): SheetConnectivity {
  return { n: geometry.numColumns, k, indices, distances: connectionDistances(geometryMetric(geometry), indices, k) };
}

/** The indices on the device: int32 [N, K]. */
export function connectivityArray(c: SheetConnectivity): np.Array {
  return np.array(c.indices, { dtype: np.int32 }).reshape([c.n, c.k]);
}

/**
 * Scatter sparse maps [..., N, K] (flat, any number of leading maps) into dense [..., N, N]
 * (zeros where there is no connection). Fine for N up to a few thousand.
 */
export function scatterAttention(maps: ArrayLike<number>, c: SheetConnectivity): Float32Array {
  const { n, k, indices } = c;
  const nk = n * k;
  if (maps.length % nk !== 0) throw new Error(`scatterAttention: ${maps.length} values is not a multiple of N * K = ${nk}`);
  const count = maps.length / nk;
  const out = new Float32Array(count * n * n);
  for (let m = 0; m < count; m++) {
    for (let p = 0; p < nk; p++) out[m * n * n + Math.floor(p / k) * n + indices[p]] += maps[m * nk + p];
  }
  return out;
}
