/**
 * Where each column is drawn in the viewer: every area gets its own panel, side by side
 * (stacked areas next to each other rather than on top), and inside a panel the columns sit
 * at their grid cell (grid, torus, stacked areas), their learned or custom positions (x, y),
 * or a sphere's equal-area projection (longitude, sin latitude). Pure data in and out.
 */
import type { Geometry } from "../../geometry/index.ts";

/** A drawing of the sheet in abstract units (the page scales it to its canvas). */
export interface SheetDrawing {
  /** Centre of column i: x[i], y[i] (y downwards). */
  x: Float64Array;
  y: Float64Array;
  /** Half the side of a column's square (or the radius of its dot). */
  radius: number;
  /** Whether columns are drawn as grid cells (squares) rather than dots. */
  cells: boolean;
  width: number;
  height: number;
  /** One box per area: where its panel is and its name. */
  panels: { name: string; x: number; y: number; width: number; height: number }[];
}

const PANEL = 10;
const GAP = 1.5;

/** 2-D coordinates of the columns [start, end) of one area, before scaling. */
function areaCoordinates(geometry: Geometry, start: number, end: number, grid: [number, number] | undefined, learned: Float32Array | null): { u: number[]; v: number[]; cells: boolean } {
  const u: number[] = [];
  const v: number[] = [];
  const dim = geometry.positionDim;
  const pos = learned ?? geometry.positions;
  if (!learned && grid && grid[0] * grid[1] === end - start) {
    for (let i = 0; i < end - start; i++) {
      u.push(i % grid[1]);
      v.push(Math.floor(i / grid[1]));
    }
    return { u, v, cells: true };
  }
  if (geometry.spec.kind === "sphere" && dim === 3) {
    for (let i = start; i < end; i++) {
      const [a, b, c] = [pos[i * 3], pos[i * 3 + 1], pos[i * 3 + 2]];
      const r = Math.hypot(a, b, c) || 1;
      u.push(Math.atan2(b, a));
      v.push(-c / r); // sin(latitude), north up
    }
    return { u, v, cells: false };
  }
  for (let i = start; i < end; i++) {
    u.push(pos[i * dim]);
    v.push(dim > 1 ? pos[i * dim + 1] : 0);
  }
  return { u, v, cells: false };
}

/** Lay out every column of `geometry` (with learned positions [N, positionDim] when given). */
export function sheetDrawing(geometry: Geometry, learned: Float32Array | null = null): SheetDrawing {
  const n = geometry.numColumns;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const panels: SheetDrawing["panels"] = [];
  let offset = 0;
  let cells = true;
  let radius = Infinity;
  let height = 0;
  for (const area of geometry.areas) {
    const c = areaCoordinates(geometry, area.start, area.end, area.grid, learned);
    cells &&= c.cells;
    const minU = Math.min(...c.u);
    const maxU = Math.max(...c.u);
    const minV = Math.min(...c.v);
    const maxV = Math.max(...c.v);
    const span = Math.max(maxU - minU, maxV - minV, 1e-9);
    const count = area.end - area.start;
    const side = c.cells ? Math.max(maxU - minU, maxV - minV) + 1 : Math.sqrt(count);
    // grid cells: one unit per cell; dots: the panel of a sqrt(count) grid, positions scaled into it
    const scale = c.cells ? PANEL / side : (PANEL * (1 - 1 / Math.max(side, 1))) / span;
    const pad = c.cells ? PANEL / side / 2 : PANEL / Math.max(side, 1) / 2;
    const w = c.cells ? (maxU - minU + 1) * scale : (maxU - minU) * scale + 2 * pad;
    const h = c.cells ? (maxV - minV + 1) * scale : (maxV - minV) * scale + 2 * pad;
    for (let k = 0; k < count; k++) {
      x[area.start + k] = offset + (c.u[k] - minU) * scale + (c.cells ? scale / 2 : pad);
      y[area.start + k] = (c.v[k] - minV) * scale + (c.cells ? scale / 2 : pad);
    }
    radius = Math.min(radius, c.cells ? scale / 2 : pad * 0.8);
    panels.push({ name: area.name, x: offset, y: 0, width: w, height: h });
    offset += w + GAP;
    height = Math.max(height, h);
  }
  return { x, y, radius: Number.isFinite(radius) ? radius : 0.5, cells, width: offset - GAP, height, panels };
}

/** The column drawn at (px, py) in drawing units, or -1 (nearest centre within 1.2 radii). */
export function columnAt(d: SheetDrawing, px: number, py: number): number {
  let best = -1;
  let bestD = (d.radius * 1.2) ** 2;
  for (let i = 0; i < d.x.length; i++) {
    const dd = (d.x[i] - px) ** 2 + (d.y[i] - py) ** 2;
    if (dd <= bestD) {
      bestD = dd;
      best = i;
    }
  }
  return best;
}
