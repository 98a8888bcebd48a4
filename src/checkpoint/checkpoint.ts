/**
 * Sheet checkpoints: safetensors files readable by other tools.
 *
 * Tensor names and layouts follow the earlier PyTorch model's state dict:
 * sheet.norm1.weight [N, D], sheet.attn.q.weight [N, qk_dim, D], ...,
 * sheet.attn.attn_bias [N, N], and the distance buffer `dist` [N, N]; all
 * float32 little-endian. `__metadata__` holds format = "columnformer" and
 * config = the resolved sheet config (with its geometry) as JSON.
 * A sparse sheet (config.connectivity not dense) has attn_bias [N, K] and
 * stores its source columns as the int32 tensor `sheet.connectivity` [N, K]
 * (not a parameter), which loading validates and uses as is.
 */
import { numpy as np } from "../engine/jax.ts";
import type { Geometry } from "../geometry/index.ts";
import { distanceMatrix } from "../geometry/metric.ts";
import { connectivityK, resolveSheetConfig, type SheetConfig } from "../model/config.ts";
import { resolveConnectivity, type SheetConnectivity } from "../model/sheet-connectivity.ts";
import type { SheetParams } from "../model/params.ts";
import { prefixSpecs, specShapes, specSize, treeFromLeaves } from "../model/param-spec.ts";
import { sheetParamSpecs } from "../model/sheet.ts";
import { type ParamTree, treeToTensors } from "../engine/param-tree.ts";
import { expectTensor, readSafetensors, type SafetensorsFile, type TensorData, writeSafetensors } from "../io/safetensors.ts";

/** The `format` value in a columnformer checkpoint's metadata. */
export const CHECKPOINT_FORMAT = "columnformer";

/**
 * Shapes of every sheet tensor, keyed by state-dict name (prefix "sheet."), from the sheet's
 * parameter specs (src/model/sheet.ts). Leading axes follow the weight sharing (see
 * src/model/params.ts): [depth] for a stack, [N] for untied modules.
 */
export function sheetTensorShapes(config: SheetConfig): Record<string, number[]> {
  return specShapes(prefixSpecs("sheet", sheetParamSpecs(config)));
}

/** Number of trainable scalars in a sheet (the `dist` buffer is not a parameter). */
export function sheetParameterCount(config: SheetConfig): number {
  return specSize(sheetParamSpecs(config));
}

/** A loaded checkpoint. */
export interface SheetCheckpoint {
  config: SheetConfig;
  geometry: Geometry;
  params: SheetParams;
  /** A sparse sheet's connectivity (from the file's `sheet.connectivity`), or null for a dense sheet. */
  connectivity: SheetConnectivity | null;
  /** The whole file, for callers that store more (e.g. a vision wrapper's tensors). */
  file: SafetensorsFile;
}

/**
 * Write a sheet checkpoint atomically. Borrows `params`. `extra` tensors
 * (other modules' parameters) and metadata are stored alongside.
 * `extra.connectivity`: a sparse sheet's connectivity (rebuilt from the config when not given).
 */
export async function saveSheetCheckpoint(
  path: string,
  config: SheetConfig,
  geometry: Geometry,
  params: SheetParams,
  extra: { tensors?: Record<string, TensorData>; metadata?: Record<string, string>; connectivity?: SheetConnectivity | null } = {},
): Promise<void> {
  const { tensors, metadata } = await sheetCheckpointContents(config, geometry, params, extra);
  await writeSafetensors(path, tensors, metadata);
}

/**
 * A parameter tensor holds NaN or infinity: such a model is never written (a diverged run)
 * nor loaded for use.
 */
export class NonFiniteParametersError extends Error {
  constructor(
    readonly tensor: string,
    readonly count: number,
    source: string,
  ) {
    super(`${source}: tensor ${JSON.stringify(tensor)} has ${count} non-finite value${count === 1 ? "" : "s"} (NaN or infinity)`);
    this.name = "NonFiniteParametersError";
  }
}

/** The first float tensor (F32/F64) with non-finite values, and how many it has; null when all are finite. */
export function firstNonFinite(tensors: Record<string, TensorData>): { name: string; count: number } | null {
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== "F32" && t.dtype !== "F64") continue;
    const data = t.data as Float32Array | Float64Array;
    let count = 0;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) count++;
    if (count > 0) return { name, count };
  }
  return null;
}

/** Throw {@link NonFiniteParametersError} naming the first tensor with NaN or infinity. */
export function assertFiniteTensors(tensors: Record<string, TensorData>, source: string): void {
  const bad = firstNonFinite(tensors);
  if (bad) throw new NonFiniteParametersError(bad.name, bad.count, source);
}

/**
 * The tensors and metadata of a sheet checkpoint (see {@link saveSheetCheckpoint}), copied to
 * the host; refuses non-finite parameters ({@link NonFiniteParametersError}). Borrows `params`.
 */
export async function sheetCheckpointContents(
  config: SheetConfig,
  geometry: Geometry,
  params: SheetParams,
  extra: { tensors?: Record<string, TensorData>; metadata?: Record<string, string>; connectivity?: SheetConnectivity | null } = {},
): Promise<{ tensors: Record<string, TensorData>; metadata: Record<string, string> }> {
  const n = config.num_columns;
  const connectivity = connectivityK(config) === null ? null : (extra.connectivity ?? resolveConnectivity(config, geometry));
  const tensors: Record<string, TensorData> = {
    ...(await treeToTensors(params, "sheet")),
    ...(connectivity ? { "sheet.connectivity": { dtype: "I32", shape: [n, connectivity.k], data: connectivity.indices } as TensorData } : {}),
    // the N x N distances travel with dense sheets only (a sparse sheet's may not fit)
    ...(connectivity ? {} : { dist: { dtype: "F32", shape: [n, n], data: distanceMatrix(geometry) } as TensorData }),
    ...extra.tensors,
  };
  const metadata = { ...extra.metadata, format: CHECKPOINT_FORMAT, config: JSON.stringify(config) };
  assertFiniteTensors(tensors, "refusing to write a checkpoint");
  return { tensors, metadata };
}

/** Parse and validate the config stored in a checkpoint's metadata. */
export function checkpointConfig(file: SafetensorsFile, source: string): { config: SheetConfig; geometry: Geometry } {
  if (file.metadata.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${source}: not a columnformer checkpoint (metadata format is ${JSON.stringify(file.metadata.format ?? null)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(file.metadata.config ?? "");
  } catch {
    throw new Error(`${source}: metadata "config" is missing or not valid JSON`);
  }
  try {
    // a checkpoint's connectivity comes from its own tensor: a path in its metadata is never read
    return resolveSheetConfig(raw, { readFiles: false });
  } catch (e) {
    throw new Error(`${source}: ${(e as Error).message}`);
  }
}

/** Build jax arrays for named tensors after checking each one's dtype and shape. */
export function tensorsToTree(file: SafetensorsFile, shapes: Record<string, number[]>, source: string, strip = ""): ParamTree {
  return treeFromLeaves(
    Object.entries(shapes).map(([name, shape]) => [name.slice(strip.length), np.array(expectTensor(file, name, "F32", shape, source).data as Float32Array).reshape(shape)] as const),
  );
}

/** Load and validate a sheet checkpoint; a missing, misshaped or mistyped tensor is refused by name. */
export async function loadSheetCheckpoint(path: string): Promise<SheetCheckpoint> {
  return sheetCheckpointFromFile(await readSafetensors(path), path);
}

/** A sheet checkpoint from its decoded file (also the viewer's path: bytes, no file system); `source` names it in messages. */
export function sheetCheckpointFromFile(file: SafetensorsFile, source: string): SheetCheckpoint {
  const { config, geometry } = checkpointConfig(file, source);
  const connectivity = checkpointConnectivity(file, config, geometry, source);
  checkDistances(file, config, source);
  const params = tensorsToTree(file, sheetTensorShapes(config), source, "sheet.") as unknown as SheetParams;
  return { config, geometry, params, connectivity, file };
}

/**
 * The `dist` tensor [N, N]: required for a dense sheet, optional for a sparse one (written
 * before sparse sheets left it out); checked for shape and dtype when present.
 */
export function checkDistances(file: SafetensorsFile, config: SheetConfig, source: string): void {
  const n = config.num_columns;
  if (connectivityK(config) === null || Object.hasOwn(file.tensors, "dist")) expectTensor(file, "dist", "F32", [n, n], source);
}

/** A sparse checkpoint's `sheet.connectivity` [N, K] (checked: dtype, shape, range, distinct per row); null for a dense sheet. */
export function checkpointConnectivity(file: SafetensorsFile, config: SheetConfig, geometry: Geometry, source: string): SheetConnectivity | null {
  const k = connectivityK(config);
  if (k === null) return null;
  const t = expectTensor(file, "sheet.connectivity", "I32", [config.num_columns, k], source);
  try {
    return resolveConnectivity(config, geometry, t.data as Int32Array);
  } catch (e) {
    throw new Error(`${source}: tensor "sheet.connectivity": ${(e as Error).message}`);
  }
}
