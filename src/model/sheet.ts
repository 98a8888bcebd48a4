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
import { columnAttention, initColumnAttention, localAttentionBias } from "./attention.ts";
import { connectivityK, type SheetConfig } from "./config.ts";
import { columnLayerNorm, initColumnLayerNorm } from "./layer-norm.ts";
import { columnMlp, initColumnMlp } from "./mlp.ts";
import type { SheetParams } from "./params.ts";
import { resolveConnectivity, type SheetConnectivity } from "./sheet-connectivity.ts";

/** Leading axes of a module's leaves: [depth] for a stack, then [N] when untied (see params.ts). */
export function leadingAxes(config: SheetConfig, untied: boolean): number[] {
  return [...(config.recurrent ? [] : [config.depth]), ...(untied ? [config.num_columns] : [])];
}

/**
 * Randomly initialise the sheet's parameters; the same seed gives identical parameters.
 * A sparse sheet's attention bias is [N, K] over its connections (`connectivity`, resolved from
 * the config and geometry when not given).
 */
export function initSheet(config: SheetConfig, geometry: Geometry, seed: number, connectivity?: SheetConnectivity | null): SheetParams {
  return initSheetFromKey(config, geometry, random.key(seed), connectivity);
}

/** Like initSheet, from a PRNG key (consumed). */
export function initSheetFromKey(config: SheetConfig, geometry: Geometry, key: np.Array, connectivity?: SheetConnectivity | null): SheetParams {
  const { num_columns: n, dim, qk_dim, heads, mlp_dim } = config;
  if (geometry.numColumns !== n) {
    throw new Error(`initSheet: config has ${n} columns but the geometry has ${geometry.numColumns}`);
  }
  const [kAttn, kMlp] = splitKey(key, 2);
  const attn: SheetParams["attn"] = initColumnAttention(kAttn, leadingAxes(config, config.untie_attn), {
    dim,
    qkDim: qk_dim,
    heads,
    valueProj: config.value_proj,
  });
  if (config.attn_bias) {
    // dense: over all N x N pairs; sparse: over the N x K connections
    const sparse = connectivityK(config) === null ? null : (connectivity ?? resolveConnectivity(config, geometry));
    const distances = sparse ? sparse.distances : distanceMatrix(geometry);
    const width = sparse ? sparse.k : n;
    const prior = config.attn_bias_init === "local" ? localAttentionBias(distances, config.attn_bias_sigma) : new Float32Array(n * width);
    const blocks = config.recurrent ? 1 : config.depth;
    const tiled = new Float32Array(blocks * n * width);
    for (let b = 0; b < blocks; b++) tiled.set(prior, b * n * width);
    attn.attn_bias = np.array(tiled).reshape([...leadingAxes(config, false), n, width]);
  }
  return {
    norm1: initColumnLayerNorm(leadingAxes(config, config.untie_norm), dim),
    attn,
    norm2: initColumnLayerNorm(leadingAxes(config, config.untie_norm), dim),
    mlp: initColumnMlp(kMlp, leadingAxes(config, config.untie_mlp), dim, mlp_dim),
  };
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
