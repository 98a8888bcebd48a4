/**
 * The Columnformer sheet: ONE layer of N columns, each an attention module
 * (communication between columns) plus an MLP (computation inside a column),
 * with no weights shared between columns, applied recurrently for `depth` steps.
 *
 *   h = norm1(x);  a, A = attn(h);  x = x + a   (x = a without skip_attn)
 *   x = x + mlp(norm2(x))
 */
import { numpy as np, random, tree } from "../engine/jax.ts";
import { splitKey } from "../engine/prng.ts";
import type { Geometry } from "../geometry/index.ts";
import { columnAttention, initColumnAttention, localAttentionBias } from "./attention.ts";
import type { SheetConfig } from "./config.ts";
import { columnLayerNorm, initColumnLayerNorm } from "./layer-norm.ts";
import { columnMlp, initColumnMlp } from "./mlp.ts";
import type { SheetParams } from "./params.ts";

/** Randomly initialise the sheet's parameters; the same seed gives identical parameters. */
export function initSheet(config: SheetConfig, geometry: Geometry, seed: number): SheetParams {
  return initSheetFromKey(config, geometry, random.key(seed));
}

/** Like initSheet, from a PRNG key (consumed). */
export function initSheetFromKey(config: SheetConfig, geometry: Geometry, key: np.Array): SheetParams {
  const { num_columns: n, dim, qk_dim, mlp_dim } = config;
  if (geometry.numColumns !== n) {
    throw new Error(`initSheet: config has ${n} columns but the geometry has ${geometry.numColumns}`);
  }
  const attnBias =
    config.attn_bias_init === "local"
      ? localAttentionBias(geometry.distances, config.attn_bias_sigma)
      : new Float32Array(n * n);
  const [kAttn, kMlp] = splitKey(key, 2);
  return {
    norm1: initColumnLayerNorm(n, dim),
    attn: initColumnAttention(kAttn, n, dim, qk_dim, attnBias),
    norm2: initColumnLayerNorm(n, dim),
    mlp: initColumnMlp(kMlp, n, dim, mlp_dim),
  };
}

/**
 * One recurrent step of the sheet. Consumes `p` and `x`.
 * x: [batch, N, D] -> x: [batch, N, D], attn: [batch, N, N].
 */
export function sheetStep(p: SheetParams, x: np.Array, config: SheetConfig): { x: np.Array; attn: np.Array } {
  const h = columnLayerNorm(p.norm1, x.ref, config.norm_eps);
  const { out, attn } = columnAttention(p.attn, h, config.attn_scale);
  let y = config.skip_attn ? x.add(out) : (x.dispose(), out);
  y = y.ref.add(columnMlp(p.mlp, columnLayerNorm(p.norm2, y, config.norm_eps)));
  return { x: y, attn };
}

/**
 * Apply the sheet for `config.depth` recurrent steps. Consumes `params` and `x`.
 * x: [batch, N, D] (initial column states) -> x: [batch, N, D] (final states),
 * attn: [batch, depth, N, N] (the attention map of every step).
 */
export function sheetApply(
  params: SheetParams,
  x: np.Array,
  config: SheetConfig,
): { x: np.Array; attn: np.Array } {
  const maps: np.Array[] = [];
  for (let step = 0; step < config.depth; step++) {
    const out = sheetStep(tree.ref(params), x, config);
    x = out.x;
    maps.push(out.attn);
  }
  tree.dispose(params);
  return { x, attn: np.stack(maps, 1) };
}
