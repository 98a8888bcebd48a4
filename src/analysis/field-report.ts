/** Figures and summary rows of the field metrics (field.ts) for the analysis report. */
import { lineChart } from "../viz/charts.ts";
import { type SheetLayout, sheetMap, sheetMaps } from "../viz/sheet-maps.ts";
import type { AreaField, FieldResult } from "./field.ts";
import { unitGrid, unitMap } from "./population.ts";
import type { TdannSmoothness } from "./smoothness.ts";

/** A figure: name, caption, SVG. */
export interface FieldFigure {
  name: string;
  caption: string;
  svg: string;
}

/** One grid panel of `rows` x `cols` cells. */
function gridLayout(rows: number, cols: number): SheetLayout {
  return { numColumns: rows * cols, panels: [{ kind: "grid", title: "", start: 0, rows, cols }], note: "" };
}

const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? "n/a" : v.toFixed(digits));

/** Bin centres of a smoothness curve's edges. */
const centres = (s: TdannSmoothness) => s.edges.slice(0, -1).map((v, i) => (v + s.edges[i + 1]) / 2);

function curveSeries(name: string, s: TdannSmoothness | undefined | null) {
  if (!s) return [];
  const x = centres(s);
  return [{ name, x, y: s.curve }, ...(s.shuffled ? [{ name: `${name}, shuffled`, x, y: s.shuffled.curve }] : [])];
}

/** Nearest orientation of the set (degrees) as a category index, for a categorical map. */
function orientationBins(values: readonly number[], orientations: readonly number[]): Float64Array {
  return Float64Array.from(values, (v) => {
    if (!Number.isFinite(v)) return NaN;
    let best = 0;
    for (let k = 1; k < orientations.length; k++) {
      const d = (a: number) => Math.min(Math.abs(v - a) % 180, 180 - (Math.abs(v - a) % 180));
      if (d(orientations[k]) < d(orientations[best])) best = k;
    }
    return best;
  });
}

/** Figures of one area (grid areas get maps; every area gets its smoothness curves). */
function areaFigures(a: AreaField, classNames: readonly string[], orientations: readonly number[] | null): FieldFigure[] {
  const figs: FieldFigure[] = [];
  const sel = a.columns_level.selectivity;
  const ori = a.columns_level.orientation;
  const usel = a.unit_level?.selectivity;
  const uori = a.unit_level?.orientation;
  const series = [...curveSeries("preferred class, columns", sel?.smoothness_preferred), ...curveSeries("preferred class, units", usel?.smoothness_preferred)];
  if (series.length) {
    figs.push({
      name: `tdann-smoothness-class-${a.name}`,
      caption: `${a.name}: fraction of unit pairs preferring different classes vs cortical distance (TDANN). Smoothness: columns ${fmt(sel?.smoothness_preferred.smoothness)} (shuffled ${fmt(sel?.smoothness_preferred.shuffled?.smoothness)}), units ${fmt(usel?.smoothness_preferred.smoothness)} (shuffled ${fmt(usel?.smoothness_preferred.shuffled?.smoothness)}).`,
      svg: lineChart({ title: `Preferred-class difference vs distance (${a.name})`, xLabel: "cortical distance (columns)", yLabel: "P(different preferred class)", series }),
    });
  }
  const oseries = [...curveSeries("orientation, columns", ori?.smoothness), ...curveSeries("orientation, units", uori?.smoothness)];
  if (oseries.length) {
    figs.push({
      name: `tdann-smoothness-orientation-${a.name}`,
      caption: `${a.name}: mean |difference of preferred orientation| vs cortical distance (TDANN). Smoothness: columns ${fmt(ori?.smoothness.smoothness)} (shuffled ${fmt(ori?.smoothness.shuffled?.smoothness)}), units ${fmt(uori?.smoothness.smoothness)} (shuffled ${fmt(uori?.smoothness.shuffled?.smoothness)}).`,
      svg: lineChart({ title: `Orientation difference vs distance (${a.name})`, xLabel: "cortical distance (columns)", yLabel: "mean |d orientation| (deg)", series: oseries }),
    });
  }
  if (!a.grid) return figs;
  const [rows, cols] = a.grid;
  const layout = gridLayout(rows, cols);
  figs.push({
    name: `energy-${a.name}`,
    caption: `${a.name}: energy (mean |activation|) of every column; area mean ${fmt(a.energy.mean, 4)}.`,
    svg: sheetMap({ title: `Energy (${a.name})`, values: a.energy.per_column, layout, colormap: "viridis", colorbarLabel: "mean |a|" }),
  });
  if (sel?.smoothed_t) {
    figs.push({
      name: `welch-t-${a.name}`,
      caption: `${a.name}: Welch t of each class vs the rest, Gaussian-smoothed; patches (t > threshold, 4-connected, size limits) per class: ${sel.patches.map((p, c) => `${classNames[c] ?? c} ${p.count}`).join(", ")}. Moran's I of max t (queen, row-standardised) ${fmt(sel.morans_i_max_t.I)} (p ${fmt(sel.morans_i_max_t.p)}).`,
      svg: sheetMaps({ title: `Selectivity t-maps (${a.name})`, maps: sel.smoothed_t.map((v, c) => ({ title: classNames[c] ?? String(c), values: v })), layout, colormap: "diverging", colorbarLabel: "Welch t" }),
    });
  }
  const fine = a.unit_level ? gridLayout(a.unit_level.fine_grid[0], a.unit_level.fine_grid[1]) : null;
  // unit order (column-major over features) -> fine-grid cells
  const toFine = (values: ArrayLike<number>): Float64Array => unitMap(unitGrid(rows, cols, values.length / (rows * cols)), values);
  if (usel && fine) {
    figs.push({
      name: `unit-preferred-class-${a.name}`,
      caption: `${a.name}: preferred class (largest Welch t) of every unit, each column's ${a.unit_level!.sub_grid.join(" x ")} sub-grid of features drawn inside its cell.`,
      svg: sheetMap({ title: `Unit preferred class (${a.name})`, values: toFine(usel.preferred.map((v) => (v < 0 ? NaN : v))), layout: fine, colormap: "categorical", colorbarLabel: "class", categories: classNames }),
    });
  }
  if (ori && orientations) {
    const names = orientations.map((t) => `${t} deg`);
    figs.push({
      name: `orientation-map-${a.name}`,
      caption: `${a.name}: preferred orientation of every column (vector sum); mean OSI ${fmt(ori.mean_osi)}; pinwheels ${ori.pinwheels ? ori.pinwheels.count : "n/a"}.`,
      svg: sheetMap({ title: `Orientation preference (${a.name})`, values: orientationBins(ori.preferred, orientations), layout, colormap: "categorical", colorbarLabel: "orientation", categories: names }),
    });
    if (uori && fine) {
      figs.push({
        name: `unit-orientation-map-${a.name}`,
        caption: `${a.name}: preferred orientation of every unit (features as sub-grids); mean OSI ${fmt(uori.mean_osi)}; pinwheels ${uori.pinwheels?.count ?? "n/a"} (density ${fmt(uori.pinwheels?.density, 4)} per unit cell).`,
        svg: sheetMap({ title: `Unit orientation preference (${a.name})`, values: toFine(orientationBins(uori.preferred, orientations)), layout: fine, colormap: "categorical", colorbarLabel: "orientation", categories: names }),
      });
    }
  }
  return figs;
}

/** Every field figure. */
export function fieldFigures(field: FieldResult, classNames: readonly string[], orientations: readonly number[] | null): FieldFigure[] {
  return field.areas.flatMap((a) => areaFigures(a, classNames, orientations));
}

/** Summary rows for report.html. */
export function fieldRows(field: FieldResult, classNames: readonly string[]): [string, string][] {
  const rows: [string, string][] = [[`effective dimensionality (${field.effective_dimensionality.area}, ${field.effective_dimensionality.units} units)`, fmt(field.effective_dimensionality.value, 2)]];
  for (const a of field.areas) {
    const s = a.columns_level.selectivity;
    if (s) {
      rows.push([`${a.name}: TDANN smoothness of preferred class (shuffled)`, `${fmt(s.smoothness_preferred.smoothness)} (${fmt(s.smoothness_preferred.shuffled?.smoothness)})`]);
      rows.push([`${a.name}: Moran's I of max t, queen (p)`, `${fmt(s.morans_i_max_t.I)} (${fmt(s.morans_i_max_t.p)})`]);
    }
    const o = a.columns_level.orientation;
    if (o) rows.push([`${a.name}: orientation smoothness (shuffled), mean OSI, pinwheels`, `${fmt(o.smoothness.smoothness)} (${fmt(o.smoothness.shuffled?.smoothness)}), ${fmt(o.mean_osi)}, ${o.pinwheels?.count ?? "n/a"}`]);
    rows.push([`${a.name}: energy`, fmt(a.energy.mean, 4)]);
  }
  if (field.localiser) {
    const l = field.localiser;
    l.areas.forEach((name, i) => {
      rows.push([
        `localiser ${name}: selective columns (t > ${l.threshold}) / patches`,
        l.column_fraction[i].map((f, c) => `${classNames[c] ?? c} ${(100 * f).toFixed(0)}%/${l.patches[i][c]}`).join(", "),
      ]);
    });
  }
  return rows;
}
