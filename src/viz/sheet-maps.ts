/**
 * Sheet maps: one value per column painted where the column sits in its geometry.
 *
 * `sheetLayout(geometry)` turns a geometry into drawable panels:
 * - every area has a grid (grid, torus, stacked, custom with grid areas): one image per area,
 *   one cell per column, row-major (row 0 at the top), areas side by side with equal cell size
 *   and titled by area name when there are several;
 * - sphere: a Mollweide (equal-area) projection of the unit-sphere positions, north (+y) up,
 *   longitude atan2(z, x), one dot per column inside the outlined ellipse;
 * - anything else (custom positions): a scatter of dots at the first two coordinates
 *   (x to the right, y downwards, like the grid images; 1-D positions lie on a line).
 *
 * `sheetMap`, `sheetMaps` (small multiples with a shared colour bar) and `attentionOnSheet`
 * render SVG strings; see charts.ts for the shared building blocks.
 */
import type { Geometry } from "../geometry/types.ts";
import {
  categoryLegendSvg,
  categoryLegendWidth,
  cellImageSvg,
  colorbarSvg,
  colorbarWidth,
  fmt,
  makeColorScale,
  svgOpen,
  svgText,
  textWidth,
} from "./charts.ts";
import type { ColorScale } from "./charts.ts";
import { MISSING_COLOR, categorical, rgbHex } from "./colormap.ts";
import type { RGB } from "./colormap.ts";

/** A grid panel: columns start .. start + rows*cols - 1, row-major. */
export interface GridPanel {
  kind: "grid";
  /** Panel heading ("" for none). */
  title: string;
  /** Index of the column in the top-left cell. */
  start: number;
  rows: number;
  cols: number;
}

/** A panel of dots at 2-D display coordinates (x right, y down, arbitrary units). */
export interface PointsPanel {
  kind: "points";
  /** Panel heading ("" for none). */
  title: string;
  /** Column index of each dot. */
  indices: Int32Array;
  /** Display coordinates of each dot. */
  x: Float64Array;
  y: Float64Array;
  /** Visible extent in the same units. */
  xmin: number;
  xmax: number;
  ymin: number;
  ymax: number;
  /** Dot radius in the same units. */
  dotRadius: number;
  /** Outline drawn behind the dots: the Mollweide ellipse of a sphere, or none. */
  frame: "ellipse" | "none";
}

/** One drawable panel of a sheet. */
export type SheetPanel = GridPanel | PointsPanel;

/** How to draw the columns of a geometry: plain data, built by {@link sheetLayout}. */
export interface SheetLayout {
  numColumns: number;
  /** Panels drawn side by side (all grid panels, or a single points panel). */
  panels: SheetPanel[];
  /** A note on the projection, shown under the map ("" for none). */
  note: string;
}

/** Mollweide semi-axes for the unit sphere: x in [-2 sqrt 2, 2 sqrt 2], y in [-sqrt 2, sqrt 2]. */
export const MOLLWEIDE_A = 2 * Math.SQRT2;
export const MOLLWEIDE_B = Math.SQRT2;

/**
 * Mollweide projection of latitude/longitude (radians) to (x, y) with y up (north positive).
 * Equal-area: the whole sphere maps onto the ellipse with semi-axes 2 sqrt 2 and sqrt 2 (area 4 pi).
 */
export function mollweide(lat: number, lon: number): [number, number] {
  let theta = lat;
  if (Math.abs(Math.abs(lat) - Math.PI / 2) < 1e-12) {
    theta = Math.sign(lat) * (Math.PI / 2);
  } else {
    // Newton on f(t) = 2t + sin 2t - pi sin(lat), in t' = 2 theta.
    let t = 2 * Math.asin((2 * lat) / Math.PI);
    const target = Math.PI * Math.sin(lat);
    for (let k = 0; k < 50; k++) {
      const d = (t + Math.sin(t) - target) / (1 + Math.cos(t));
      t -= d;
      if (!Number.isFinite(t)) {
        t = 2 * lat;
        break;
      }
      if (Math.abs(d) < 1e-12) break;
    }
    theta = t / 2;
  }
  return [((2 * Math.SQRT2) / Math.PI) * lon * Math.cos(theta), Math.SQRT2 * Math.sin(theta)];
}

/** Median nearest-neighbour distance of 2-D points (a sample of <= 400 points for large sets; coincident points ignored; 1 when none). */
export function medianNearest(x: Float64Array, y: Float64Array): number {
  const n = x.length;
  if (n < 2) return 1;
  const sample = Math.min(n, 400);
  const dists: number[] = [];
  for (let s = 0; s < sample; s++) {
    const i = Math.floor((s * n) / sample);
    let best = Infinity;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const d = (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2;
      if (d > 0 && d < best) best = d;
    }
    if (Number.isFinite(best)) dists.push(Math.sqrt(best));
  }
  if (!dists.length) return 1;
  dists.sort((a, b) => a - b);
  return dists[Math.floor(dists.length / 2)];
}

/**
 * How to draw a geometry's columns (see the module comment for the rules per kind).
 *
 * @param geometry A built geometry.
 * @returns Plain-data panels for {@link sheetMap} and friends.
 */
export function sheetLayout(geometry: Geometry): SheetLayout {
  const n = geometry.numColumns;
  const areas = geometry.areas;
  const gridded =
    geometry.spec.kind !== "sphere" &&
    areas.length > 0 &&
    areas.every((a) => a.grid !== undefined && a.grid[0] * a.grid[1] === a.end - a.start) &&
    areas.reduce((s, a) => s + (a.end - a.start), 0) === n;
  if (gridded) {
    const panels: GridPanel[] = areas.map((a) => ({
      kind: "grid",
      title: areas.length > 1 ? a.name : "",
      start: a.start,
      rows: (a.grid as [number, number])[0],
      cols: (a.grid as [number, number])[1],
    }));
    return { numColumns: n, panels, note: "" };
  }
  const dim = geometry.positionDim;
  const pos = geometry.positions;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const indices = new Int32Array(n);
  for (let i = 0; i < n; i++) indices[i] = i;
  if (geometry.spec.kind === "sphere") {
    for (let i = 0; i < n; i++) {
      const px = pos[dim * i];
      const py = pos[dim * i + 1];
      const pz = pos[dim * i + 2];
      const r = Math.hypot(px, py, pz) || 1;
      const lat = Math.asin(Math.max(-1, Math.min(1, py / r)));
      const lon = Math.atan2(pz, px);
      const [mx, my] = mollweide(lat, lon);
      x[i] = mx;
      y[i] = -my; // north up on screen
    }
    // Each column owns 4 pi / n of the ellipse's area; dots cover about half of it.
    const dotRadius = Math.min(0.3, 1.4 / Math.sqrt(Math.max(1, n)));
    const pad = 0.02 + dotRadius;
    return {
      numColumns: n,
      panels: [
        {
          kind: "points",
          title: "",
          indices,
          x,
          y,
          xmin: -MOLLWEIDE_A - pad,
          xmax: MOLLWEIDE_A + pad,
          ymin: -MOLLWEIDE_B - pad,
          ymax: MOLLWEIDE_B + pad,
          dotRadius,
          frame: "ellipse",
        },
      ],
      note: "Mollweide equal-area projection, north (+y) up",
    };
  }
  for (let i = 0; i < n; i++) {
    x[i] = pos[dim * i];
    y[i] = dim > 1 ? pos[dim * i + 1] : 0;
  }
  let xmin = Infinity;
  let xmax = -Infinity;
  let ymin = Infinity;
  let ymax = -Infinity;
  for (let i = 0; i < n; i++) {
    xmin = Math.min(xmin, x[i]);
    xmax = Math.max(xmax, x[i]);
    ymin = Math.min(ymin, y[i]);
    ymax = Math.max(ymax, y[i]);
  }
  if (!(xmin <= xmax)) [xmin, xmax, ymin, ymax] = [-1, 1, -1, 1];
  const span = Math.max(xmax - xmin, ymax - ymin) || 1;
  const dotRadius = Math.max(span / 400, Math.min(span / 8, 0.45 * medianNearest(x, y)));
  const pad = dotRadius * 1.6;
  return {
    numColumns: n,
    panels: [{ kind: "points", title: "", indices, x, y, xmin: xmin - pad, xmax: xmax + pad, ymin: ymin - pad, ymax: ymax + pad, dotRadius, frame: "none" }],
    note: dim > 2 ? "first two coordinates (x right, y down)" : "",
  };
}

// ---------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------

/** Values accepted for a sheet: one number per column. */
export type ColumnValues = Float32Array | Float64Array | readonly number[];

/** The colour maps of a sheet map. */
export type SheetColormap = "viridis" | "diverging" | "categorical";

interface Painter {
  color: (v: number) => RGB;
  scale?: ColorScale;
}

const PANEL_GAP = 18;
const PANEL_TITLE_H = 16;

interface Block {
  svg: string;
  width: number;
  height: number;
}

/** Size in px of a block drawn with box limits (maxW, maxH); also returns the px per unit. */
function blockGeometry(layout: SheetLayout, maxW: number, maxH: number): { unit: number; width: number; height: number; titled: boolean } {
  const titled = layout.panels.some((p) => p.title !== "");
  const titleH = titled ? PANEL_TITLE_H : 0;
  const gaps = PANEL_GAP * (layout.panels.length - 1);
  let sumW = 0;
  let maxUnitsH = 0;
  for (const p of layout.panels) {
    const [w, h] = p.kind === "grid" ? [p.cols, p.rows] : [p.xmax - p.xmin, p.ymax - p.ymin];
    sumW += w;
    maxUnitsH = Math.max(maxUnitsH, h);
  }
  let unit = Math.min((maxW - gaps) / Math.max(sumW, 1e-9), (maxH - titleH) / Math.max(maxUnitsH, 1e-9));
  if (layout.panels.every((p) => p.kind === "grid") && unit >= 3) unit = Math.floor(unit);
  return { unit, width: sumW * unit + gaps, height: maxUnitsH * unit + titleH, titled };
}

function drawBlock(layout: SheetLayout, values: ColumnValues, painter: Painter, highlight: readonly number[], x: number, y: number, maxW: number, maxH: number): Block {
  const g = blockGeometry(layout, maxW, maxH);
  const titleH = g.titled ? PANEL_TITLE_H : 0;
  const parts: string[] = [];
  const marks: string[] = [];
  const hl = new Set(highlight);
  let px = x;
  for (const p of layout.panels) {
    const pw = (p.kind === "grid" ? p.cols : p.xmax - p.xmin) * g.unit;
    const ph = (p.kind === "grid" ? p.rows : p.ymax - p.ymin) * g.unit;
    const py = y + titleH;
    if (p.title) parts.push(svgText(px + pw / 2, y + 11, p.title, { size: 11, anchor: "middle" }));
    if (p.kind === "grid") {
      parts.push(
        cellImageSvg({
          x: px,
          y: py,
          width: pw,
          height: ph,
          rows: p.rows,
          cols: p.cols,
          colorAt: (r, c) => painter.color(values[p.start + r * p.cols + c]),
          idAt: (r, c) => p.start + r * p.cols + c,
        }),
      );
      parts.push(`<rect x="${fmt(px)}" y="${fmt(py)}" width="${fmt(pw)}" height="${fmt(ph)}" fill="none" stroke="#444444" stroke-width="0.8"/>`);
      for (const i of hl) {
        if (i < p.start || i >= p.start + p.rows * p.cols) continue;
        const r = Math.floor((i - p.start) / p.cols);
        const c = (i - p.start) % p.cols;
        const s = Math.max(g.unit, 7);
        const cx = px + (c + 0.5) * g.unit;
        const cy = py + (r + 0.5) * g.unit;
        marks.push(highlightRect(cx - s / 2, cy - s / 2, s));
      }
    } else {
      const sx = (v: number): number => px + (v - p.xmin) * g.unit;
      const sy = (v: number): number => py + (v - p.ymin) * g.unit;
      const r = Math.max(1, p.dotRadius * g.unit);
      if (p.frame === "ellipse") {
        parts.push(
          `<ellipse cx="${fmt(sx(0))}" cy="${fmt(sy(0))}" rx="${fmt(MOLLWEIDE_A * g.unit)}" ry="${fmt(MOLLWEIDE_B * g.unit)}" fill="#f4f4f4" stroke="#444444" stroke-width="0.8"/>`,
        );
      } else {
        parts.push(`<rect x="${fmt(px)}" y="${fmt(py)}" width="${fmt(pw)}" height="${fmt(ph)}" fill="#fbfbfb" stroke="#bbbbbb" stroke-width="0.8"/>`);
      }
      const dots: string[] = [];
      for (let k = 0; k < p.indices.length; k++) {
        const i = p.indices[k];
        dots.push(`<circle data-col="${i}" cx="${fmt(sx(p.x[k]))}" cy="${fmt(sy(p.y[k]))}" r="${fmt(r)}" fill="${rgbHex(painter.color(values[i]))}"/>`);
        if (hl.has(i)) marks.push(highlightCircle(sx(p.x[k]), sy(p.y[k]), Math.max(r + 1.5, 5)));
      }
      parts.push(`<g>${dots.join("")}</g>`);
    }
    px += pw + PANEL_GAP;
  }
  parts.push(...marks);
  return { svg: parts.join(""), width: g.width, height: g.height };
}

function highlightRect(x: number, y: number, s: number): string {
  return (
    `<rect x="${fmt(x)}" y="${fmt(y)}" width="${fmt(s)}" height="${fmt(s)}" fill="none" stroke="#000000" stroke-width="2.4"/>` +
    `<rect class="highlight" x="${fmt(x)}" y="${fmt(y)}" width="${fmt(s)}" height="${fmt(s)}" fill="none" stroke="#ffffff" stroke-width="1"/>`
  );
}

function highlightCircle(cx: number, cy: number, r: number): string {
  return (
    `<circle cx="${fmt(cx)}" cy="${fmt(cy)}" r="${fmt(r)}" fill="none" stroke="#000000" stroke-width="2.4"/>` +
    `<circle class="highlight" cx="${fmt(cx)}" cy="${fmt(cy)}" r="${fmt(r)}" fill="none" stroke="#ffffff" stroke-width="1"/>`
  );
}

function makePainter(colormap: SheetColormap, all: Iterable<number>, vmin?: number, vmax?: number): Painter {
  if (colormap === "categorical") {
    return { color: (v) => (Number.isFinite(v) && v >= 0 ? categorical(Math.round(v)) : MISSING_COLOR) };
  }
  const scale = makeColorScale(colormap, all, vmin, vmax);
  return { color: scale.color, scale };
}

/** Category names for the legend: the given ones, or the distinct class indices present. */
function legendCategories(valuesList: readonly ColumnValues[], categories?: readonly string[]): string[] {
  if (categories) return [...categories];
  let max = -1;
  for (const vs of valuesList) for (const v of vs) if (Number.isFinite(v) && v >= 0) max = Math.max(max, Math.round(v));
  return Array.from({ length: max + 1 }, (_, i) => String(i));
}

function legendWidth(painter: Painter, label: string, cats: readonly string[]): number {
  return painter.scale ? colorbarWidth(painter.scale, label) : categoryLegendWidth(cats, label);
}

function legendSvg(painter: Painter, label: string, cats: readonly string[], x: number, y: number, height: number): string {
  return painter.scale ? colorbarSvg({ x, y, height, scale: painter.scale, label }) : categoryLegendSvg({ x, y, categories: cats, label });
}

function checkValues(layout: SheetLayout, values: ColumnValues, what: string): void {
  if (values.length !== layout.numColumns) throw new RangeError(`${what}: expected ${layout.numColumns} values (one per column), got ${values.length}`);
}

/** Options of {@link sheetMap}. */
export interface SheetMapOptions {
  title: string;
  /** One value per column [N]; class indices for "categorical". */
  values: ColumnValues;
  layout: SheetLayout;
  colormap: SheetColormap;
  /** Label of the colour bar (heading of the legend for "categorical"). */
  colorbarLabel: string;
  /** Class names for "categorical" (index -> name). */
  categories?: readonly string[];
  /** Column indices to outline. */
  highlight?: readonly number[];
  /** Fixed colour range (default: data range; symmetric about 0 for "diverging"). */
  vmin?: number;
  vmax?: number;
  /** Largest side of the map in px (default 440). */
  size?: number;
}

/**
 * Paint one value per column on the sheet, with a colour bar (or class legend).
 * NaN values are drawn light grey.
 *
 * @throws RangeError when values.length differs from the layout's column count.
 */
export function sheetMap(o: SheetMapOptions): string {
  checkValues(o.layout, o.values, "sheetMap");
  const size = o.size ?? 440;
  const painter = makePainter(o.colormap, o.values, o.vmin, o.vmax);
  const cats = o.colormap === "categorical" ? legendCategories([o.values], o.categories) : [];
  const x0 = 16;
  const y0 = o.title ? 42 : 14;
  const g = blockGeometry(o.layout, size * (o.layout.panels.length > 1 ? 1.6 : 1), size);
  const block = drawBlock(o.layout, o.values, painter, o.highlight ?? [], x0, y0, size * (o.layout.panels.length > 1 ? 1.6 : 1), size);
  const lw = legendWidth(painter, o.colorbarLabel, cats);
  const legendH = painter.scale ? Math.max(120, g.height) : 18 + cats.length * 16;
  const noteH = o.layout.note ? 18 : 0;
  const width = Math.max(x0 + block.width + 24 + lw + 12, o.title ? textWidth(o.title, 15) + 32 : 0, textWidth(o.layout.note, 10) + 32);
  const height = y0 + Math.max(block.height + noteH, legendH) + 12;
  const parts = [svgOpen(width, height)];
  if (o.title) parts.push(svgText(width / 2, 26, o.title, { size: 15, weight: "bold", anchor: "middle" }));
  parts.push(block.svg);
  if (o.layout.note) parts.push(svgText(x0 + block.width / 2, y0 + block.height + 14, o.layout.note, { size: 10, anchor: "middle", fill: "#666666" }));
  parts.push(legendSvg(painter, o.colorbarLabel, cats, x0 + block.width + 24, y0 + (g.titled ? PANEL_TITLE_H : 0), legendH - (g.titled && painter.scale ? PANEL_TITLE_H : 0)));
  parts.push("</svg>");
  return parts.join("");
}

/** One map of {@link sheetMaps}. */
export interface SheetMapPanel {
  /** Heading of this map (e.g. the class or step). */
  title: string;
  values: ColumnValues;
  /** Column indices to outline in this map. */
  highlight?: readonly number[];
}

/** Options of {@link sheetMaps}. */
export interface SheetMapsOptions {
  title: string;
  maps: readonly SheetMapPanel[];
  layout: SheetLayout;
  colormap: SheetColormap;
  colorbarLabel: string;
  categories?: readonly string[];
  /** Fixed colour range shared by all maps (default: range over all maps). */
  vmin?: number;
  vmax?: number;
  /** Maps per row (default: ceil(sqrt(count)), at most 5). */
  columns?: number;
  /** Largest side of each map in px (default 180). */
  size?: number;
}

/**
 * Small multiples: several sheet maps of the same layout in a grid, with one shared colour
 * scale and colour bar (or class legend).
 *
 * @throws RangeError when a map's values do not have one value per column.
 */
export function sheetMaps(o: SheetMapsOptions): string {
  o.maps.forEach((m, k) => {
    checkValues(o.layout, m.values, `sheetMaps (map ${k})`);
  });
  const size = o.size ?? 180;
  const count = o.maps.length;
  const ncols = Math.max(1, Math.min(count || 1, o.columns ?? Math.min(5, Math.ceil(Math.sqrt(count || 1)))));
  const nrows = Math.max(1, Math.ceil(count / ncols));
  const all: number[] = [];
  for (const m of o.maps) for (const v of m.values) all.push(v);
  const painter = makePainter(o.colormap, all, o.vmin, o.vmax);
  const cats = o.colormap === "categorical" ? legendCategories(o.maps.map((m) => m.values), o.categories) : [];
  const maxW = size * (o.layout.panels.length > 1 ? 1.6 : 1);
  const g = blockGeometry(o.layout, maxW, size);
  const cellW = Math.max(g.width, ...o.maps.map((m) => textWidth(m.title, 12))) + 20;
  const cellH = g.height + 34;
  const x0 = 14;
  const y0 = o.title ? 42 : 12;
  const gridW = ncols * cellW;
  const gridH = nrows * cellH;
  const lw = legendWidth(painter, o.colorbarLabel, cats);
  const noteH = o.layout.note ? 16 : 0;
  const width = Math.max(x0 + gridW + 10 + lw + 12, o.title ? textWidth(o.title, 15) + 32 : 0);
  const legendH = painter.scale ? Math.min(Math.max(120, gridH - 22), 320) : 18 + cats.length * 16;
  const height = y0 + Math.max(gridH + noteH, legendH + 22) + 10;
  const parts = [svgOpen(width, height)];
  if (o.title) parts.push(svgText(width / 2, 26, o.title, { size: 15, weight: "bold", anchor: "middle" }));
  o.maps.forEach((m, k) => {
    const cx = x0 + (k % ncols) * cellW;
    const cy = y0 + Math.floor(k / ncols) * cellH;
    parts.push(svgText(cx + cellW / 2 - 10, cy + 12, m.title, { size: 12, anchor: "middle" }));
    const bx = cx + (cellW - 20 - g.width) / 2;
    parts.push(drawBlock(o.layout, m.values, painter, m.highlight ?? [], bx, cy + 20, maxW, size).svg);
  });
  if (o.layout.note) parts.push(svgText(x0 + gridW / 2, y0 + gridH + 10, o.layout.note, { size: 10, anchor: "middle", fill: "#666666" }));
  parts.push(legendSvg(painter, o.colorbarLabel, cats, x0 + gridW + 10, y0 + 22, legendH));
  parts.push("</svg>");
  return parts.join("");
}

/** Options of {@link attentionOnSheet}. */
export interface AttentionOnSheetOptions {
  /** Attention weights [N, N] row-major: entry (i, j) is how much query column i attends to key column j. */
  attention: Float32Array | Float64Array | readonly number[];
  layout: SheetLayout;
  /** The chosen column (outlined on the map). */
  column: number;
  /**
   * "incoming": row `column` (where the chosen column reads from);
   * "outgoing": column `column` (which columns read from it).
   */
  direction: "incoming" | "outgoing";
  /** Default: "Incoming attention of column i" / "Outgoing attention of column j". */
  title?: string;
  /** Default "attention weight". */
  colorbarLabel?: string;
  /** Default "viridis". */
  colormap?: "viridis" | "diverging";
  vmin?: number;
  vmax?: number;
  size?: number;
}

/**
 * The attention one column receives from (incoming, row i) or gives to (outgoing, column j)
 * every other column, painted on the sheet with the chosen column outlined.
 *
 * @throws RangeError on an attention size other than N*N or a column out of range.
 */
export function attentionOnSheet(o: AttentionOnSheetOptions): string {
  const n = o.layout.numColumns;
  if (o.attention.length !== n * n) throw new RangeError(`attentionOnSheet: expected ${n}x${n} = ${n * n} weights, got ${o.attention.length}`);
  if (!Number.isInteger(o.column) || o.column < 0 || o.column >= n) throw new RangeError(`attentionOnSheet: column must be an integer in [0, ${n}), got ${o.column}`);
  const values = new Float64Array(n);
  for (let k = 0; k < n; k++) values[k] = o.direction === "incoming" ? o.attention[o.column * n + k] : o.attention[k * n + o.column];
  const title = o.title ?? (o.direction === "incoming" ? `Incoming attention of column ${o.column}` : `Outgoing attention of column ${o.column}`);
  return sheetMap({
    title,
    values,
    layout: o.layout,
    colormap: o.colormap ?? "viridis",
    colorbarLabel: o.colorbarLabel ?? "attention weight",
    highlight: [o.column],
    vmin: o.vmin,
    vmax: o.vmax,
    size: o.size,
  });
}
