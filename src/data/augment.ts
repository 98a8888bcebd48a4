/**
 * Image augmentations and resizing: pure functions on `[H, W, C]` float32 images.
 *
 * Resampling is separable with a triangle (bilinear) kernel and half-pixel centres, the
 * same as PIL's / torchvision's antialiased bilinear: identical to plain bilinear
 * interpolation when enlarging, and an area-weighted (antialiased) average when shrinking.
 */
import type { Channels, Pixels } from "./types.ts";
import type { Rng } from "../engine/rng.ts";

/** An integer crop box inside an image. */
export interface CropBox {
  /** First row. */
  top: number;
  /** First column. */
  left: number;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
}

/** Options of the training augmentation. */
export interface TrainAugmentOptions {
  /** Range of the crop's area as a fraction of the image (default [0.35, 1]). */
  scale: [number, number];
  /** Range of the crop's aspect ratio width/height, sampled log-uniformly (default [3/4, 4/3]). */
  ratio: [number, number];
  /** Probability of a horizontal flip (default 0.5). */
  flipProbability: number;
}

/** Defaults of {@link TrainAugmentOptions}, as in torchvision's RandomResizedCrop + flip. */
export const defaultTrainAugment: TrainAugmentOptions = {
  scale: [0.35, 1],
  ratio: [3 / 4, 4 / 3],
  flipProbability: 0.5,
};

/** Per-output-index taps along one axis: first source index and normalised weights. */
interface AxisTaps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array; // [out, maxCount]
  maxCount: number;
}

function axisTaps(first: number, length: number, out: number): AxisTaps {
  const scale = length / out;
  const support = Math.max(scale, 1); // kernel half-width in source pixels
  const maxCount = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(out);
  const count = new Int32Array(out);
  const weights = new Float32Array(out * maxCount);
  for (let o = 0; o < out; o++) {
    const centre = (o + 0.5) * scale; // relative to `first`
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(length, Math.ceil(centre + support));
    let total = 0;
    let n = 0;
    for (let j = lo; j < hi && n < maxCount; j++, n++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - centre) / support));
      weights[o * maxCount + n] = w;
      total += w;
    }
    if (total > 0) for (let k = 0; k < n; k++) weights[o * maxCount + k] /= total;
    start[o] = first + lo;
    count[o] = n;
  }
  return { start, count, weights, maxCount };
}

/**
 * Resample the integer box `box` of `img` to `outHeight x outWidth` (antialiased bilinear).
 * Only pixels inside the box contribute, as with crop-then-resize.
 */
export function resizedCrop(img: Pixels, box: CropBox, outHeight: number, outWidth: number): Pixels {
  const { channels: c, width: W } = img;
  if (box.height <= 0 || box.width <= 0 || box.top < 0 || box.left < 0 || box.top + box.height > img.height || box.left + box.width > W) {
    throw new RangeError(`crop box ${JSON.stringify(box)} outside ${img.height}x${W} image`);
  }
  const src = img.image;
  const xt = axisTaps(box.left, box.width, outWidth);
  const yt = axisTaps(box.top, box.height, outHeight);
  // Horizontal pass over the box rows: tmp [box.height, outWidth, c].
  const tmp = new Float32Array(box.height * outWidth * c);
  for (let y = 0; y < box.height; y++) {
    const srcRow = (box.top + y) * W * c;
    const dstRow = y * outWidth * c;
    for (let x = 0; x < outWidth; x++) {
      const s = xt.start[x];
      const n = xt.count[x];
      const wo = x * xt.maxCount;
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += xt.weights[wo + k] * src[srcRow + (s + k) * c + ch];
        tmp[dstRow + x * c + ch] = acc;
      }
    }
  }
  // Vertical pass.
  const out = new Float32Array(outHeight * outWidth * c);
  const rowLen = outWidth * c;
  for (let y = 0; y < outHeight; y++) {
    const s = yt.start[y] - box.top;
    const n = yt.count[y];
    const wo = y * yt.maxCount;
    const dst = y * rowLen;
    for (let k = 0; k < n; k++) {
      const w = yt.weights[wo + k];
      const srcRow = (s + k) * rowLen;
      for (let i = 0; i < rowLen; i++) out[dst + i] += w * tmp[srcRow + i];
    }
  }
  return { image: out, height: outHeight, width: outWidth, channels: c };
}

/** Resize the whole image to `outHeight x outWidth` (antialiased bilinear). */
export function resize(img: Pixels, outHeight: number, outWidth: number): Pixels {
  if (outHeight === img.height && outWidth === img.width) return img;
  return resizedCrop(img, { top: 0, left: 0, height: img.height, width: img.width }, outHeight, outWidth);
}

/**
 * Resize so that the shorter side becomes `size`, keeping the aspect ratio
 * (longer side = floor(size * long / short), as torchvision).
 */
export function resizeShorterSide(img: Pixels, size: number): Pixels {
  const { height: h, width: w } = img;
  if (h <= w) return resize(img, size, Math.max(size, Math.floor((size * w) / h)));
  return resize(img, Math.max(size, Math.floor((size * h) / w)), size);
}

/**
 * Copy the box starting at (`top`, `left`) of size `height x width`; parts outside the
 * image are zero.
 */
export function crop(img: Pixels, box: CropBox): Pixels {
  const { channels: c, width: W, height: H } = img;
  const out = new Float32Array(box.height * box.width * c);
  for (let y = 0; y < box.height; y++) {
    const sy = box.top + y;
    if (sy < 0 || sy >= H) continue;
    const x0 = Math.max(0, -box.left);
    const x1 = Math.min(box.width, W - box.left);
    if (x1 <= x0) continue;
    out.set(img.image.subarray((sy * W + box.left + x0) * c, (sy * W + box.left + x1) * c), (y * box.width + x0) * c);
  }
  return { image: out, height: box.height, width: box.width, channels: c };
}

/**
 * Centre crop to `height x width`: top = floor((H - height) / 2), left = floor((W - width) / 2).
 * A crop larger than the image is zero-padded.
 */
export function centerCrop(img: Pixels, height: number, width: number): Pixels {
  if (height === img.height && width === img.width) return img;
  return crop(img, {
    top: Math.floor((img.height - height) / 2),
    left: Math.floor((img.width - width) / 2),
    height,
    width,
  });
}

/** Mirror left-right. */
export function flipHorizontal(img: Pixels): Pixels {
  const { channels: c, width: W, height: H } = img;
  const out = new Float32Array(img.image.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const s = (y * W + x) * c;
      const d = (y * W + (W - 1 - x)) * c;
      for (let ch = 0; ch < c; ch++) out[d + ch] = img.image[s + ch];
    }
  }
  return { image: out, height: H, width: W, channels: c };
}

/** RGB to grey with ITU-R BT.601 luma: 0.299 R + 0.587 G + 0.114 B. Grey input is returned as is. */
export function toGrey(img: Pixels): Pixels {
  if (img.channels === 1) return img;
  const n = img.height * img.width;
  const out = new Float32Array(n);
  const s = img.image;
  for (let i = 0; i < n; i++) out[i] = 0.299 * s[3 * i] + 0.587 * s[3 * i + 1] + 0.114 * s[3 * i + 2];
  return { image: out, height: img.height, width: img.width, channels: 1 };
}

/** Grey to RGB by copying the grey value into R, G and B. RGB input is returned as is. */
export function toRGB(img: Pixels): Pixels {
  if (img.channels === 3) return img;
  const n = img.height * img.width;
  const out = new Float32Array(n * 3);
  const s = img.image;
  for (let i = 0; i < n; i++) {
    const v = s[i];
    out[3 * i] = v;
    out[3 * i + 1] = v;
    out[3 * i + 2] = v;
  }
  return { image: out, height: img.height, width: img.width, channels: 3 };
}

/** Convert to the wanted channel count ({@link toGrey} / {@link toRGB}). */
export function convertChannels(img: Pixels, channels: Channels): Pixels {
  return channels === 1 ? toGrey(img) : toRGB(img);
}

/**
 * Sample a random-resized-crop box exactly as torchvision's `RandomResizedCrop.get_params`:
 * up to 10 tries of area fraction ~ U(scale) and log-uniform aspect ratio ~ ratio; else a
 * centre crop with the aspect ratio clamped into `ratio`.
 */
export function sampleResizedCropBox(
  height: number,
  width: number,
  rng: Rng,
  scale: [number, number] = defaultTrainAugment.scale,
  ratio: [number, number] = defaultTrainAugment.ratio,
): CropBox {
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < Math.min(...ratio)) {
    w = width;
    h = Math.max(1, Math.min(height, Math.round(w / Math.min(...ratio))));
  } else if (inRatio > Math.max(...ratio)) {
    h = height;
    w = Math.max(1, Math.min(width, Math.round(h * Math.max(...ratio))));
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** Random resized crop to `outHeight x outWidth` (box from {@link sampleResizedCropBox}). */
export function randomResizedCrop(
  img: Pixels,
  outHeight: number,
  outWidth: number,
  rng: Rng,
  scale: [number, number] = defaultTrainAugment.scale,
  ratio: [number, number] = defaultTrainAugment.ratio,
): Pixels {
  const box = sampleResizedCropBox(img.height, img.width, rng, scale, ratio);
  return resizedCrop(img, box, outHeight, outWidth);
}

/**
 * Training transform: random resized crop to `size x size`, horizontal flip with
 * probability `flipProbability`, then conversion to `channels`. Draws from `rng` in a fixed
 * order (crop box, then flip), so a fixed seed gives a fixed result.
 */
export function trainTransform(
  img: Pixels,
  size: number,
  channels: Channels,
  rng: Rng,
  options: Partial<TrainAugmentOptions> = {},
): Pixels {
  const o = { ...defaultTrainAugment, ...options };
  let out = randomResizedCrop(img, size, size, rng, o.scale, o.ratio);
  if (rng.next() < o.flipProbability) out = flipHorizontal(out);
  return convertChannels(out, channels);
}

/** Evaluation transform: resize the shorter side to `size`, centre crop `size x size`, convert channels. */
export function evalTransform(img: Pixels, size: number, channels: Channels): Pixels {
  return convertChannels(centerCrop(resizeShorterSide(img, size), size, size), channels);
}
