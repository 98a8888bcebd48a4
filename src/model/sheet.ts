/**
 * The Columnformer sheet: ONE layer of N columns, each an attention module
 * (communication between columns) plus an MLP (computation inside a column),
 * with no weights shared between columns, applied recurrently for `depth` steps.
 *
 *   h = norm1(x);  a, A = attn(h);  x = x + a   (x = a without skip_attn)
 *   x = x + mlp(norm2(x))
 *
 * The same code is a transformer when the switches are flipped: tie the norms,
 * attention and MLP across columns (`untie_* = false`), give every step its
 * own block (`recurrent = false`), add value/output projections and heads.
 * Each switch works alone, so each difference between the two can be tested.
 */
import { numpy as np, random, tree } from "../engine/jax.ts";
import { splitKey } from "../engine/prng.ts";
import type { Geometry } from "../geometry/index.ts";
import { distanceMatrix } from "../geometry/metric.ts";
import { columnAttention, columnAttentionSpec, localAttentionBias } from "./attention.ts";
import { connectivityK, type SheetConfig } from "./config.ts";
import { columnLayerNorm, columnLayerNormSpec } from "./layer-norm.ts";
import { columnMlp, columnMlpSpec } from "./mlp.ts";
import { initParams, type ParamSpec, prefixSpecs } from "./param-spec.ts";
import type { SheetParams } from "./params.ts";
import { resolveConnectivity, type SheetConnectivity } from "./sheet-connectivity.ts";

/** Leading axes of a module's leaves: [depth] for a stack, then [N] when untied (see params.ts). */
export function leadingAxes(config: SheetConfig, untied: boolean): number[] {
  return [...(config.recurrent ? [] : [config.depth]), ...(untied ? [config.num_columns] : [])];
}

/** Where the N columns are in a module's leaves: after [depth] for a stack; null when the module is tied. */
function columnAxis(config: SheetConfig, untied: boolean): number | null {
  return untied ? (config.recurrent ? 0 : 1) : null;
}

/**
 * The sheet's leaves (see params.ts for the layouts), in state-dict order. The attention bias
 * is [..., N, N] over all pairs, or [..., N, K] over a sparse sheet's connections; its local
 * prior is computed from `geometry` (and `connectivity`, resolved from the config when not
 * given) when the leaves are initialised, so shapes and counts need no geometry.
 */
export function sheetParamSpecs(config: SheetConfig, geometry?: Geometry, connectivity?: SheetConnectivity | null): ParamSpec[] {
  const { num_columns: n, dim, qk_dim, heads, mlp_dim } = config;
  const norm = (name: string) => prefixSpecs(name, columnLayerNormSpec(leadingAxes(config, config.untie_norm), dim, columnAxis(config, config.untie_norm)));
  const attention = { dim, qkDim: qk_dim, heads, valueProj: config.value_proj };
  const specs = [...norm("norm1"), ...prefixSpecs("attn", columnAttentionSpec(leadingAxes(config, config.untie_attn), attention, columnAxis(config, config.untie_attn)))];
  if (config.attn_bias) {
    // dense: over all N x N pairs; sparse: over the N x K connections; one prior per block
    const width = connectivityK(config) ?? n;
    const localPrior = (): Float32Array => {
      if (!geometry) throw new Error("sheetParamSpecs: the local attention-bias prior needs the geometry");
      const sparse = connectivityK(config) === null ? null : (connectivity ?? resolveConnectivity(config, geometry));
      const prior = localAttentionBias(sparse ? sparse.distances : distanceMatrix(geometry), config.attn_bias_sigma);
      const blocks = config.recurrent ? 1 : config.depth;
      const tiled = new Float32Array(blocks * n * width);
      for (let b = 0; b < blocks; b++) tiled.set(prior, b * n * width);
      return tiled;
    };
    specs.push({
      path: "attn.attn_bias",
      shape: [...leadingAxes(config, false), n, width],
      init: config.attn_bias_init === "local" ? { kind: "values", values: localPrior } : { kind: "zeros" },
      columnAxis: columnAxis(config, true),
    });
  }
  specs.push(...norm("norm2"), ...prefixSpecs("mlp", columnMlpSpec(leadingAxes(config, config.untie_mlp), dim, mlp_dim, columnAxis(config, config.untie_mlp))));
  return specs;
}

/** One PRNG key per random leaf of the sheet, split from `key` (consumed): attention [q, k(, v, o)], then MLP [fc1, fc2]. */
export function sheetStreams(config: SheetConfig, key: np.Array): Record<string, np.Array> {
  const [kAttn, kMlp] = splitKey(key, 2);
  const [kq, kk, kv, ko] = splitKey(kAttn, config.value_proj ? 4 : 2);
  const [k1, k2] = splitKey(kMlp, 2);
  return {
    "attn.q.weight": kq,
    "attn.k.weight": kk,
    ...(config.value_proj ? { "attn.v.weight": kv, "attn.o.weight": ko } : {}),
    "mlp.fc1.weight": k1,
    "mlp.fc2.weight": k2,
  };
}

/** Refuse a geometry whose column count is not the sheet's. */
export function checkSheetGeometry(config: SheetConfig, geometry: Geometry): void {
  if (geometry.numColumns !== config.num_columns) {
    throw new Error(`initSheet: config has ${config.num_columns} columns but the geometry has ${geometry.numColumns}`);
  }
}

/**
 * Randomly initialise the sheet's parameters; the same seed gives identical parameters.
 * A sparse sheet's attention bias is [N, K] over its connections (`connectivity`, resolved from
 * the config and geometry when not given).
 */
export function initSheet(config: SheetConfig, geometry: Geometry, seed: number, connectivity?: SheetConnectivity | null): SheetParams {
  checkSheetGeometry(config, geometry);
  return initParams(sheetParamSpecs(config, geometry, connectivity), sheetStreams(config, random.key(seed))) as unknown as SheetParams;
}

/** The block used at `step`: the one block of a recurrent sheet, or block `step` of a stack. Borrows `params`. */
export function blockAt(params: SheetParams, step: number, config: SheetConfig): SheetParams {
  if (config.recurrent) return tree.ref(params);
  const [leaves, def] = tree.flatten(params as unknown as tree.JsTree<np.Array>);
  return tree.unflatten(def, leaves.map((leaf) => leaf.ref.slice(step))) as unknown as SheetParams;
}

/**
 * One step of the sheet with one block's parameters (see blockAt). Consumes `p`, `x` and `connectivity`.
 * x: [batch, N, D] -> x: [batch, N, D], attn: [batch, N, N] ([batch, N, K] for a sparse sheet,
 * whose `connectivity` int32 [N, K] is required).
 */
export function sheetStep(p: SheetParams, x: np.Array, config: SheetConfig, connectivity?: np.Array): { x: np.Array; attn: np.Array } {
  checkConnectivityArg(config, connectivity, "sheetStep");
  const h = columnLayerNorm(p.norm1, x.ref, config.norm_eps);
  const { out, attn } = columnAttention(p.attn, h, config.attn_scale, config.heads, connectivity);
  let y: np.Array;
  if (config.skip_attn) y = x.add(out);
  else {
    x.dispose();
    y = out;
  }
  y = y.ref.add(columnMlp(p.mlp, columnLayerNorm(p.norm2, y, config.norm_eps)));
  return { x: y, attn };
}

/**
 * Apply the sheet for `config.depth` steps. Consumes `params`, `x` and `connectivity`.
 * x: [batch, N, D] (initial column states) -> x: [batch, N, D] (final states),
 * attn: [batch, depth, N, N] (the attention map of every step); for a sparse sheet
 * (`connectivity` int32 [N, K] required) attn is [batch, depth, N, K].
 */
export function sheetApply(
  params: SheetParams,
  x: np.Array,
  config: SheetConfig,
  connectivity?: np.Array,
): { x: np.Array; attn: np.Array } {
  checkConnectivityArg(config, connectivity, "sheetApply");
  const maps: np.Array[] = [];
  for (let step = 0; step < config.depth; step++) {
    const out = sheetStep(blockAt(params, step, config), x, config, connectivity?.ref);
    x = out.x;
    maps.push(out.attn);
  }
  connectivity?.dispose();
  tree.dispose(params);
  return { x, attn: np.stack(maps, 1) };
}

/** A sparse sheet needs its connectivity [N, K]; a dense one takes none. */
export function checkConnectivityArg(config: SheetConfig, connectivity: np.Array | undefined, where: string): void {
  const k = connectivityK(config);
  if (k === null) {
    if (connectivity) throw new Error(`${where}: the sheet is dense but a connectivity array was passed`);
    return;
  }
  const n = config.num_columns;
  if (!connectivity) throw new Error(`${where}: the sheet is sparse (connectivity ${config.connectivity!.kind}, K = ${k}): pass its connectivity, int32 [${n}, ${k}]`);
  const s = connectivity.shape;
  if (s.length !== 2 || s[0] !== n || s[1] !== k) throw new Error(`${where}: connectivity is [${s.join(", ")}], expected [${n}, ${k}]`);
}
