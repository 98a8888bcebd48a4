/**
 * The column sheet on the native kernels (src/engine/native-sheet.ts): the addon's config for a
 * sheet, its parameter leaves on the host, and `nativeSheetApply`, the native counterpart of
 * sheetApply (src/model/sheet.ts) for host states.
 */
import { numpy as np } from "../engine/jax.ts";
import { type NativeSheetConfig, sheetLeaves } from "../engine/native-sheet.ts";
import type { SheetEngine } from "../engine/sheet-engine.ts";
import { connectivityK, type SheetConfig } from "./config.ts";
import { leafAt } from "./param-spec.ts";
import type { SheetParams } from "./params.ts";
import type { SheetConnectivity } from "./sheet-connectivity.ts";
import type { VisionConfig } from "./vision.ts";

/** The addon's config for a sheet. */
export function nativeSheetConfig(sheet: SheetConfig, vision: Pick<VisionConfig, "inject">, batch: number): NativeSheetConfig {
  return {
    batch,
    columns: sheet.num_columns,
    dim: sheet.dim,
    qk_dim: sheet.qk_dim,
    heads: sheet.heads,
    mlp_dim: sheet.mlp_dim,
    depth: sheet.depth,
    recurrent: sheet.recurrent,
    untie_norm: sheet.untie_norm,
    untie_attn: sheet.untie_attn,
    untie_mlp: sheet.untie_mlp,
    value_proj: sheet.value_proj,
    attn_bias: sheet.attn_bias,
    skip_attn: sheet.skip_attn,
    attn_scale: sheet.attn_scale,
    norm_eps: sheet.norm_eps,
    sources: connectivityK(sheet) ?? 0,
    inject_every: vision.inject === "every",
  };
}

/** A sheet leaf by its path in SheetParams (e.g. "attn.q.weight"). */
export function sheetLeaf(p: SheetParams, name: string): np.Array {
  const leaf = leafAt(p, name);
  if (!(leaf instanceof np.Array)) throw new Error(`sheet parameter ${name} is missing`);
  return leaf;
}

/** The sheet's leaves on the host, in addon order. Borrows `p`. */
export async function hostSheetLeaves(p: SheetParams, names: readonly string[]): Promise<Float32Array[]> {
  return Promise.all(names.map(async (name) => (await sheetLeaf(p, name).ref.data()) as Float32Array));
}


/**
 * Apply the sheet for `config.depth` steps on a SheetEngine (the native kernels or the WebGPU
 * ones). Borrows `params`.
 * x: [batch, N, D] (host) -> x: [batch, N, D] (final states), attn: [batch, depth, N, N]
 * ([batch, depth, N, K] for a sparse sheet), as sheetApply.
 */
export async function nativeSheetApply(
  engine: SheetEngine,
  params: SheetParams,
  x: Float32Array,
  batch: number,
  config: SheetConfig,
  connectivity: SheetConnectivity | null,
): Promise<{ x: Float32Array; attn: Float32Array }> {
  const kernel = engine.createSheet(nativeSheetConfig(config, { inject: "first" }, batch));
  try {
    const n = config.num_columns;
    const attn = new Float32Array(batch * config.depth * n * (connectivity?.k ?? n));
    const names = sheetLeaves(config);
    const out = await kernel.forward({ params: await hostSheetLeaves(params, names), x0: x, drive: null, connectivity: connectivity?.indices ?? null, wiringWeights: null, batch, train: false, attn });
    return { x: out.x, attn };
  } finally {
    kernel.dispose();
  }
}
