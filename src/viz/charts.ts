/**
 * Standard charts as self-contained SVG strings: line charts, histograms,
 * scatter plots and matrix heatmaps, plus the SVG building blocks shared with
 * the sheet maps (number formatting, ticks, colour scales and bars, cell images).
 *
 * Every function is pure: plain data in, an SVG document string out. The SVGs use
 * no ids, scripts or external resources (rasters are embedded as PNG data URIs),
 * so they can be written to files or inlined side by side in one HTML page.
 * Text uses a sans-serif stack headed by DejaVu Sans, which librsvg (sharp) finds
 * on Linux; sizes are in CSS pixels.
 */
import { deflateSync } from "node:zlib";
import { MISSING_COLOR, categorical, diverging, rgbHex, viridis } from "./colormap.ts";
import type { ContinuousColormap, RGB } from "./colormap.ts";

// ---------------------------------------------------------------------------------------
// SVG building blocks
// ---------------------------------------------------------------------------------------

/** The font stack of all figure text. */
export const FONT_FAMILY = "DejaVu Sans, Helvetica, Arial, sans-serif";

/** Escape text for use in SVG/XML character data and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c] ?? c);
}

/** A coordinate with at most 2 decimals and no trailing zeros. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return "0";
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? "0" : String(r);
}

/** Rough width in pixels of `text` at `size` px (DejaVu Sans averages about 0.6 em per character). */
export function textWidth(text: string, size: number): number {
  return text.length * size * 0.6;
}

/**
 * Open an SVG document of `width` x `height` px with a white background.
 * Close it with `</svg>`.
 */
export function svgOpen(width: number, height: number): string {
  const w = Math.ceil(width);
  const h = Math.ceil(height);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ` +
    `width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="${FONT_FAMILY}">` +
    `<rect x="0" y="0" width="${w}" height="${h}" fill="#ffffff"/>`
  );
}

/** Options of {@link svgText}. */
export interface TextOptions {
  size?: number;
  anchor?: "start" | "middle" | "end";
  weight?: "normal" | "bold";
  fill?: string;
  /** Rotation in degrees about (x, y). */
  rotate?: number;
  /** Vertical alignment shift in em (0.35 centres digits on y). */
  dy?: number;
}

/** A `<text>` element (text escaped). */
export function svgText(x: number, y: number, text: string, o: TextOptions = {}): string {
  const size = o.size ?? 11;
  const attrs = [`x="${fmt(x)}"`, `y="${fmt(y)}"`, `font-size="${size}"`];
  if (o.anchor && o.anchor !== "start") attrs.push(`text-anchor="${o.anchor}"`);
  if (o.weight === "bold") attrs.push(`font-weight="bold"`);
  attrs.push(`fill="${o.fill ?? "#222222"}"`);
  if (o.dy) attrs.push(`dy="${o.dy}em"`);
  if (o.rotate) attrs.push(`transform="rotate(${fmt(o.rotate)} ${fmt(x)} ${fmt(y)})"`);
  return `<text ${attrs.join(" ")}>${escapeXml(text)}</text>`;
}

/**
 * About `count` "nice" tick values (steps of 1, 2 or 5 times a power of ten) inside [lo, hi].
 *
 * @returns Ascending ticks; a single tick when lo == hi; empty for non-finite bounds.
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) return [lo];
  const step = niceStep(lo, hi, count);
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  for (let k = first; k <= last; k++) out.push(cleanFloat(k * step));
  return out;
}

/** The 1-2-5 step that gives about `count` ticks on [lo, hi]. */
export function niceStep(lo: number, hi: number, count = 5): number {
  const raw = Math.abs(hi - lo) / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

function cleanFloat(v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(12));
}

/**
 * Format a tick value: plain decimals for moderate magnitudes, `1.5e-5` style otherwise.
 *
 * @param v The value.
 * @param step The tick spacing, which sets the number of decimals (default: from v itself).
 */
export function formatTick(v: number, step?: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    const s = v.toExponential(step !== undefined && step > 0 ? Math.max(0, Math.min(6, Math.round(Math.log10(a) - Math.log10(step)))) : 2);
    const [m, e] = s.split("e");
    const mant = m.includes(".") ? m.replace(/0+$/, "").replace(/\.$/, "") : m;
    return `${mant}e${e.replace("+", "")}`;
  }
  const decimals = step !== undefined && step > 0 ? Math.max(0, Math.min(8, -Math.floor(Math.log10(step) + 1e-9))) : 4;
  const s = v.toFixed(decimals);
  return step !== undefined ? s : s.replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

/** Minimum and maximum of the finite values (NaN, NaN when there are none). */
export function finiteRange(values: Iterable<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [Number.NaN, Number.NaN];
}

// ---------------------------------------------------------------------------------------
// Colour scales and colour bars
// ---------------------------------------------------------------------------------------

/** A value -> colour mapping over [vmin, vmax]. */
export interface ColorScale {
  colormap: ContinuousColormap;
  vmin: number;
  vmax: number;
  /** The colour of a value ({@link MISSING_COLOR} for NaN / infinities). */
  color: (v: number) => RGB;
}

/**
 * Build a colour scale from data.
 * - viridis: [vmin, vmax] defaults to the finite data range; the data range maps onto [0, 1].
 * - diverging: symmetric about 0 by default ([-m, m], m = max |v|); 0 is always the
 *   neutral centre colour and v maps to v / max(|vmin|, |vmax|).
 *
 * @param colormap Map name.
 * @param values The data (or any iterable of them) used for the default range.
 * @param vmin Optional fixed lower bound.
 * @param vmax Optional fixed upper bound.
 */
export function makeColorScale(colormap: ContinuousColormap, values: Iterable<number>, vmin?: number, vmax?: number): ColorScale {
  let [lo, hi] = vmin !== undefined && vmax !== undefined ? [vmin, vmax] : finiteRange(values);
  if (vmin !== undefined) lo = vmin;
  if (vmax !== undefined) hi = vmax;
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = colormap === "viridis" ? [0, 1] : [-1, 1];
  if (colormap === "diverging") {
    if (vmin === undefined && vmax === undefined) {
      const m = Math.max(Math.abs(lo), Math.abs(hi));
      [lo, hi] = m > 0 ? [-m, m] : [-1, 1];
    }
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return { colormap, vmin: lo, vmax: hi, color: (v) => (Number.isFinite(v) ? diverging(v / m) : MISSING_COLOR) };
  }
  const span = hi - lo;
  return {
    colormap,
    vmin: lo,
    vmax: hi,
    color: (v) => (Number.isFinite(v) ? viridis(span > 0 ? (v - lo) / span : 0.5) : MISSING_COLOR),
  };
}

/** Options of {@link colorbarSvg}. */
export interface ColorbarOptions {
  /** Left edge of the bar. */
  x: number;
  /** Top edge of the bar. */
  y: number;
  /** Bar height (the bar is 14 px wide). */
  height: number;
  scale: ColorScale;
  /** Label written vertically to the right of the tick labels. */
  label: string;
}

/** Width of a colour bar with its ticks and label, for layout. */
export function colorbarWidth(scale: ColorScale, label: string): number {
  const ticks = niceTicks(scale.vmin, scale.vmax, 5);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : undefined;
  const tickW = Math.max(0, ...ticks.map((t) => textWidth(formatTick(t, step), 10)));
  return 14 + 6 + tickW + (label ? 22 : 4);
}

/**
 * A vertical colour bar (an embedded 1 x 256 raster) with ticks, tick labels and a label.
 *
 * @returns An SVG fragment.
 */
export function colorbarSvg(o: ColorbarOptions): string {
  const { x, y, height, scale } = o;
  const w = 14;
  const n = 256;
  const rgb = new Uint8Array(n * 3);
  for (let k = 0; k < n; k++) {
    const v = scale.vmax - ((k + 0.5) / n) * (scale.vmax - scale.vmin);
    rgb.set(scale.color(v), 3 * k);
  }
  const parts: string[] = [];
  parts.push(
    `<image x="${fmt(x)}" y="${fmt(y)}" width="${w}" height="${fmt(height)}" preserveAspectRatio="none" xlink:href="${pngDataUri(rgb, 1, n)}"/>`,
  );
  parts.push(`<rect x="${fmt(x)}" y="${fmt(y)}" width="${w}" height="${fmt(height)}" fill="none" stroke="#444444" stroke-width="0.8"/>`);
  const ticks = niceTicks(scale.vmin, scale.vmax, 5);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : undefined;
  const span = scale.vmax - scale.vmin;
  let tickW = 0;
  for (const t of ticks) {
    const ty = span > 0 ? y + ((scale.vmax - t) / span) * height : y + height / 2;
    const label = formatTick(t, step);
    tickW = Math.max(tickW, textWidth(label, 10));
    parts.push(`<line x1="${fmt(x + w)}" y1="${fmt(ty)}" x2="${fmt(x + w + 4)}" y2="${fmt(ty)}" stroke="#444444" stroke-width="0.8"/>`);
    parts.push(svgText(x + w + 6, ty, label, { size: 10, dy: 0.35 }));
  }
  if (o.label) {
    // Reads bottom to top like a y-axis label; the glyphs lie left of the baseline at lx.
    const lx = x + w + 6 + tickW + 18;
    parts.push(svgText(lx, y + height / 2, o.label, { size: 11, anchor: "middle", rotate: -90 }));
  }
  return parts.join("");
}

/** Options of {@link categoryLegendSvg}. */
export interface CategoryLegendOptions {
  x: number;
  y: number;
  categories: readonly string[];
  /** Optional heading above the swatches. */
  label?: string;
}

/** Width of a categorical legend, for layout. */
export function categoryLegendWidth(categories: readonly string[], label?: string): number {
  return Math.max(label ? textWidth(label, 11) : 0, 18 + Math.max(0, ...categories.map((c) => textWidth(c, 10)))) + 6;
}

/** A column of colour swatches with category names (colours from {@link categorical}). */
export function categoryLegendSvg(o: CategoryLegendOptions): string {
  const parts: string[] = [];
  let y = o.y;
  if (o.label) {
    parts.push(svgText(o.x, y + 10, o.label, { size: 11, weight: "bold" }));
    y += 18;
  }
  o.categories.forEach((c, i) => {
    parts.push(`<rect x="${fmt(o.x)}" y="${fmt(y + i * 16)}" width="12" height="12" fill="${rgbHex(categorical(i))}" stroke="#444444" stroke-width="0.5"/>`);
    parts.push(svgText(o.x + 18, y + i * 16 + 6, c, { size: 10, dy: 0.35 }));
  });
  return parts.join("");
}

// ---------------------------------------------------------------------------------------
// Rasters: a synchronous PNG encoder for embedded images
// ---------------------------------------------------------------------------------------

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * Encode 8-bit RGB pixels as a PNG file, synchronously (zlib deflate, no filtering).
 *
 * @param rgb [height, width, 3] row-major bytes.
 * @param width Width in pixels.
 * @param height Height in pixels.
 * @throws RangeError when the buffer size does not match.
 */
export function encodeRgbPngSync(rgb: Uint8Array, width: number, height: number): Buffer {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1 || rgb.length !== width * height * 3) {
    throw new RangeError(`encodeRgbPngSync: expected ${width}x${height}x3 bytes, got ${rgb.length}`);
  }
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let r = 0; r < height; r++) raw.set(rgb.subarray(r * stride, (r + 1) * stride), r * (stride + 1) + 1);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", deflateSync(raw, { level: 9 })),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}

/** A `data:image/png;base64,...` URI of 8-bit RGB pixels ([height, width, 3] row-major). */
export function pngDataUri(rgb: Uint8Array, width: number, height: number): string {
  return `data:image/png;base64,${encodeRgbPngSync(rgb, width, height).toString("base64")}`;
}

/** Images with more cells than this are drawn as one embedded raster instead of one rect per cell. */
export const MAX_RECT_CELLS = 4096;

/** Options of {@link cellImageSvg}. */
export interface CellImageOptions {
  x: number;
  y: number;
  /** Displayed width and height of the whole image. */
  width: number;
  height: number;
  rows: number;
  cols: number;
  /** Colour of cell (r, c). */
  colorAt: (r: number, c: number) => RGB;
  /** Optional id written as `data-col` on each rect (rect mode only), e.g. the column index. */
  idAt?: (r: number, c: number) => number;
  /** Force the raster (true) or rect (false) representation; default by {@link MAX_RECT_CELLS}. */
  raster?: boolean;
}

/**
 * A rows x cols image of coloured cells filling the given box: one `<rect>` per cell for small
 * images (crisp, inspectable), otherwise a single embedded PNG upscaled by nearest neighbour
 * so that viewers do not blur it.
 */
export function cellImageSvg(o: CellImageOptions): string {
  const { rows, cols } = o;
  const useRaster = o.raster ?? rows * cols > MAX_RECT_CELLS;
  const cw = o.width / cols;
  const ch = o.height / rows;
  if (!useRaster) {
    const parts: string[] = [`<g shape-rendering="crispEdges">`];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const id = o.idAt ? ` data-col="${o.idAt(r, c)}"` : "";
        parts.push(
          `<rect${id} x="${fmt(o.x + c * cw)}" y="${fmt(o.y + r * ch)}" width="${fmt(cw)}" height="${fmt(ch)}" fill="${rgbHex(o.colorAt(r, c))}"/>`,
        );
      }
    }
    parts.push(`</g>`);
    return parts.join("");
  }
  // Upscale by an integer factor so each cell covers roughly >= 1 displayed px at 2x,
  // while keeping the raster under ~1600 px on a side.
  const kx = Math.max(1, Math.min(Math.floor(1600 / cols), Math.ceil((2 * o.width) / cols)));
  const ky = Math.max(1, Math.min(Math.floor(1600 / rows), Math.ceil((2 * o.height) / rows)));
  const k = Math.min(kx, ky);
  const W = cols * k;
  const H = rows * k;
  const rgb = new Uint8Array(W * H * 3);
  const row = new Uint8Array(W * 3);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const col = o.colorAt(r, c);
      for (let i = 0; i < k; i++) row.set(col, 3 * (c * k + i));
    }
    for (let i = 0; i < k; i++) rgb.set(row, 3 * W * (r * k + i));
  }
  return (
    `<image x="${fmt(o.x)}" y="${fmt(o.y)}" width="${fmt(o.width)}" height="${fmt(o.height)}" preserveAspectRatio="none" ` +
    `style="image-rendering:pixelated" xlink:href="${pngDataUri(rgb, W, H)}"/>`
  );
}

// ---------------------------------------------------------------------------------------
// Axes
// ---------------------------------------------------------------------------------------

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  ticks: number[];
  labels: string[];
}

function linearAxis(lo: number, hi: number, opts: { nice: boolean; pad: number; count: number }): Axis {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    [lo, hi] = [lo - d, hi + d];
  } else if (opts.pad > 0) {
    const d = (hi - lo) * opts.pad;
    [lo, hi] = [lo - d, hi + d];
  }
  if (opts.nice) {
    const step = niceStep(lo, hi, opts.count);
    lo = Math.floor(lo / step + 1e-9) * step;
    hi = Math.ceil(hi / step - 1e-9) * step;
  }
  const ticks = niceTicks(lo, hi, opts.count);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : undefined;
  return { lo, hi, log: false, ticks, labels: ticks.map((t) => formatTick(t, step)) };
}

function logAxis(lo: number, hi: number): Axis {
  if (!(lo > 0) || !(hi > 0)) [lo, hi] = [1, 10];
  const a = Math.floor(Math.log10(lo) + 1e-9);
  let b = Math.ceil(Math.log10(hi) - 1e-9);
  if (a === b) b = a + 1;
  const ticks: number[] = [];
  const decades = b - a;
  const stride = Math.max(1, Math.ceil(decades / 8));
  for (let e = a; e <= b; e += stride) ticks.push(10 ** e);
  if (decades <= 2) {
    for (let e = a; e < b; e++) for (const m of [2, 5]) ticks.push(m * 10 ** e);
    ticks.sort((x, y) => x - y);
  }
  const labels = ticks.map((t) => formatTick(cleanFloat(t)));
  return { lo: 10 ** a, hi: 10 ** b, log: true, ticks: ticks.map(cleanFloat), labels };
}

function project(axis: Axis, v: number, r0: number, r1: number): number {
  const f = axis.log
    ? (Math.log10(v) - Math.log10(axis.lo)) / (Math.log10(axis.hi) - Math.log10(axis.lo))
    : (v - axis.lo) / (axis.hi - axis.lo);
  return r0 + f * (r1 - r0);
}

interface Frame {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  px: (v: number) => number;
  py: (v: number) => number;
}

/** Margins, title, grid, ticks and axis labels around a plot box; returns the fragment and projections. */
function drawFrame(
  parts: string[],
  o: { width: number; height: number; title: string; xLabel: string; yLabel: string; right: number },
  xa: Axis,
  ya: Axis,
): Frame {
  const yTickW = Math.max(20, ...ya.labels.map((l) => textWidth(l, 10)));
  const x0 = 18 + (o.yLabel ? 16 : 0) + yTickW + 8;
  const x1 = o.width - o.right;
  const y0 = o.title ? 40 : 14;
  const y1 = o.height - (o.xLabel ? 46 : 28);
  const px = (v: number): number => project(xa, v, x0, x1);
  const py = (v: number): number => project(ya, v, y1, y0);
  if (o.title) parts.push(svgText(o.width / 2, 24, o.title, { size: 15, weight: "bold", anchor: "middle" }));
  parts.push(`<rect x="${fmt(x0)}" y="${fmt(y0)}" width="${fmt(x1 - x0)}" height="${fmt(y1 - y0)}" fill="#fbfbfb" stroke="none"/>`);
  const grid: string[] = [];
  xa.ticks.forEach((t, i) => {
    const x = px(t);
    grid.push(`M${fmt(x)} ${fmt(y0)}V${fmt(y1)}`);
    parts.push(`<line x1="${fmt(x)}" y1="${fmt(y1)}" x2="${fmt(x)}" y2="${fmt(y1 + 4)}" stroke="#444444" stroke-width="0.8"/>`);
    parts.push(svgText(x, y1 + 16, xa.labels[i], { size: 10, anchor: "middle" }));
  });
  ya.ticks.forEach((t, i) => {
    const y = py(t);
    grid.push(`M${fmt(x0)} ${fmt(y)}H${fmt(x1)}`);
    parts.push(`<line x1="${fmt(x0 - 4)}" y1="${fmt(y)}" x2="${fmt(x0)}" y2="${fmt(y)}" stroke="#444444" stroke-width="0.8"/>`);
    parts.push(svgText(x0 - 7, y, ya.labels[i], { size: 10, anchor: "end", dy: 0.35 }));
  });
  if (grid.length) parts.push(`<path d="${grid.join("")}" stroke="#e3e3e3" stroke-width="0.8" fill="none"/>`);
  parts.push(`<rect x="${fmt(x0)}" y="${fmt(y0)}" width="${fmt(x1 - x0)}" height="${fmt(y1 - y0)}" fill="none" stroke="#444444" stroke-width="0.8"/>`);
  if (o.xLabel) parts.push(svgText((x0 + x1) / 2, o.height - 12, o.xLabel, { size: 12, anchor: "middle" }));
  if (o.yLabel) parts.push(svgText(16, (y0 + y1) / 2, o.yLabel, { size: 12, anchor: "middle", rotate: -90 }));
  return { x0, y0, x1, y1, px, py };
}

function noData(parts: string[], f: Frame): void {
  parts.push(svgText((f.x0 + f.x1) / 2, (f.y0 + f.y1) / 2, "no data", { size: 12, anchor: "middle", fill: "#888888" }));
}

// ---------------------------------------------------------------------------------------
// Line chart
// ---------------------------------------------------------------------------------------

/** One line of a {@link lineChart}. */
export interface LineSeries {
  name: string;
  x: readonly number[] | Float32Array | Float64Array;
  y: readonly number[] | Float32Array | Float64Array;
  /** Optional vertical error bar [low, high] per point (e.g. a 95 % confidence interval); non-finite ends draw none. */
  yRange?: readonly (readonly [number, number])[];
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** Named x positions (categories, or values too unevenly spaced for a linear axis), replacing the numeric ticks. */
  xTicks?: readonly { value: number; label: string }[];
  /** Logarithmic y axis (non-positive values are dropped). */
  logY?: boolean;
  /** Size in px (default 640 x 400). */
  width?: number;
  height?: number;
}

/** Per pixel column keep the first, min, max and last point (x must be ascending). */
function decimate(pts: [number, number][], maxBuckets: number): [number, number][] {
  if (pts.length <= 4 * maxBuckets) return pts;
  for (let i = 1; i < pts.length; i++) if (pts[i][0] < pts[i - 1][0]) return pts;
  const out: [number, number][] = [];
  const x0 = pts[0][0];
  const span = pts[pts.length - 1][0] - x0 || 1;
  let i = 0;
  while (i < pts.length) {
    const b = Math.min(maxBuckets - 1, Math.floor(((pts[i][0] - x0) / span) * maxBuckets));
    let j = i;
    let lo = i;
    let hi = i;
    while (j < pts.length && Math.min(maxBuckets - 1, Math.floor(((pts[j][0] - x0) / span) * maxBuckets)) === b) {
      if (pts[j][1] < pts[lo][1]) lo = j;
      if (pts[j][1] > pts[hi][1]) hi = j;
      j++;
    }
    const keep = [...new Set([i, lo, hi, j - 1])].sort((a, c) => a - c);
    for (const k of keep) out.push(pts[k]);
    i = j;
  }
  return out;
}

/**
 * A line chart of one or more series, with a legend when there are several.
 * Non-finite points (and non-positive ones on a log axis) break the line.
 * Series of at most 40 points also get point markers.
 *
 * @throws RangeError when a series' x and y lengths differ.
 */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 640;
  const height = o.height ?? 400;
  const logY = o.logY ?? false;
  for (const s of o.series) {
    if (s.x.length !== s.y.length) throw new RangeError(`lineChart: series "${s.name}" has ${s.x.length} x values but ${s.y.length} y values`);
    if (s.yRange && s.yRange.length !== s.y.length) throw new RangeError(`lineChart: series "${s.name}" has ${s.y.length} y values but ${s.yRange.length} error bars`);
  }
  const ok = (x: number, y: number): boolean => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);
  let xlo = Infinity;
  let xhi = -Infinity;
  let ylo = Infinity;
  let yhi = -Infinity;
  for (const s of o.series) {
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i];
      const y = s.y[i];
      if (!ok(x, y)) continue;
      xlo = Math.min(xlo, x);
      xhi = Math.max(xhi, x);
      for (const v of [y, ...(s.yRange?.[i] ?? [])]) {
        if (!ok(x, v)) continue;
        ylo = Math.min(ylo, v);
        yhi = Math.max(yhi, v);
      }
    }
  }
  const empty = !(xlo <= xhi);
  let xa = linearAxis(empty ? 0 : xlo, empty ? 1 : xhi, { nice: false, pad: 0, count: 6 });
  if (o.xTicks?.length) {
    const values = o.xTicks.map((t) => t.value);
    const [lo, hi] = [Math.min(...values), Math.max(...values)];
    const pad = (hi - lo || 1) * 0.06;
    xa = { lo: lo - pad, hi: hi + pad, log: false, ticks: values, labels: o.xTicks.map((t) => t.label) };
  }
  const ya = logY ? logAxis(empty ? 1 : ylo, empty ? 10 : yhi) : linearAxis(empty ? 0 : ylo, empty ? 1 : yhi, { nice: true, pad: 0.02, count: 5 });
  const legend = o.series.length > 1;
  const legendW = legend ? 34 + Math.max(...o.series.map((s) => textWidth(s.name, 10))) : 0;
  const parts: string[] = [svgOpen(width, height)];
  const f = drawFrame(parts, { width, height, title: o.title, xLabel: o.xLabel, yLabel: o.yLabel, right: legend ? legendW + 16 : 20 }, xa, ya);
  if (empty) noData(parts, f);
  o.series.forEach((s, si) => {
    const color = rgbHex(categorical(si));
    const segments: [number, number][][] = [];
    let cur: [number, number][] = [];
    for (let i = 0; i < s.x.length; i++) {
      if (!ok(s.x[i], s.y[i])) {
        if (cur.length) segments.push(cur);
        cur = [];
        continue;
      }
      cur.push([f.px(s.x[i]), f.py(s.y[i])]);
    }
    if (cur.length) segments.push(cur);
    let d = "";
    for (const seg of segments) {
      const pts = decimate(seg, Math.ceil(f.x1 - f.x0));
      d += pts.map((p, i) => `${i ? "L" : "M"}${fmt(p[0])} ${fmt(p[1])}`).join("");
    }
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8" stroke-linejoin="round" stroke-linecap="round"/>`);
    const bars: string[] = [];
    s.yRange?.forEach(([lo, hi], i) => {
      if (!ok(s.x[i], s.y[i]) || !ok(s.x[i], lo) || !ok(s.x[i], hi)) return;
      const x = f.px(s.x[i]);
      bars.push(`M${fmt(x)} ${fmt(f.py(lo))}V${fmt(f.py(hi))}M${fmt(x - 3)} ${fmt(f.py(lo))}H${fmt(x + 3)}M${fmt(x - 3)} ${fmt(f.py(hi))}H${fmt(x + 3)}`);
    });
    if (bars.length) parts.push(`<path class="error-bar" d="${bars.join("")}" fill="none" stroke="${color}" stroke-width="1.1"/>`);
    const count = segments.reduce((n, seg) => n + seg.length, 0);
    if (count <= 40) {
      for (const seg of segments) for (const p of seg) parts.push(`<circle cx="${fmt(p[0])}" cy="${fmt(p[1])}" r="2.6" fill="${color}"/>`);
    }
  });
  if (legend) {
    const lx = f.x1 + 14;
    o.series.forEach((s, si) => {
      const ly = f.y0 + 8 + si * 18;
      parts.push(`<line x1="${fmt(lx)}" y1="${fmt(ly)}" x2="${fmt(lx + 20)}" y2="${fmt(ly)}" stroke="${rgbHex(categorical(si))}" stroke-width="2.5"/>`);
      parts.push(svgText(lx + 26, ly, s.name, { size: 10, dy: 0.35 }));
    });
  }
  parts.push("</svg>");
  return parts.join("");
}

// ---------------------------------------------------------------------------------------
// Histogram
// ---------------------------------------------------------------------------------------

/** Options of {@link histogram}. */
export interface HistogramOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Bin edges, ascending, length = values.length + 1. */
  edges: readonly number[];
  /** Height of each bin (counts, densities, ...). */
  values: readonly number[];
  /** Size in px (default 640 x 400). */
  width?: number;
  height?: number;
}

/**
 * A histogram from precomputed bins: one bar per [edges[i], edges[i+1]) of height values[i].
 *
 * @throws RangeError when edges.length !== values.length + 1.
 */
export function histogram(o: HistogramOptions): string {
  const width = o.width ?? 640;
  const height = o.height ?? 400;
  if (o.edges.length !== o.values.length + 1) {
    throw new RangeError(`histogram: expected ${o.values.length + 1} edges for ${o.values.length} values, got ${o.edges.length}`);
  }
  const [elo, ehi] = finiteRange(o.edges);
  const [vlo, vhi] = finiteRange(o.values);
  const empty = !(elo < ehi) || !Number.isFinite(vlo);
  const xa = linearAxis(empty ? 0 : elo, empty ? 1 : ehi, { nice: false, pad: 0, count: 6 });
  const ya = linearAxis(Math.min(0, empty ? 0 : vlo), Math.max(empty ? 1 : vhi, 0) || 1, { nice: true, pad: 0, count: 5 });
  const parts: string[] = [svgOpen(width, height)];
  const f = drawFrame(parts, { width, height, title: o.title, xLabel: o.xLabel, yLabel: o.yLabel, right: 20 }, xa, ya);
  if (empty) noData(parts, f);
  const fill = rgbHex(categorical(0));
  const bars: string[] = [];
  const thin = (f.x1 - f.x0) / Math.max(1, o.values.length) < 4;
  for (let i = 0; i < o.values.length; i++) {
    const v = o.values[i];
    const a = o.edges[i];
    const b = o.edges[i + 1];
    if (!Number.isFinite(v) || !Number.isFinite(a) || !Number.isFinite(b) || empty) continue;
    const xa0 = f.px(Math.min(a, b));
    const xa1 = f.px(Math.max(a, b));
    const y0 = f.py(Math.max(0, v));
    const y1 = f.py(Math.min(0, v));
    bars.push(`<rect x="${fmt(xa0)}" y="${fmt(y0)}" width="${fmt(Math.max(0.5, xa1 - xa0))}" height="${fmt(y1 - y0)}"/>`);
  }
  parts.push(`<g fill="${fill}"${thin ? "" : ` stroke="#ffffff" stroke-width="0.6"`}>${bars.join("")}</g>`);
  parts.push("</svg>");
  return parts.join("");
}

// ---------------------------------------------------------------------------------------
// Scatter
// ---------------------------------------------------------------------------------------

/** One point of a {@link scatter}. */
export interface ScatterPoint {
  x: number;
  y: number;
  /** Optional text written next to the point. */
  label?: string;
  /** Optional vertical error bar [low, high] in y units (e.g. a 95 % confidence interval). */
  yRange?: [number, number];
}

/** Options of {@link scatter}. */
export interface ScatterOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  points: readonly ScatterPoint[];
  /** Size in px (default 560 x 440). */
  width?: number;
  height?: number;
}

/** A scatter plot; points with a `label` get it written beside them. Non-finite points are skipped. */
export function scatter(o: ScatterOptions): string {
  const width = o.width ?? 560;
  const height = o.height ?? 440;
  const good = o.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const [xlo, xhi] = finiteRange(good.map((p) => p.x));
  const [ylo, yhi] = finiteRange(good.flatMap((p) => [p.y, ...(p.yRange ?? []).filter((v) => Number.isFinite(v))]));
  const xa = linearAxis(xlo, xhi, { nice: true, pad: 0.05, count: 6 });
  const ya = linearAxis(ylo, yhi, { nice: true, pad: 0.05, count: 5 });
  const parts: string[] = [svgOpen(width, height)];
  const f = drawFrame(parts, { width, height, title: o.title, xLabel: o.xLabel, yLabel: o.yLabel, right: 20 }, xa, ya);
  if (good.length === 0) noData(parts, f);
  const r = good.length > 2000 ? 1.6 : good.length > 300 ? 2.4 : 3.8;
  const bars = good.filter((p) => p.yRange && Number.isFinite(p.yRange[0]) && Number.isFinite(p.yRange[1]));
  if (bars.length) {
    const cap = (x: number, y: number) => `<line x1="${fmt(x - 4)}" y1="${fmt(y)}" x2="${fmt(x + 4)}" y2="${fmt(y)}"/>`;
    const lines = bars.map((p) => {
      const x = f.px(p.x);
      const [lo, hi] = p.yRange!;
      return `<line class="error-bar" x1="${fmt(x)}" y1="${fmt(f.py(lo))}" x2="${fmt(x)}" y2="${fmt(f.py(hi))}"/>${cap(x, f.py(lo))}${cap(x, f.py(hi))}`;
    });
    parts.push(`<g stroke="#555555" stroke-width="1.2">${lines.join("")}</g>`);
  }
  const dots = good.map((p) => `<circle cx="${fmt(f.px(p.x))}" cy="${fmt(f.py(p.y))}" r="${r}"/>`);
  parts.push(`<g fill="${rgbHex(categorical(0))}" fill-opacity="0.8" stroke="#ffffff" stroke-width="${good.length > 300 ? 0 : 0.6}">${dots.join("")}</g>`);
  for (const p of good) {
    if (!p.label) continue;
    const x = f.px(p.x);
    const right = x + 6 + textWidth(p.label, 10) < f.x1;
    parts.push(svgText(right ? x + 6 : x - 6, f.py(p.y) - 5, p.label, { size: 10, anchor: right ? "start" : "end" }));
  }
  parts.push("</svg>");
  return parts.join("");
}

// ---------------------------------------------------------------------------------------
// Matrix heatmap
// ---------------------------------------------------------------------------------------

/** A dense row-major matrix. */
export interface DenseMatrix {
  rows: number;
  cols: number;
  /** [rows, cols] row-major. */
  data: ArrayLike<number>;
}

/** Options of {@link matrixHeatmap}. */
export interface MatrixHeatmapOptions {
  title: string;
  /** The matrix: an array of rows, or a dense row-major matrix (e.g. a Float32Array of attention). */
  values: readonly (readonly number[])[] | DenseMatrix;
  colormap: ContinuousColormap;
  colorbarLabel: string;
  /** Labels of the rows (top to bottom) and columns (left to right); indices when absent. */
  rowLabels?: readonly string[];
  colLabels?: readonly string[];
  /** Axis titles, e.g. "key column" / "query column". */
  xLabel?: string;
  yLabel?: string;
  /** Fixed colour range (default: data range; symmetric about 0 for "diverging"). */
  vmin?: number;
  vmax?: number;
  /** Largest side of the matrix area in px (default 480). */
  size?: number;
}

function toDense(values: MatrixHeatmapOptions["values"]): DenseMatrix {
  if (!Array.isArray(values)) return values as DenseMatrix;
  const rowsArr = values as readonly (readonly number[])[];
  const rows = rowsArr.length;
  const cols = rows ? rowsArr[0].length : 0;
  const data = new Float64Array(rows * cols);
  rowsArr.forEach((row, r) => {
    if (row.length !== cols) throw new RangeError(`matrixHeatmap: row ${r} has ${row.length} values, row 0 has ${cols}`);
    for (let c = 0; c < cols; c++) data[r * cols + c] = row[c];
  });
  return { rows, cols, data };
}

/** Which indices of an axis of `n` cells get a label (all when few; about 12 evenly otherwise). */
function labelledIndices(n: number, labels: readonly string[] | undefined, maxAll: number): number[] {
  if (labels && n <= maxAll) return Array.from({ length: n }, (_, i) => i);
  const ticks = niceTicks(0, n - 1, labels ? 12 : 6).filter((t) => Number.isInteger(t));
  return ticks.length ? ticks : [0];
}

/**
 * A heatmap of a matrix (e.g. attention, rows = queries, cols = keys) with a colour bar.
 * Row 0 is at the top. Up to {@link MAX_RECT_CELLS} cells are drawn as rects, larger matrices
 * as one embedded PNG (matrices over 1024 on a side are block-averaged down first).
 *
 * @throws RangeError on ragged rows or a data length that does not match rows x cols.
 */
export function matrixHeatmap(o: MatrixHeatmapOptions): string {
  let m = toDense(o.values);
  if (m.data.length !== m.rows * m.cols) throw new RangeError(`matrixHeatmap: expected ${m.rows}x${m.cols} values, got ${m.data.length}`);
  if (o.rowLabels && o.rowLabels.length !== m.rows) throw new RangeError(`matrixHeatmap: ${o.rowLabels.length} row labels for ${m.rows} rows`);
  if (o.colLabels && o.colLabels.length !== m.cols) throw new RangeError(`matrixHeatmap: ${o.colLabels.length} column labels for ${m.cols} columns`);
  const scale = makeColorScale(o.colormap, Array.from(m.data), o.vmin, o.vmax);
  const origRows = m.rows;
  const origCols = m.cols;
  const f = Math.ceil(Math.max(m.rows, m.cols) / 1024);
  if (f > 1) m = blockMean(m, f);
  const rows = Math.max(1, origRows);
  const cols = Math.max(1, origCols);
  const size = o.size ?? 480;
  const cell = Math.min(size / rows, size / cols, 48);
  const cellPx = cell >= 4 ? Math.floor(cell) : cell;
  const mw = cellPx * cols;
  const mh = cellPx * rows;

  const rowIdx = labelledIndices(rows, o.rowLabels, Math.floor(mh / 11));
  const colIdx = labelledIndices(cols, o.colLabels, Math.floor(mw / 11));
  const rowText = (i: number): string => (o.rowLabels ? o.rowLabels[i] : String(i));
  const colText = (i: number): string => (o.colLabels ? o.colLabels[i] : String(i));
  const rowW = Math.max(10, ...rowIdx.map((i) => textWidth(rowText(i), 10)));
  const colW = Math.max(10, ...colIdx.map((i) => textWidth(colText(i), 10)));
  const rotateCols = colW > Math.max(cellPx * (cols / Math.max(1, colIdx.length)) - 4, 24);
  const colBand = rotateCols ? colW + 8 : 18;

  const x0 = 14 + (o.yLabel ? 18 : 0) + rowW + 8;
  const y0 = o.title ? 40 : 14;
  const cbW = colorbarWidth(scale, o.colorbarLabel);
  const width = Math.max(x0 + mw + 24 + cbW + 12, o.title ? textWidth(o.title, 15) + 40 : 0);
  const height = Math.max(y0 + mh + 6 + colBand + (o.xLabel ? 22 : 4) + 8, y0 + 120 + 10);
  const parts: string[] = [svgOpen(width, height)];
  if (o.title) parts.push(svgText(width / 2, 24, o.title, { size: 15, weight: "bold", anchor: "middle" }));
  if (m.rows > 0 && m.cols > 0) {
    parts.push(
      cellImageSvg({
        x: x0,
        y: y0,
        width: mw,
        height: mh,
        rows: m.rows,
        cols: m.cols,
        colorAt: (r, c) => scale.color(m.data[r * m.cols + c]),
      }),
    );
  }
  parts.push(`<rect x="${fmt(x0)}" y="${fmt(y0)}" width="${fmt(mw)}" height="${fmt(mh)}" fill="none" stroke="#444444" stroke-width="0.8"/>`);
  for (const i of rowIdx) {
    const y = y0 + (i + 0.5) * cellPx;
    parts.push(svgText(x0 - 5, y, rowText(i), { size: 10, anchor: "end", dy: 0.35 }));
  }
  for (const i of colIdx) {
    const x = x0 + (i + 0.5) * cellPx;
    if (rotateCols) parts.push(svgText(x, y0 + mh + 6, colText(i), { size: 10, anchor: "end", rotate: -90, dy: 0.35 }));
    else parts.push(svgText(x, y0 + mh + 15, colText(i), { size: 10, anchor: "middle" }));
  }
  if (o.xLabel) parts.push(svgText(x0 + mw / 2, y0 + mh + 6 + colBand + 14, o.xLabel, { size: 12, anchor: "middle" }));
  if (o.yLabel) parts.push(svgText(16, y0 + mh / 2, o.yLabel, { size: 12, anchor: "middle", rotate: -90 }));
  parts.push(colorbarSvg({ x: x0 + mw + 24, y: y0, height: Math.max(mh, 120), scale, label: o.colorbarLabel }));
  parts.push("</svg>");
  return parts.join("");
}

function blockMean(m: DenseMatrix, f: number): DenseMatrix {
  const rows = Math.ceil(m.rows / f);
  const cols = Math.ceil(m.cols / f);
  const sum = new Float64Array(rows * cols);
  const cnt = new Float64Array(rows * cols);
  for (let r = 0; r < m.rows; r++) {
    for (let c = 0; c < m.cols; c++) {
      const v = m.data[r * m.cols + c];
      if (!Number.isFinite(v)) continue;
      const k = Math.floor(r / f) * cols + Math.floor(c / f);
      sum[k] += v;
      cnt[k] += 1;
    }
  }
  for (let k = 0; k < sum.length; k++) sum[k] = cnt[k] ? sum[k] / cnt[k] : Number.NaN;
  return { rows, cols, data: sum };
}
