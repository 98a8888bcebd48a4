/**
 * Figure output: SVG strings rendered to PNG with sharp (librsvg), and both files
 * written atomically side by side.
 */
import sharp from "sharp";
import { writeFileAtomic } from "../io/atomic.ts";

/**
 * Render an SVG document to PNG.
 *
 * @param svg The SVG document (with width/height; text uses system fonts via fontconfig).
 * @param scale Pixel density relative to the SVG's CSS pixels (default 2, for sharp figures).
 * @returns The PNG file bytes.
 */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`svgToPng: scale must be a finite number > 0, got ${scale}`);
  return sharp(Buffer.from(svg, "utf8"), { density: 72 * scale, limitInputPixels: false }).png({ compressionLevel: 9 }).toBuffer();
}

/**
 * Write a figure as `<pathWithoutExt>.svg` and `<pathWithoutExt>.png` (rendered at `scale`),
 * each atomically; parent directories are created.
 *
 * @param pathWithoutExt Destination path without extension.
 * @param svg The SVG document.
 * @param scale PNG pixel density relative to the SVG (default 2).
 * @returns The paths written.
 */
export async function writeFigure(pathWithoutExt: string, svg: string, scale = 2): Promise<{ svg: string; png: string }> {
  const png = await svgToPng(svg, scale);
  const out = { svg: `${pathWithoutExt}.svg`, png: `${pathWithoutExt}.png` };
  await writeFileAtomic(out.svg, svg);
  await writeFileAtomic(out.png, png);
  return out;
}
