/**
 * Column layout: every column drawn as a dot at its actual position (given or learned),
 * coloured by a category (its area, its preferred class, ...), with optional edges (the
 * strongest connections) drawn as lines under the dots.
 *
 * Positions are drawn with equal aspect ratio, x to the right and y downwards (like the
 * sheet maps), in these projections:
 * - 1-D: on a horizontal line (y = 0);
 * - 2-D: as they are;
 * - 3-D: an OBLIQUE projection X = x + a z, Y = y + b z ({@link obliqueProjection}): the
 *   z axis recedes at 45 degrees towards the upper right (a = k cos 45, b = -k sin 45), so
 *   a column further along z is drawn further up and to the right. The depth scale k is
 *   0.5 (the cabinet projection: a sphere becomes a disc-like cloud), except when the
 *   columns form LAYERS along z (e.g. stacked areas): then k grows just enough for
 *   consecutive layers to be drawn as separate, offset sheets (a staircase from the
 *   lowest z at the bottom left to the highest at the top right).
 *
 * Pure: plain data in, an SVG document string out (no ids, so several can be inlined in
 * one HTML page).
 */
import { categoryLegendSvg, categoryLegendWidth, fmt, formatTick, niceStep, svgOpen, svgText, textWidth } from "./charts.ts";
import { MISSING_COLOR, categorical, rgbHex } from "./colormap.ts";
import { medianNearest } from "./sheet-maps.ts";

/** A directed connection between two columns (e.g. attention: the target column reads from the source). */
export interface LayoutEdge {
  source: number;
  target: number;
  /** Strength (> 0); lines are drawn darker and thicker in proportion to weight / max weight. */
  weight: number;
}

/** Oblique projection of 3-D positions onto the page: X = x + a z, Y = y + b z (Y drawn downwards). */
export interface ObliqueProjection {
  a: number;
  b: number;
}

/** Depth scale of the cabinet projection (z drawn at half scale): the default k of {@link obliqueProjection}. */
export const CABINET_DEPTH_SCALE = 0.5;

/** cos 45 = sin 45: the z axis recedes at 45 degrees. */
const DIAGONAL = Math.SQRT1_2;

/**
 * The oblique projection used for 3-D positions (see the module comment).
 *
 * Layers: when `layers` (one group index per column, e.g. its area) gives at least two
 * groups and each group's z range is at most a quarter of the smallest gap between the
 * groups' mean z (they lie in separate planes), the depth scale k is raised so that the
 * bounding boxes of consecutive layers (sorted by z) are separated, along x or along y,
 * by 1.5 median nearest-neighbour spacings (so the dots do not touch). Otherwise k is
 * {@link CABINET_DEPTH_SCALE}.
 *
 * @param positions [N, 3] row-major
 * @param n number of columns N
 * @param layers optional group index per column
 */
export function obliqueProjection(positions: ArrayLike<number>, n: number, layers?: ArrayLike<number>): ObliqueProjection {
  let k = CABINET_DEPTH_SCALE;
  if (layers && layers.length === n) {
    interface Layer {
      zmin: number;
      zmax: number;
      zsum: number;
      count: number;
      xmin: number;
      xmax: number;
      ymin: number;
      ymax: number;
    }
    const byId = new Map<number, Layer>();
    for (let i = 0; i < n; i++) {
      const id = layers[i];
      if (!Number.isFinite(id)) continue;
      const [x, y, z] = [positions[3 * i], positions[3 * i + 1], positions[3 * i + 2]];
      const l = byId.get(id) ?? { zmin: z, zmax: z, zsum: 0, count: 0, xmin: x, xmax: x, ymin: y, ymax: y };
      l.zmin = Math.min(l.zmin, z);
      l.zmax = Math.max(l.zmax, z);
      l.xmin = Math.min(l.xmin, x);
      l.xmax = Math.max(l.xmax, x);
      l.ymin = Math.min(l.ymin, y);
      l.ymax = Math.max(l.ymax, y);
      l.zsum += z;
      l.count++;
      byId.set(id, l);
    }
    const sorted = [...byId.values()].map((l) => ({ ...l, z: l.zsum / l.count })).sort((p, q) => p.z - q.z);
    if (sorted.length >= 2) {
      let minGap = Infinity;
      let maxSpread = 0;
      for (let g = 0; g < sorted.length; g++) {
        maxSpread = Math.max(maxSpread, sorted[g].zmax - sorted[g].zmin);
        if (g > 0) minGap = Math.min(minGap, sorted[g].z - sorted[g - 1].z);
      }
      if (minGap > 0 && Number.isFinite(minGap) && maxSpread <= minGap / 4) {
        const xs = new Float64Array(n);
        const ys = new Float64Array(n);
        for (let i = 0; i < n; i++) [xs[i], ys[i]] = [positions[3 * i], positions[3 * i + 1]];
        const margin = 1.5 * medianNearest(xs, ys);
        for (let g = 1; g < sorted.length; g++) {
          const lo = sorted[g - 1];
          const hi = sorted[g];
          // The upper layer moves right by s and up by s (s = k cos45 dz): separated once
          // it clears the lower one along x or along y.
          const s = Math.min(lo.xmax - hi.xmin, hi.ymax - lo.ymin) + margin;
          k = Math.max(k, s / (DIAGONAL * (hi.z - lo.z)));
        }
      }
    }
  }
  return { a: k * DIAGONAL, b: -k * DIAGONAL };
}

/** Page coordinates of the columns (x right, y down, in position units). */
export interface ProjectedColumns {
  x: Float64Array;
  y: Float64Array;
  /** Drawing order: far columns (larger z) first, so near ones are drawn over them. */
  order: Int32Array;
  /** The projection used (3-D only). */
  projection: ObliqueProjection | null;
}

/**
 * Project positions [N, positionDim] onto the page (see the module comment).
 *
 * @throws RangeError on a positionDim outside 1..3 or a length other than N * positionDim.
 */
export function projectColumns(
  positions: ArrayLike<number>,
  positionDim: number,
  n: number,
  projection?: ObliqueProjection,
  layers?: ArrayLike<number>,
): ProjectedColumns {
  if (!Number.isInteger(positionDim) || positionDim < 1 || positionDim > 3) throw new RangeError(`columnLayout: positionDim must be 1, 2 or 3, got ${positionDim}`);
  if (positions.length !== n * positionDim) throw new RangeError(`columnLayout: expected ${n} x ${positionDim} = ${n * positionDim} coordinates, got ${positions.length}`);
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  if (positionDim < 3) {
    for (let i = 0; i < n; i++) [x[i], y[i]] = [positions[positionDim * i], positionDim > 1 ? positions[positionDim * i + 1] : 0];
    return { x, y, order, projection: null };
  }
  const p = projection ?? obliqueProjection(positions, n, layers);
  for (let i = 0; i < n; i++) {
    const z = positions[3 * i + 2];
    x[i] = positions[3 * i] + p.a * z;
    y[i] = positions[3 * i + 1] + p.b * z;
  }
  order.sort((i, j) => positions[3 * j + 2] - positions[3 * i + 2] || i - j);
  return { x, y, order, projection: p };
}

/** Options of {@link columnLayout}. */
export interface ColumnLayoutOptions {
  title: string;
  /** Column positions [N, positionDim], row-major. */
  positions: ArrayLike<number>;
  /** Coordinates per column: 1, 2 or 3. */
  positionDim: number;
  /** Category of each column [N]: an index into `categoryNames` (NaN or negative: missing, drawn grey). */
  categories: ArrayLike<number>;
  /** Names of the categories, for the legend (colours from the categorical palette by index). */
  categoryNames: readonly string[];
  /** Heading of the legend (e.g. "area"). */
  legendLabel?: string;
  /** Connections drawn as lines under the dots. */
  edges?: readonly LayoutEdge[];
  /** Draw an arrowhead at each edge's target (default false). */
  arrows?: boolean;
  /** 3-D only: the projection (default {@link obliqueProjection} of the positions and `layers`). */
  projection?: ObliqueProjection;
  /** 3-D only: group index per column (e.g. area) used to detect layers for the default projection. */
  layers?: ArrayLike<number>;
  /** Extra note under the plot (e.g. "learned positions"). */
  note?: string;
  /** Largest side of the plot area in px (default 440). */
  size?: number;
}

/** Description of the projection, written under the plot. */
function projectionNote(dim: number, p: ObliqueProjection | null): string {
  if (dim === 1) return "1-D positions along x";
  if (!p) return "";
  const sign = p.b <= 0 ? "-" : "+";
  return `oblique projection (x + ${p.a.toFixed(2)} z, y ${sign} ${Math.abs(p.b).toFixed(2)} z): larger z up and right`;
}

/**
 * Draw every column as a dot at its position, coloured by category, with a category legend,
 * a scale bar (position units; x and y only for 3-D) and optional edges under the dots
 * (opacity and width grow with weight; drawn weakest first).
 *
 * @throws RangeError on mismatched lengths, a positionDim outside 1..3 or an edge endpoint out of range.
 */
export function columnLayout(o: ColumnLayoutOptions): string {
  const n = o.categories.length;
  const proj = projectColumns(o.positions, o.positionDim, n, o.projection, o.layers);
  const edges = o.edges ?? [];
  for (const e of edges) {
    for (const c of [e.source, e.target]) {
      if (!Number.isInteger(c) || c < 0 || c >= n) throw new RangeError(`columnLayout: edge endpoint ${c} is not a column in [0, ${n})`);
    }
  }
  const size = o.size ?? 440;
  const { x, y } = proj;
  let [xmin, xmax, ymin, ymax] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(x[i]) || !Number.isFinite(y[i])) continue;
    [xmin, xmax, ymin, ymax] = [Math.min(xmin, x[i]), Math.max(xmax, x[i]), Math.min(ymin, y[i]), Math.max(ymax, y[i])];
  }
  if (!(xmin <= xmax)) [xmin, xmax, ymin, ymax] = [-1, 1, -1, 1];
  const span = Math.max(xmax - xmin, ymax - ymin) || 1;
  const dot = Math.max(span / 400, Math.min(span / 8, 0.4 * medianNearest(x, y)));
  const pad = 1.6 * dot;
  const unitsW = xmax - xmin + 2 * pad;
  const unitsH = ymax - ymin + 2 * pad;
  const unit = Math.min(size / unitsW, size / unitsH);
  const pw = unitsW * unit;
  const ph = unitsH * unit;
  const r = Math.min(12, Math.max(1.5, dot * unit));

  const x0 = 16;
  const y0 = o.title ? 42 : 14;
  const sx = (v: number): number => x0 + (v - xmin + pad) * unit;
  const sy = (v: number): number => y0 + (v - ymin + pad) * unit;
  const note = [projectionNote(o.positionDim, proj.projection), o.note ?? ""].filter((s) => s !== "").join("; ");
  const legendLabel = o.legendLabel ?? "";
  const lw = categoryLegendWidth(o.categoryNames, legendLabel);
  const legendH = (legendLabel ? 18 : 0) + o.categoryNames.length * 16;
  const belowH = 22 + (note ? 16 : 0);
  const width = Math.max(x0 + pw + 24 + lw + 12, o.title ? textWidth(o.title, 15) + 32 : 0, x0 + textWidth(note, 10) + 16);
  const height = y0 + Math.max(ph + belowH, legendH) + 10;

  const parts: string[] = [svgOpen(width, height)];
  if (o.title) parts.push(svgText(width / 2, 26, o.title, { size: 15, weight: "bold", anchor: "middle" }));
  parts.push(`<rect x="${fmt(x0)}" y="${fmt(y0)}" width="${fmt(pw)}" height="${fmt(ph)}" fill="#fbfbfb" stroke="#bbbbbb" stroke-width="0.8"/>`);

  // Edges, weakest first so that the strongest are on top.
  let wmax = 0;
  for (const e of edges) if (Number.isFinite(e.weight)) wmax = Math.max(wmax, Math.abs(e.weight));
  const byWeight = [...edges].sort((p, q) => (Number.isFinite(p.weight) ? Math.abs(p.weight) : 0) - (Number.isFinite(q.weight) ? Math.abs(q.weight) : 0));
  const lines: string[] = [];
  const heads: string[] = [];
  for (const e of byWeight) {
    const t = wmax > 0 && Number.isFinite(e.weight) ? Math.min(1, Math.abs(e.weight) / wmax) : 0;
    const [ax, ay, bx, by] = [sx(x[e.source]), sy(y[e.source]), sx(x[e.target]), sy(y[e.target])];
    const len = Math.hypot(bx - ax, by - ay);
    const opacity = fmt(0.15 + 0.7 * t);
    const sw = 0.4 + 2 * t;
    let [ex, ey] = [bx, by];
    if (o.arrows && len > r + 2) {
      // Stop at the target dot's rim, with a filled triangle whose tip touches it.
      const [ux, uy] = [(bx - ax) / len, (by - ay) / len];
      const head = Math.min(len / 2, 4 + 2 * sw);
      const tipX = bx - ux * (r + 0.5);
      const tipY = by - uy * (r + 0.5);
      [ex, ey] = [tipX - ux * head * 0.8, tipY - uy * head * 0.8];
      const [bx0, by0] = [tipX - ux * head, tipY - uy * head];
      const half = head * 0.45;
      heads.push(
        `<polygon points="${fmt(tipX)},${fmt(tipY)} ${fmt(bx0 - uy * half)},${fmt(by0 + ux * half)} ${fmt(bx0 + uy * half)},${fmt(by0 - ux * half)}" fill="#333333" fill-opacity="${opacity}"/>`,
      );
    }
    lines.push(
      `<line class="edge" x1="${fmt(ax)}" y1="${fmt(ay)}" x2="${fmt(ex)}" y2="${fmt(ey)}" stroke="#333333" stroke-opacity="${opacity}" stroke-width="${fmt(sw)}" stroke-linecap="round"/>`,
    );
  }
  if (lines.length) parts.push(`<g>${lines.join("")}${heads.join("")}</g>`);

  const dots: string[] = [];
  for (const i of proj.order) {
    const c = o.categories[i];
    const color = Number.isFinite(c) && c >= 0 ? categorical(Math.round(c)) : MISSING_COLOR;
    dots.push(`<circle data-col="${i}" cx="${fmt(sx(x[i]))}" cy="${fmt(sy(y[i]))}" r="${fmt(r)}" fill="${rgbHex(color)}"/>`);
  }
  parts.push(`<g stroke="#ffffff" stroke-width="${n > 300 ? 0.3 : 0.6}">${dots.join("")}</g>`);

  // Scale bar: about a fifth of the drawn width, in position units.
  const barUnits = niceStep(0, xmax - xmin || span, 5);
  const barY = y0 + ph + 12;
  parts.push(`<path d="M${fmt(x0)} ${fmt(barY - 3)}V${fmt(barY + 3)}M${fmt(x0)} ${fmt(barY)}H${fmt(x0 + barUnits * unit)}M${fmt(x0 + barUnits * unit)} ${fmt(barY - 3)}V${fmt(barY + 3)}" stroke="#444444" stroke-width="1" fill="none"/>`);
  parts.push(svgText(x0 + barUnits * unit + 6, barY, formatTick(barUnits), { size: 10, dy: 0.35, fill: "#444444" }));
  if (note) parts.push(svgText(x0, barY + 18, note, { size: 10, fill: "#666666" }));
  parts.push(categoryLegendSvg({ x: x0 + pw + 24, y: y0, categories: o.categoryNames, label: legendLabel || undefined }));
  parts.push("</svg>");
  return parts.join("");
}
