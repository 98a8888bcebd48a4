/**
 * Decoding of encoded images (JPEG, PNG, WebP, TIFF, GIF, AVIF) with sharp.
 */
import sharp from "sharp";
import type { Channels, Pixels } from "./types.ts";

/** 8-bit decoded pixels, row-major `[H, W, C]`. */
export interface BytePixels {
  /** Raw bytes 0..255. */
  data: Uint8Array;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /** 1 = grey, 3 = RGB. */
  channels: Channels;
}

/** Options of {@link decodeImageBytes}. */
export interface DecodeOptions {
  /** Downscale (aspect kept, never enlarge) so that the longer side is at most this. */
  maxSide?: number;
  /** Then enlarge if needed so that the shorter side is at least this (wins over maxSide). */
  minSide?: number;
}

/** File name extensions treated as images (lower case, with dot). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  ".jpg",
  ".jpeg",
  ".png",
  ".webp",
  ".tif",
  ".tiff",
  ".gif",
  ".avif",
]);

/** True when the file name has one of {@link IMAGE_EXTENSIONS}. */
export function isImageFile(name: string): boolean {
  const dot = name.lastIndexOf(".");
  return dot >= 0 && IMAGE_EXTENSIONS.has(name.slice(dot).toLowerCase());
}

/**
 * Decode an encoded image (bytes or a file path) to 8-bit grey or RGB pixels.
 * Alpha is composited onto black; grey images stay 1 channel; 16-bit images become 8-bit.
 * No EXIF auto-rotation (as torchvision / PIL).
 * @returns the pixels, or `null` if the input cannot be decoded (never throws).
 */
export async function decodeImageBytes(input: Uint8Array | string, options: DecodeOptions = {}): Promise<BytePixels | null> {
  try {
    const src = typeof input === "string" ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    let p = sharp(src, { failOn: "error" });
    const meta = await p.metadata();
    const grey = meta.space === "b-w" || meta.space === "grey16";
    if (options.maxSide !== undefined || options.minSide !== undefined) {
      const w0 = meta.width;
      const h0 = meta.height;
      if (!w0 || !h0) return null;
      let scale = 1;
      if (options.maxSide !== undefined) scale = Math.min(1, options.maxSide / Math.max(w0, h0));
      if (options.minSide !== undefined && Math.min(w0, h0) * scale < options.minSide) {
        scale = options.minSide / Math.min(w0, h0);
      }
      if (scale !== 1) {
        const w = Math.max(1, Math.round(w0 * scale));
        const h = Math.max(1, Math.round(h0 * scale));
        p = p.resize({ width: w, height: h, fit: "fill" });
      }
    }
    // sharp outputs sRGB (grey sources too, as R = G = B), with alpha if the source has it.
    const { data, info } = await p.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    const { width, height } = info;
    const c = info.channels as number;
    const n = width * height;
    const hasAlpha = c === 2 || c === 4;
    const keep: Channels = grey || c - (hasAlpha ? 1 : 0) < 3 ? 1 : 3;
    if (!hasAlpha && c === keep) {
      return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), height, width, channels: keep };
    }
    // Drop duplicate grey channels; composite alpha onto black (v * alpha / 255).
    const out = new Uint8Array(n * keep);
    for (let i = 0; i < n; i++) {
      const a = hasAlpha ? data[i * c + c - 1] : 255;
      for (let k = 0; k < keep; k++) out[i * keep + k] = hasAlpha ? Math.round((data[i * c + k] * a) / 255) : data[i * c + k];
    }
    return { data: out, height, width, channels: keep };
  } catch {
    return null;
  }
}

/** Convert 8-bit pixels to float32 in [0, 1]. */
export function bytesToPixels(b: BytePixels): Pixels {
  const out = new Float32Array(b.data.length);
  for (let i = 0; i < out.length; i++) out[i] = b.data[i] / 255;
  return { image: out, height: b.height, width: b.width, channels: b.channels };
}

/**
 * Decode an encoded image to float32 pixels in [0, 1].
 * @returns the pixels, or `null` if undecodable.
 */
export async function decodeImage(input: Uint8Array | string, options: DecodeOptions = {}): Promise<Pixels | null> {
  const b = await decodeImageBytes(input, options);
  return b && bytesToPixels(b);
}
