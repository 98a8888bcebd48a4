/**
 * Topography across the runs of a sweep: the field metrics that `columnformer analyze RUN` wrote
 * to `<run>/analysis/analysis.json`, summarised per configuration (seeds pooled) and per area,
 * for `columnformer compare`.
 *
 * Per run and area it reads: the TDANN smoothness of the preferred-class map and of the
 * preferred-orientation map (gratings), each with its shuffled-position null; Moran's I of the
 * max-t map and its z against the permutation null; the number of category patches (summed over
 * classes); the mean fraction of selective columns; and the output area's effective
 * dimensionality. Definitions: analysis.json's `field.references` (src/analysis/field.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { runDirPaths } from "../../train/run-dir.ts";
import { z } from "zod";
import type { FigureSpec } from "./compare.ts";
import { formatValue, shortKeys, varyingKeys } from "./overrides.ts";
import { type Replicates, replicates } from "./stats.ts";
import { lineChart, type LineSeries } from "../../viz/charts.ts";

/** Where `columnformer analyze RUN` writes by default. */
export const RUN_ANALYSIS_FILE = path.join("analysis", "analysis.json");

/** One area's topography numbers in one run (null = not measured, e.g. no gratings). */
export interface AreaTopography {
  smoothness_class: number | null;
  smoothness_class_shuffled: number | null;
  smoothness_orientation: number | null;
  smoothness_orientation_shuffled: number | null;
  morans_i: number | null;
  morans_z: number | null;
  patches: number | null;
  selective_fraction: number | null;
}

/** One run's topography: per area, and the effective dimensionality of the area it was measured in. */
export interface RunTopography {
  areas: Map<string, AreaTopography>;
  effective_dimensionality: { area: string; value: number } | null;
}

const num = z.number().nullable().optional();
const smoothness = z.looseObject({ smoothness: num, shuffled: z.looseObject({ smoothness: num }).nullable().optional() });
const analysisSchema = z.looseObject({
  field: z.looseObject({
    areas: z.array(
      z.looseObject({
        name: z.string(),
        columns_level: z.looseObject({
          selectivity: z
            .looseObject({
              smoothness_preferred: smoothness,
              selective_fraction: z.array(z.number()),
              patches: z.array(z.looseObject({ count: z.number() })),
              morans_i_max_t: z.looseObject({ I: num, z: num }),
            })
            .nullable(),
          orientation: z.looseObject({ smoothness }).nullable(),
        }),
      }),
    ),
    effective_dimensionality: z.looseObject({ area: z.string(), value: num }).nullable().optional(),
  }),
});

const fin = (v: number | null | undefined): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/**
 * Read a run's `analysis/analysis.json`; null when the run has not been analysed.
 *
 * @throws One line naming the file when it exists but holds no field metrics.
 */
export function readRunTopography(runDir: string): RunTopography | null {
  const file = path.join(runDirPaths(runDir).analysisDir, "analysis.json");
  if (!existsSync(file)) return null;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message.split("\n")[0]}`);
  }
  const parsed = analysisSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`${file} has no field metrics (${parsed.error.issues[0].path.join(".")}: ${parsed.error.issues[0].message}); re-run columnformer analyze ${runDir}`);
  }
  const areas = new Map<string, AreaTopography>();
  for (const a of parsed.data.field.areas) {
    const sel = a.columns_level.selectivity;
    const ori = a.columns_level.orientation;
    areas.set(a.name, {
      smoothness_class: fin(sel?.smoothness_preferred.smoothness),
      smoothness_class_shuffled: fin(sel?.smoothness_preferred.shuffled?.smoothness),
      smoothness_orientation: fin(ori?.smoothness.smoothness),
      smoothness_orientation_shuffled: fin(ori?.smoothness.shuffled?.smoothness),
      morans_i: fin(sel?.morans_i_max_t.I),
      morans_z: fin(sel?.morans_i_max_t.z),
      patches: sel ? sel.patches.reduce((n, p) => n + p.count, 0) : null,
      selective_fraction: sel?.selective_fraction.length ? replicates(sel.selective_fraction).mean : null,
    });
  }
  const ed = parsed.data.field.effective_dimensionality;
  const edValue = fin(ed?.value);
  return { areas, effective_dimensionality: ed && edValue !== null ? { area: ed.area, value: edValue } : null };
}

/** A configuration: runs that differ only in `seed` (or one run). */
export interface Configuration {
  name: string;
  overrides: Record<string, unknown>;
  runs: string[];
}

/** One configuration's numbers in one area, pooled over its analysed runs. */
export type AreaSummary = { [K in keyof AreaTopography]: Replicates };

/** A configuration's topography: per area, over the seeds that were analysed. */
export interface TopographyGroup {
  name: string;
  overrides: Record<string, unknown>;
  /** Runs with an analysis.json. */
  analysed: string[];
  areas: Record<string, AreaSummary>;
  effective_dimensionality: Replicates & { area: string | null };
}

const KEYS: (keyof AreaTopography)[] = [
  "smoothness_class",
  "smoothness_class_shuffled",
  "smoothness_orientation",
  "smoothness_orientation_shuffled",
  "morans_i",
  "morans_z",
  "patches",
  "selective_fraction",
];

/** Pool each configuration's analysed runs (mean, SD, 95 % CI per area and metric); configurations with none are left out. */
export function topographyGroups(configurations: readonly Configuration[], byRun: ReadonlyMap<string, RunTopography>): TopographyGroup[] {
  const groups: TopographyGroup[] = [];
  for (const c of configurations) {
    const runs = c.runs.filter((r) => byRun.has(r));
    if (runs.length === 0) continue;
    const tops = runs.map((r) => byRun.get(r)!);
    const areaNames = [...new Set(tops.flatMap((t) => [...t.areas.keys()]))];
    const areas: Record<string, AreaSummary> = {};
    for (const area of areaNames) {
      const pooled = {} as AreaSummary;
      for (const key of KEYS) pooled[key] = replicates(tops.map((t) => t.areas.get(area)?.[key] ?? null).filter((v): v is number => v !== null));
      areas[area] = pooled;
    }
    const eds = tops.map((t) => t.effective_dimensionality).filter((e) => e !== null);
    groups.push({ name: c.name, overrides: c.overrides, analysed: runs, areas, effective_dimensionality: { ...replicates(eds.map((e) => e.value)), area: eds[0]?.area ?? null } });
  }
  return groups;
}

const DASH = "-";
const meanSd = (r: Replicates, digits: number): string => (r.n === 0 ? DASH : `${r.mean.toFixed(digits)}${Number.isFinite(r.std) ? ` ± ${r.std.toFixed(digits)}` : ""}`);
const ci = (r: Replicates, digits: number): string => (Number.isFinite(r.ci95[0]) ? `[${r.ci95[0].toFixed(digits)}, ${r.ci95[1].toFixed(digits)}]` : DASH);

/** The Markdown table: one row per configuration and area, mean ± SD over the analysed seeds (95 % CI for the class-map smoothness). */
export function topographyTable(groups: readonly TopographyGroup[]): string {
  const lines = [
    "| configuration | area | seeds | smoothness, class map | 95 % CI | shuffled | smoothness, orientation map | shuffled | Moran's I (max t) | Moran z | patches | selective fraction | eff. dim. |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const g of groups) {
    for (const [area, s] of Object.entries(g.areas)) {
      const ed = g.effective_dimensionality.area === area ? meanSd(g.effective_dimensionality, 2) : "";
      lines.push(
        `| ${g.name} | ${area} | ${s.smoothness_class.n} | ${meanSd(s.smoothness_class, 3)} | ${ci(s.smoothness_class, 3)} | ${meanSd(s.smoothness_class_shuffled, 3)} | ` +
          `${meanSd(s.smoothness_orientation, 3)} | ${meanSd(s.smoothness_orientation_shuffled, 3)} | ${meanSd(s.morans_i, 3)} | ${meanSd(s.morans_z, 2)} | ` +
          `${meanSd(s.patches, 1)} | ${meanSd(s.selective_fraction, 3)} | ${ed} |`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

/**
 * The x axis of the figures: with exactly one override varying between configurations and all
 * its values numbers, the configurations in order of that value (named ticks, evenly spaced, so
 * 0, 0.01 and 1 are all readable); otherwise one tick per configuration, by name.
 */
export function topographyAxis(groups: readonly TopographyGroup[]): { label: string; x: number[]; ticks: { value: number; label: string }[] } {
  const keys = varyingKeys(groups);
  const values = keys.length === 1 ? groups.map((g) => g.overrides[keys[0]]) : [];
  if (keys.length === 1 && values.every((v) => typeof v === "number")) {
    const sorted = [...new Set(values as number[])].sort((a, b) => a - b);
    return {
      label: shortKeys(keys).get(keys[0]) ?? keys[0],
      x: (values as number[]).map((v) => sorted.indexOf(v)),
      ticks: sorted.map((v, i) => ({ value: i, label: formatValue(v) })),
    };
  }
  return { label: "configuration", x: groups.map((_, i) => i), ticks: groups.map((g, i) => ({ value: i, label: g.name })) };
}

/** Three figures: the class-map and orientation-map smoothness (with their shuffled nulls) and Moran's I, one line per area, ± 1 SD bars over seeds. */
export function topographyFigures(groups: readonly TopographyGroup[], sweepName: string): FigureSpec[] {
  const axis = topographyAxis(groups);
  const order = axis.x.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
  const areaNames = [...new Set(groups.flatMap((g) => Object.keys(g.areas)))];
  const series = (key: keyof AreaTopography, name: (area: string) => string, areas: readonly string[]): LineSeries[] =>
    areas.map((area, k) => {
      const rs = order.map((i) => groups[i].areas[area]?.[key] ?? replicates([]));
      // each area a little apart in x, so the seed-spread bars of one configuration do not overlap
      const dodge = (k - (areas.length - 1) / 2) * 0.06;
      return { name: name(area), x: order.map((i) => axis.x[i] + dodge), y: rs.map((r) => r.mean), yRange: rs.map((r): [number, number] => [r.mean - r.std, r.mean + r.std]) };
    });
  const nullOf = (key: keyof AreaTopography): LineSeries => {
    const means = order.map((i) => replicates(Object.values(groups[i].areas).map((s) => s[key].mean).filter(Number.isFinite)).mean);
    return { name: "shuffled positions (mean of areas)", x: order.map((i) => axis.x[i]), y: means };
  };
  const n = Math.max(...groups.map((g) => g.analysed.length));
  const caption = (what: string) => `${what} per area vs ${axis.label}: mean over the analysed seeds (up to ${n}), bars ± 1 SD across seeds (the 95 % CI is in the table)`;
  const figure = (slug: string, what: string, yLabel: string, lines: LineSeries[]): FigureSpec => ({
    file: `compare-topography-${slug}`,
    caption: caption(what),
    svg: lineChart({ title: `${sweepName}: ${what}`, xLabel: axis.label, yLabel, series: lines, xTicks: axis.ticks, width: 720 }),
  });
  return [
    figure("class-smoothness", "TDANN smoothness of the preferred-class map", "smoothness (max - near) / max", [...series("smoothness_class", (a) => a, areaNames), nullOf("smoothness_class_shuffled")]),
    figure("orientation-smoothness", "TDANN smoothness of the preferred-orientation map", "smoothness (max - near) / max", [...series("smoothness_orientation", (a) => a, areaNames), nullOf("smoothness_orientation_shuffled")]),
    figure("morans-i", "Moran's I of the max-t selectivity map", "Moran's I (queen, row-standardised)", series("morans_i", (a) => a, areaNames)),
  ];
}
