/**
 * The masked-image-modelling figure: one row per example, three panels
 * (original | masked input | reconstruction), plus the helpers that build the
 * masked input and the reconstruction from per-patch predictions.
 *
 * Patch-pixel layout (as `patchify` in src/model/patches.ts): patches are
 * row-major over the patch grid; patch (i, j) of an [H, W, C] image holds
 * image[i*p + r, j*p + c, ch] at index (r*p + c)*C + ch.
 */
import { type FloatImage, imageGrid, writePng } from "./png.ts";

/** One example of the reconstruction figure; each image is [H, W, C] row-major. */
export interface ReconstructionRow {
  /** The clean image. */
  original: Float32Array;
  /** The model's input, masked patches filled (see {@link maskImage}). */
  masked: Float32Array;
  /** The reconstruction (see {@link composeReconstruction}). */
  reconstruction: Float32Array;
}

/** Options of {@link reconstructionFigure}. */
export interface ReconstructionFigureOptions {
  /** Integer nearest-neighbour upscaling of each panel (default 1). */
  scale?: number;
}

/** Options of {@link composeReconstruction}. */
export interface ComposeOptions {
  /**
   * Delta degrees of freedom of the per-patch variance used to denormalise:
   * 0 (population variance, default) or 1 (unbiased, as `torch.var` in the MAE
   * reference). Must match the loss's target normalisation.
   */
  varianceDdof?: 0 | 1;
  /** Added to the variance before the square root (default 1e-6). */
  eps?: number;
}

function checkPatchGrid(
  image: Float32Array,
  width: number,
  height: number,
  channels: number,
  patch: number,
  masked: boolean[],
  what: string,
): { gh: number; gw: number } {
  if (!Number.isSafeInteger(patch) || patch <= 0) throw new RangeError(`${what}: patch must be a positive integer, got ${patch}`);
  if (width % patch !== 0 || height % patch !== 0) {
    throw new RangeError(`${what}: image ${width}x${height} is not a multiple of patch ${patch}`);
  }
  if (image.length !== width * height * channels) {
    throw new RangeError(`${what}: expected ${width * height * channels} pixel values, got ${image.length}`);
  }
  const gh = height / patch;
  const gw = width / patch;
  if (masked.length !== gh * gw) throw new RangeError(`${what}: expected ${gh * gw} mask entries, got ${masked.length}`);
  return { gh, gw };
}

/**
 * Copy of `image` with every masked patch filled with `fill`.
 *
 * @param image [height, width, channels] row-major.
 * @param width Image width (multiple of `patch`).
 * @param height Image height (multiple of `patch`).
 * @param channels Channels per pixel.
 * @param patch Patch side in pixels.
 * @param masked One flag per patch, row-major over the patch grid.
 * @param fill Value for masked pixels (default 0.5, mid-grey).
 * @returns The masked image.
 */
export function maskImage(
  image: Float32Array,
  width: number,
  height: number,
  channels: number,
  patch: number,
  masked: boolean[],
  fill = 0.5,
): Float32Array {
  const { gw } = checkPatchGrid(image, width, height, channels, patch, masked, "maskImage");
  const out = Float32Array.from(image);
  masked.forEach((m, k) => {
    if (!m) return;
    const i = Math.floor(k / gw);
    const j = k % gw;
    for (let r = 0; r < patch; r++) {
      const start = ((i * patch + r) * width + j * patch) * channels;
      out.fill(fill, start, start + patch * channels);
    }
  });
  return out;
}

/**
 * Build the reconstruction image: visible patches are copied from `original`,
 * masked patches come from `predictedPatches`. With `denormalise`, a predicted
 * patch is in per-patch-normalised units (MAE target normalisation) and is
 * mapped back with the ORIGINAL patch's mean and std over all its p*p*C values,
 * `x = pred * sqrt(var + eps) + mean`. Predicted pixels are clamped to [0, 1];
 * copied ones are left as they are.
 *
 * @param original [height, width, channels] row-major clean image.
 * @param predictedPatches [P, patch*patch*channels] predictions for all P patches, patch-pixel layout.
 * @param masked One flag per patch, row-major over the patch grid.
 * @param width Image width (multiple of `patch`).
 * @param height Image height (multiple of `patch`).
 * @param channels Channels per pixel.
 * @param patch Patch side in pixels.
 * @param denormalise Whether predictions are per-patch-normalised.
 * @param opts Variance convention and epsilon of the normalisation.
 * @returns The composed image, [height, width, channels].
 */
export function composeReconstruction(
  original: Float32Array,
  predictedPatches: Float32Array,
  masked: boolean[],
  width: number,
  height: number,
  channels: number,
  patch: number,
  denormalise: boolean,
  opts: ComposeOptions = {},
): Float32Array {
  const { gw } = checkPatchGrid(original, width, height, channels, patch, masked, "composeReconstruction");
  const d = patch * patch * channels;
  if (predictedPatches.length !== masked.length * d) {
    throw new RangeError(
      `composeReconstruction: expected ${masked.length}*${d} predicted values, got ${predictedPatches.length}`,
    );
  }
  const ddof = opts.varianceDdof ?? 0;
  const eps = opts.eps ?? 1e-6;
  const out = Float32Array.from(original);
  const rowStride = width * channels;
  masked.forEach((m, k) => {
    if (!m) return;
    const i = Math.floor(k / gw);
    const j = k % gw;
    const base = (i * patch * width + j * patch) * channels; // top-left of patch (i, j)
    // Index of patch value q = (r*p + c)*C + ch in the image: base + r*rowStride + (c*C + ch).
    const at = (q: number): number => base + Math.floor(q / (patch * channels)) * rowStride + (q % (patch * channels));
    let mean = 0;
    let std = 1;
    if (denormalise) {
      for (let q = 0; q < d; q++) mean += original[at(q)];
      mean /= d;
      let ss = 0;
      for (let q = 0; q < d; q++) ss += (original[at(q)] - mean) ** 2;
      const variance = d - ddof > 0 ? ss / (d - ddof) : 0;
      std = Math.sqrt(variance + eps);
    }
    const p0 = k * d;
    for (let q = 0; q < d; q++) {
      let v = predictedPatches[p0 + q];
      if (denormalise) v = v * std + mean;
      out[at(q)] = v > 0 ? (Math.min(v , 1)) : 0; // clamp; NaN -> 0
    }
  });
  return out;
}

/**
 * Compose the reconstruction figure: one row per example with the panels
 * original | masked input | reconstruction (a 3-column {@link imageGrid},
 * 2-pixel white padding).
 *
 * @param rows The examples.
 * @param width Image width.
 * @param height Image height.
 * @param channels 1 or 3.
 * @param opts Panel upscaling.
 * @returns The figure image.
 */
export function reconstructionFigure(
  rows: ReconstructionRow[],
  width: number,
  height: number,
  channels: number,
  opts: ReconstructionFigureOptions = {},
): FloatImage {
  const panels = rows.flatMap((r) => [r.original, r.masked, r.reconstruction]);
  return imageGrid(panels, width, height, channels, 3, { pad: 2, scale: opts.scale ?? 1, background: 1 });
}

/**
 * Compose the reconstruction figure (see {@link reconstructionFigure}) and
 * write it as a PNG atomically.
 *
 * @param filePath Destination `.png` file.
 * @param rows The examples.
 * @param width Image width.
 * @param height Image height.
 * @param channels 1 or 3.
 * @param opts Panel upscaling.
 */
export async function writeReconstructionPng(
  filePath: string,
  rows: ReconstructionRow[],
  width: number,
  height: number,
  channels: number,
  opts: ReconstructionFigureOptions = {},
): Promise<void> {
  const fig = reconstructionFigure(rows, width, height, channels, opts);
  await writePng(filePath, fig.pixels, fig.width, fig.height, channels);
}
