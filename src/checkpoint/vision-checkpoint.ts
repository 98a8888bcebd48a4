/**
 * Checkpoints of the vision model: a sheet checkpoint (see checkpoint.ts)
 * plus the front end and readout tensors (`patch_embed.weight`, `mask_token`,
 * `decoder.weight`, `head.weight`, ...) and metadata `vision` (the vision
 * config as JSON), `train_config` and `step`. Optimiser state goes to a
 * sibling file with tensors `mu.<param>` and `nu.<param>`.
 */
import { numpy as np, tree } from "../engine/jax.ts";
import type { Geometry } from "../geometry/index.ts";
import { formatSchemaError } from "../io/schema-errors.ts";
import type { ConnectivitySpec, SheetConfig } from "../model/config.ts";
import type { SheetConnectivity } from "../model/sheet-connectivity.ts";
import { specShapes, specSize } from "../model/param-spec.ts";
import { type VisionConfig, type VisionLayout, type VisionParams, visionLayout, visionParamSpecs } from "../model/vision.ts";
import type { AdamWState } from "../optim/adamw.ts";
import { visionConfigSchema } from "../model/vision-config.ts";
import { checkpointConfig, checkpointConnectivity, firstNonFinite, saveSheetCheckpoint, sheetCheckpointFromFile, tensorsToTree } from "./checkpoint.ts";
import { namedLeaves, type ParamTree, treeToTensors } from "../engine/param-tree.ts";
import { readSafetensors, type SafetensorsFile, writeSafetensors } from "../io/safetensors.ts";

/** Shapes of the non-sheet tensors of a vision model, from its parameter specs (src/model/vision.ts). */
export function visionTensorShapes(sheet: SheetConfig, vision: VisionConfig, layout: VisionLayout): Record<string, number[]> {
  return specShapes(visionParamSpecs(sheet, vision, layout).filter((s) => !s.path.startsWith("sheet.")));
}

/** Trainable scalars of the whole vision model (sheet, front end and readout), from the config alone. */
export function visionParameterCount(sheet: SheetConfig, vision: VisionConfig, layout: VisionLayout): number {
  return specSize(visionParamSpecs(sheet, vision, layout));
}

/** A loaded vision checkpoint. */
export interface VisionCheckpoint {
  sheet: SheetConfig;
  vision: VisionConfig;
  geometry: Geometry;
  layout: VisionLayout;
  params: VisionParams;
  /** A sparse sheet's connectivity (`sheet.connectivity` [N, K]), or null for a dense sheet. */
  connectivity: SheetConnectivity | null;
  /** Training step at which it was written (0 if unknown). */
  step: number;
  metadata: Record<string, string>;
}

/** Save the vision model atomically. Borrows `params`. `connectivity`: a sparse sheet's (rebuilt from the config when not given). */
export async function saveVisionCheckpoint(
  path: string,
  sheet: SheetConfig,
  vision: VisionConfig,
  geometry: Geometry,
  params: VisionParams,
  metadata: Record<string, string> = {},
  connectivity?: SheetConnectivity | null,
): Promise<void> {
  const { sheet: sheetParams, ...rest } = params;
  await saveSheetCheckpoint(path, sheet, geometry, sheetParams, {
    tensors: await treeToTensors(rest),
    metadata: { ...metadata, vision: JSON.stringify(vision) },
    connectivity,
  });
}

/** Read the vision config stored in a checkpoint file. */
export function checkpointVisionConfig(file: SafetensorsFile, source: string): VisionConfig {
  if (file.metadata.vision === undefined) {
    throw new Error(`${source}: a bare sheet checkpoint (no "vision" metadata); use a checkpoint written by columnformer train`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(file.metadata.vision);
  } catch (e) {
    throw new Error(`${source}: metadata "vision" is not valid JSON (${(e as Error).message}); the file is damaged or was not written by columnformer`);
  }
  const parsed = visionConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`${source}: metadata "vision" is invalid: ${formatSchemaError(parsed.error, "vision")}`);
  }
  return parsed.data;
}

/** Load and validate a vision checkpoint (every tensor checked by name, dtype and shape). */
export async function loadVisionCheckpoint(path: string): Promise<VisionCheckpoint> {
  return visionCheckpointFromFile(await readSafetensors(path), path);
}

/** A vision checkpoint from its decoded file (also the viewer's path: bytes, no file system); `source` names it in messages. */
export function visionCheckpointFromFile(file: SafetensorsFile, source: string): VisionCheckpoint {
  const { config: sheet, geometry, params: sheetParams, connectivity } = sheetCheckpointFromFile(file, source);
  const vision = checkpointVisionConfig(file, source);
  const bad = firstNonFinite(file.tensors);
  if (bad) {
    tree.dispose(sheetParams);
    throw new Error(
      `${source}: tensor ${JSON.stringify(bad.name)} has ${bad.count} non-finite value${bad.count === 1 ? "" : "s"} (NaN or infinity): the model diverged; use an earlier checkpoint of its run`,
    );
  }
  const layout = visionLayout(vision, geometry);
  const rest = tensorsToTree(file, visionTensorShapes(sheet, vision, layout), source);
  const params = { ...rest, sheet: sheetParams } as unknown as VisionParams;
  return { sheet, vision, geometry, layout, params, connectivity, step: Number(file.metadata.step ?? 0), metadata: file.metadata };
}

/** Peek at a checkpoint's configs without building arrays. */
export async function readVisionCheckpointConfig(path: string): Promise<{ sheet: SheetConfig; vision: VisionConfig; geometry: Geometry }> {
  const file = await readSafetensors(path);
  const { config, geometry } = checkpointConfig(file, path);
  return { sheet: config, vision: checkpointVisionConfig(file, path), geometry };
}

/**
 * A sparse checkpoint's connectivity: its indices [N * K] (validated) and its resolved spec
 * (a `file` spec carries its k, so the file need not be read again); null for a dense sheet.
 */
export async function readCheckpointConnectivity(path: string): Promise<{ indices: Int32Array; spec: ConnectivitySpec } | null> {
  const file = await readSafetensors(path);
  const { config, geometry } = checkpointConfig(file, path);
  const c = checkpointConnectivity(file, config, geometry, path);
  return c ? { indices: c.indices, spec: config.connectivity! } : null;
}

/** Save AdamW state (moments as `mu.<param>`, `nu.<param>`; step in metadata). Borrows `state`. */
export async function saveOptimizerState(path: string, state: AdamWState<VisionParams>): Promise<void> {
  const tensors = { ...(await treeToTensors(state.mu, "mu")), ...(await treeToTensors(state.nu, "nu")) };
  await writeSafetensors(path, tensors, { format: "columnformer-optimizer", step: String(state.step) });
}

/** Load AdamW state shaped like `params` (borrowed, for names and shapes). */
export async function loadOptimizerState(path: string, params: VisionParams): Promise<AdamWState<VisionParams>> {
  const file = await readSafetensors(path);
  const shapes = (prefix: string) =>
    Object.fromEntries(namedLeaves(params, prefix).map(([name, leaf]) => [name, [...leaf.shape]]));
  const mu = tensorsToTree(file, shapes("mu"), path, "mu.") as ParamTree;
  const nu = tensorsToTree(file, shapes("nu"), path, "nu.") as ParamTree;
  return { step: Number(file.metadata.optimizer_step ?? file.metadata.step ?? 0), mu: reorderLike(params, mu), nu: reorderLike(params, nu) };
}

/** Rebuild `tree` with the key order of `like` (jax-js tree structure checks compare key order). */
function reorderLike(like: object, tree: ParamTree): VisionParams {
  const walk = (l: object, t: ParamTree): ParamTree =>
    Object.fromEntries(
      Object.entries(l)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, v instanceof np.Array ? t[k] : walk(v as object, t[k] as ParamTree)]),
    );
  return walk(like, tree) as unknown as VisionParams;
}
