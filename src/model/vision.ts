/**
 * The vision Columnformer: images enter the sheet's INPUT AREA as patch
 * embeddings, the sheet runs for `depth` steps, and readouts leave
 * from the OUTPUT AREA. On a multi-area geometry (e.g. stacked areas
 * [7, 7, 7]) input enters area 0 and the readout leaves the last area, so
 * everything between must be routed by attention.
 *
 *   patches [B, P, p*p*C] --patch_embed (shared)--> input-area states [B, P, D]
 *   (masked patches -> learned mask token, MIM only)
 *   x0 [B, N, D] = input states in the input area, 0 elsewhere (+ learned init state = position embedding)
 *   sheet x depth (input added again at every step when inject = "every")
 *   output-area states [B, P_out, D] -> (final LayerNorm) -> MIM decoder (per column) or classification head
 */
import { nn, numpy as np, random, tree } from "../engine/jax.ts";
import { splitKey } from "../engine/prng.ts";
import { type Area, areaByName, type Geometry } from "../geometry/index.ts";
import { columnLinear, columnLinearSpec } from "./column-linear.ts";
import type { SheetConfig } from "./config.ts";
import { columnLayerNorm, columnLayerNormSpec } from "./layer-norm.ts";
import { initParams, type ParamInit, type ParamSpec, prefixSpecs } from "./param-spec.ts";
import type { ColumnLayerNormParams, SheetParams } from "./params.ts";
import { patchify } from "./patches.ts";
import { blockAt, checkConnectivityArg, checkSheetGeometry, sheetParamSpecs, sheetStep, sheetStreams } from "./sheet.ts";
import type { SheetConnectivity } from "./sheet-connectivity.ts";
import type { VisionConfig } from "./vision-config.ts";

export type { VisionConfig } from "./vision-config.ts";

/** Parameters of the vision model. Tensor names are these paths (e.g. `patch_embed.weight`, `sheet.attn.q.weight`). */
export interface VisionParams {
  /** Shared linear patch embedding: weight [D, p*p*C], bias [D]. */
  patch_embed: { weight: np.Array; bias: np.Array };
  /** Learned embedding that replaces masked patches: [D]. */
  mask_token: np.Array;
  /** Learned initial column states [N, D] (when learned_init_state). */
  init_state?: np.Array;
  sheet: SheetParams;
  /** Learned column positions [N, k] (sheet.learn_positions; used by the wiring cost, not the forward pass). */
  positions?: np.Array;
  /** MIM: optional final norm, then a per-output-column linear decoder to its patch's pixels: weight [P, p*p*C, D], bias [P, p*p*C]. */
  decoder?: Decoder;
  /** Classification: optional final norm, optional spatial pooling logits [classes, P_out], then weight [classes, D], bias [classes]. */
  head?: Head;
}

/** The MIM readout (see VisionParams.decoder). */
export type Decoder = { norm?: ColumnLayerNormParams; weight: np.Array; bias: np.Array };
/** The classification readout (see VisionParams.head). */
export type Head = { norm?: ColumnLayerNormParams; pool?: np.Array; weight: np.Array; bias: np.Array };

/** The resolved layout of a vision model on its geometry. */
export interface VisionLayout {
  inputArea: Area;
  outputArea: Area;
  /** Patches per image side. */
  grid: number;
  numPatches: number;
  patchDim: number;
  /** Coordinates per column position (the shape of learned positions: [N, positionDim]). */
  positionDim: number;
}

/** Check the vision config against the geometry and resolve the input and output areas. */
export function visionLayout(vision: VisionConfig, geometry: Geometry): VisionLayout {
  const { image_size: size, patch_size: p, channels } = vision;
  if (size % p !== 0) {
    throw new Error(`vision.image_size ${size} is not a multiple of vision.patch_size ${p}`);
  }
  const grid = size / p;
  const inputArea = vision.input_area ? areaByName(geometry, vision.input_area) : geometry.areas[0];
  const outputArea = vision.output_area ? areaByName(geometry, vision.output_area) : geometry.areas[geometry.areas.length - 1];
  // An area with a grid must match the patch grid; an area without one (e.g. on a sphere)
  // takes patch i at its column i, so it needs exactly one column per patch.
  const needGrid = (area: Area, role: string): void => {
    const g = area.grid;
    const columns = area.end - area.start;
    if (g ? g[0] !== grid || g[1] !== grid : columns !== grid * grid) {
      throw new Error(
        `${role} area "${area.name}" is ${g ? `a ${g[0]}x${g[1]} grid` : `${columns} columns without a grid`} but ${size} px images with ` +
          `${p} px patches make a ${grid}x${grid} patch grid (${grid * grid} patches); change the geometry, image_size or patch_size`,
      );
    }
  };
  needGrid(inputArea, "input");
  if (vision.task === "mim") needGrid(outputArea, "output");
  return { inputArea, outputArea, grid, numPatches: grid * grid, patchDim: p * p * channels, positionDim: geometry.positionDim };
}

/**
 * Every leaf of the vision model (see VisionParams), the sheet's under "sheet.", in tree order.
 * `geometry` (and `connectivity`) give the values of the learned positions and the local
 * attention-bias prior when the leaves are initialised; shapes and counts need neither.
 */
export function visionParamSpecs(sheet: SheetConfig, vision: VisionConfig, layout: VisionLayout, geometry?: Geometry, connectivity?: SheetConnectivity | null): ParamSpec[] {
  const { dim: d, num_columns: n } = sheet;
  const outCols = layout.outputArea.end - layout.outputArea.start;
  const specs: ParamSpec[] = [
    ...prefixSpecs("patch_embed", columnLinearSpec([], layout.patchDim, d, true, null)), // weight [D, p*p*C]
    { path: "mask_token", shape: [d], init: { kind: "normal", std: 0.02, stream: "mask_token" }, columnAxis: null },
    ...prefixSpecs("sheet", sheetParamSpecs(sheet, geometry, connectivity)),
  ];
  if (sheet.learn_positions) {
    const positions = () => {
      if (!geometry) throw new Error("visionParamSpecs: learned positions start at the geometry's; pass it");
      return new Float32Array(geometry.positions);
    };
    specs.push({ path: "positions", shape: [n, layout.positionDim], init: { kind: "values", values: positions }, columnAxis: 0 });
  }
  if (vision.learned_init_state) {
    const init: ParamInit = vision.init_state_std > 0 ? { kind: "normal", std: vision.init_state_std, stream: "init_state" } : { kind: "zeros" };
    specs.push({ path: "init_state", shape: [n, d], init, columnAxis: 0 });
  }
  const finalNorm = (readout: string) => (vision.final_norm ? prefixSpecs(`${readout}.norm`, columnLayerNormSpec([], d, null)) : []);
  if (vision.task === "mim") {
    // one linear map per output column: weight [P_out, p*p*C, D], bias [P_out, p*p*C]
    specs.push(...prefixSpecs("decoder", columnLinearSpec([outCols], d, layout.patchDim, true, null)), ...finalNorm("decoder"));
  } else {
    specs.push(...prefixSpecs("head", columnLinearSpec([], d, vision.num_classes, true, null))); // weight [classes, D]
    if (vision.pool === "spatial") specs.push({ path: "head.pool", shape: [vision.num_classes, outCols], init: { kind: "zeros" }, columnAxis: null });
    specs.push(...finalNorm("head"));
  }
  return specs;
}

/**
 * One PRNG key per random leaf, from `seed`: split into the sheet, the patch embedding, the mask
 * token and the readout; the learned initial state draws from a separate stream, so turning it
 * on leaves every other parameter as it was.
 */
export function visionStreams(sheet: SheetConfig, vision: VisionConfig, seed: number): Record<string, np.Array> {
  const [kSheet, kEmbed, kMask, kHead] = splitKey(random.key(seed), 4);
  const streams: Record<string, np.Array> = {
    "patch_embed.weight": kEmbed,
    mask_token: kMask,
    [vision.task === "mim" ? "decoder.weight" : "head.weight"]: kHead,
    init_state: random.key(seed + 1_000_003),
  };
  for (const [stream, key] of Object.entries(sheetStreams(sheet, kSheet))) streams[`sheet.${stream}`] = key;
  return streams;
}

/**
 * Initialise all vision-model parameters; the same seed gives identical parameters.
 * `connectivity`: a sparse sheet's (resolved from the configs when not given).
 */
export function initVision(sheetConfig: SheetConfig, vision: VisionConfig, geometry: Geometry, seed: number, connectivity?: SheetConnectivity | null): VisionParams {
  checkSheetGeometry(sheetConfig, geometry);
  const specs = visionParamSpecs(sheetConfig, vision, visionLayout(vision, geometry), geometry, connectivity);
  return initParams(specs, visionStreams(sheetConfig, vision, seed)) as unknown as VisionParams;
}

/** Place area states [B, A, D] into a sheet of N columns at [start, end), zeros elsewhere. Consumes `states`. */
function placeInArea(states: np.Array, area: Area, numColumns: number): np.Array {
  const [b, , d] = states.shape;
  const parts: np.Array[] = [];
  if (area.start > 0) parts.push(np.zeros([b, area.start, d]));
  parts.push(states);
  if (area.end < numColumns) parts.push(np.zeros([b, numColumns - area.end, d]));
  return parts.length === 1 ? parts[0] : np.concatenate(parts, 1);
}

/** The parameters that bring images into the sheet (the front end of the encoder). */
export type VisionFrontParams = Pick<VisionParams, "patch_embed" | "mask_token" | "init_state">;

/**
 * The front end: images into the sheet's input area. Consumes `params`, `images` and `mask`.
 * images: [B, H, W, C]; mask: [B, P] with 1 = masked patch (or null) ->
 * x0: initial states [B, N, D] (drive + learned initial state), drive: [B, N, D] (the patch
 * embeddings in the input area, zeros elsewhere; added again at every step with inject "every"),
 * patches: [B, P, p*p*C].
 */
export function visionFront(
  params: VisionFrontParams,
  images: np.Array,
  mask: np.Array | null,
  sheet: SheetConfig,
  vision: VisionConfig,
  layout: VisionLayout,
): { x0: np.Array; drive: np.Array; patches: np.Array } {
  const patches = patchify(images, vision.patch_size); // [B, P, p*p*C]
  let embedded = np.matmul(patches.ref, params.patch_embed.weight.transpose()).add(params.patch_embed.bias); // [B, P, D]
  if (mask) {
    const m = mask.reshape([...mask.shape, 1]); // [B, P, 1]
    embedded = embedded.mul(m.ref.mul(-1).add(1)).add(m.mul(params.mask_token));
  } else {
    params.mask_token.dispose();
  }
  const drive = placeInArea(embedded, layout.inputArea, sheet.num_columns); // [B, N, D]
  const x0 = params.init_state ? drive.ref.add(params.init_state) : drive.ref;
  return { x0, drive, patches };
}

/**
 * Run the vision model up to the output area (readout parameters are not used).
 * Consumes `params`, `images`, `mask` and `connectivity`.
 * images: [B, H, W, C]; mask: [B, P] with 1 = masked patch (or null) ->
 * out: output-area states [B, P_out, D], attn: [B, depth, N, N], patches [B, P, p*p*C].
 * A sparse sheet needs `connectivity` int32 [N, K] and returns attn [B, depth, N, K].
 */
export function visionEncode(
  params: Pick<VisionParams, "patch_embed" | "mask_token" | "init_state" | "sheet">,
  images: np.Array,
  mask: np.Array | null,
  sheet: SheetConfig,
  vision: VisionConfig,
  layout: VisionLayout,
  withActivity = false,
  connectivity?: np.Array,
  lesion?: np.Array,
): { out: np.Array; attn: np.Array; patches: np.Array; activity?: ColumnActivity } {
  checkConnectivityArg(sheet, connectivity, "visionEncode");
  // lesion: a keep-mask [N] of 0/1 (consumed); silenced columns' states are held at exactly zero
  // (multiplied in before every step, after any input injection, and after every step)
  const keep = lesion ? lesion.reshape([1, sheet.num_columns, 1]) : null;
  const { sheet: sheetParams, ...front } = params;
  const { x0, drive, patches } = visionFront(front, images, mask, sheet, vision, layout);
  let x = x0;
  const maps: np.Array[] = [];
  const l1: np.Array[] = [];
  const hoyer: np.Array[] = [];
  for (let step = 0; step < sheet.depth; step++) {
    if (step > 0 && vision.inject === "every") x = x.add(drive.ref);
    if (keep) x = x.mul(keep.ref);
    const r = sheetStep(blockAt(sheetParams, step, sheet), x, sheet, connectivity?.ref);
    x = keep ? r.x.mul(keep.ref) : r.x;
    maps.push(r.attn);
    if (withActivity) {
      const a = columnActivity(x.ref);
      l1.push(a.l1);
      hoyer.push(a.hoyer);
    }
  }
  drive.dispose();
  connectivity?.dispose();
  keep?.dispose();
  tree.dispose(sheetParams);
  const { start, end } = layout.outputArea;
  const out = x.slice([], [start, end]); // [B, P_out, D]
  const result = { out, attn: np.stack(maps, 1), patches };
  if (!withActivity) return result;
  const mean = (xs: np.Array[]) => np.stack(xs).mean();
  return { ...result, activity: { l1: mean(l1), hoyer: mean(hoyer) } };
}

/** How active the columns are: means over batch, columns and steps of the column states x [B, N, D] after each step. */
export interface ColumnActivity {
  /** Mean |x| (the activation-sparsity penalty). */
  l1: np.Array;
  /** Mean Hoyer sparsity of each column's state vector, (sqrt(D) - |x|_1 / |x|_2) / (sqrt(D) - 1): 0 dense, 1 one-hot. */
  hoyer: np.Array;
}

/** Activity of one step's states. Consumes `x` [B, N, D]. */
export function columnActivity(x: np.Array): ColumnActivity {
  const d = x.shape[2];
  const abs = np.abs(x.ref);
  const norm1 = abs.ref.sum(-1); // [B, N]
  const norm2 = np.sqrt(np.square(x).sum(-1).add(1e-12));
  const hoyer = np.subtract(Math.sqrt(d), norm1.div(norm2)).div(Math.max(Math.sqrt(d) - 1, 1e-12)).mean();
  return { l1: abs.mean(), hoyer };
}

/** Epsilon of the readout's final LayerNorm. */
const FINAL_NORM_EPS = 1e-5;

/** The readout's input: out [B, P, D], after the final LayerNorm when there is one. Consumes both. */
function finalNorm(norm: ColumnLayerNormParams | undefined, out: np.Array): np.Array {
  return norm ? columnLayerNorm(norm, out, FINAL_NORM_EPS) : out;
}

/** MIM decoder: out [B, P, D] -> predicted patch pixels [B, P, p*p*C]. Consumes both. */
export function decodePatches(decoder: Decoder, out: np.Array): np.Array {
  return columnLinear({ weight: decoder.weight, bias: decoder.bias }, finalNorm(decoder.norm, out));
}

/** Classification head: out [B, P_out, D] -> logits [B, classes]. Consumes both. */
export function classify(head: Head, out: np.Array): np.Array {
  out = finalNorm(head.norm, out);
  if (!head.pool) {
    return np.matmul(out.mean(1), head.weight.transpose()).add(head.bias); // [B, classes]
  }
  const weights = nn.softmax(head.pool, -1); // [classes, P_out]
  const pooled = np.einsum("cp,bpd->bcd", weights, out); // [B, classes, D]
  return pooled.mul(head.weight).sum(-1).add(head.bias);
}
