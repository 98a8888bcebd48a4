/**
 * PNG output for float images ([H, W, C] row-major, values in [0, 1]) and a
 * simple image-grid compositor for figures.
 */
import sharp from "sharp";
import { writeFileAtomic } from "../io/atomic.ts";

/** A float image: [height, width, channels] row-major pixels. */
export interface FloatImage {
  /** Pixels, [height, width, channels] row-major. */
  pixels: Float32Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

function checkImage(pixels: Float32Array, width: number, height: number, channels: number, what: string): void {
  if (!Number.isSafeInteger(width) || width <= 0 || !Number.isSafeInteger(height) || height <= 0) {
    throw new RangeError(`${what}: width and height must be positive integers, got ${width}x${height}`);
  }
  if (channels !== 1 && channels !== 3) throw new RangeError(`${what}: channels must be 1 or 3, got ${channels}`);
  if (pixels.length !== width * height * channels) {
    throw new RangeError(
      `${what}: expected ${width}*${height}*${channels} = ${width * height * channels} values, got ${pixels.length}`,
    );
  }
}

/**
 * Encode a float image as PNG: values are clamped to [0, 1] and rounded to
 * 8 bits (NaN becomes 0). One channel is written as a greyscale PNG, three as RGB.
 *
 * @param pixels [height, width, channels] row-major values in [0, 1].
 * @param width Width in pixels.
 * @param height Height in pixels.
 * @param channels 1 (grey) or 3 (RGB).
 * @returns The PNG file bytes.
 * @throws RangeError on bad sizes or channel count.
 */
export async function encodePng(pixels: Float32Array, width: number, height: number, channels: number): Promise<Buffer> {
  checkImage(pixels, width, height, channels, "encodePng");
  const bytes = Buffer.alloc(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i];
    bytes[i] = v > 0 ? (v >= 1 ? 255 : Math.round(v * 255)) : 0; // NaN and negatives -> 0
  }
  return sharp(bytes, { raw: { width, height, channels: channels as 1 | 3 } })
    .toColourspace(channels === 1 ? "b-w" : "srgb")
    .png()
    .toBuffer();
}

/**
 * Encode a float image as PNG (see {@link encodePng}) and write it atomically.
 *
 * @param filePath Destination `.png` file; parent directories are created.
 * @param pixels [height, width, channels] row-major values in [0, 1].
 * @param width Width in pixels.
 * @param height Height in pixels.
 * @param channels 1 (grey) or 3 (RGB).
 */
export async function writePng(
  filePath: string,
  pixels: Float32Array,
  width: number,
  height: number,
  channels: number,
): Promise<void> {
  await writeFileAtomic(filePath, await encodePng(pixels, width, height, channels));
}

/** Options of {@link imageGrid}. */
export interface ImageGridOptions {
  /** Background pixels between and around the cells (default 2). */
  pad?: number;
  /** Integer nearest-neighbour upscaling of each image (default 1). */
  scale?: number;
  /** Background value, all channels (default 1, white). */
  background?: number;
}

/**
 * Lay images of one size out in a grid, row-major, `cols` per row. Each image
 * is upscaled by `scale` (nearest neighbour); `pad` background pixels separate
 * the cells and surround the grid, so the output is
 * `pad + cols*(width*scale + pad)` wide and `pad + rows*(height*scale + pad)`
 * high with `rows = ceil(images.length / cols)`. Image k's top-left corner is at
 * x = pad + (k % cols)*(width*scale + pad), y = pad + floor(k / cols)*(height*scale + pad).
 *
 * @param images Images, each [height, width, channels] row-major.
 * @param width Width of every image.
 * @param height Height of every image.
 * @param channels Channels of every image (1 or 3); the grid has the same.
 * @param cols Cells per row (positive integer).
 * @param opts Padding, scale and background.
 * @returns The grid image.
 * @throws RangeError on no images, inconsistent sizes or bad options.
 */
export function imageGrid(
  images: Float32Array[],
  width: number,
  height: number,
  channels: number,
  cols: number,
  opts: ImageGridOptions = {},
): FloatImage {
  const pad = opts.pad ?? 2;
  const scale = opts.scale ?? 1;
  const background = opts.background ?? 1;
  if (images.length === 0) throw new RangeError("imageGrid: no images");
  if (!Number.isSafeInteger(cols) || cols <= 0) throw new RangeError(`imageGrid: cols must be a positive integer, got ${cols}`);
  if (!Number.isSafeInteger(pad) || pad < 0) throw new RangeError(`imageGrid: pad must be a non-negative integer, got ${pad}`);
  if (!Number.isSafeInteger(scale) || scale < 1) throw new RangeError(`imageGrid: scale must be a positive integer, got ${scale}`);
  images.forEach((img, k) => {
    checkImage(img, width, height, channels, `imageGrid: image ${k}`);
  });

  const rows = Math.ceil(images.length / cols);
  const cellW = width * scale;
  const cellH = height * scale;
  const outW = pad + cols * (cellW + pad);
  const outH = pad + rows * (cellH + pad);
  const out = new Float32Array(outW * outH * channels).fill(background);
  for (let k = 0; k < images.length; k++) {
    const img = images[k];
    const x0 = pad + (k % cols) * (cellW + pad);
    const y0 = pad + Math.floor(k / cols) * (cellH + pad);
    for (let y = 0; y < cellH; y++) {
      const srcRow = Math.floor(y / scale) * width;
      const dstRow = (y0 + y) * outW + x0;
      for (let x = 0; x < cellW; x++) {
        const src = (srcRow + Math.floor(x / scale)) * channels;
        const dst = (dstRow + x) * channels;
        for (let c = 0; c < channels; c++) out[dst + c] = img[src + c];
      }
    }
  }
  return { pixels: out, width: outW, height: outH };
}
