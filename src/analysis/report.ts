/**
 * Figures and the self-contained HTML report of an analysis. Every figure is
 * written as SVG and PNG; report.html embeds the SVGs inline (and the MIM
 * reconstructions as a data URI), so it opens from disk with no server.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Geometry } from "../geometry/index.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { histogram, lineChart, matrixHeatmap } from "../viz/charts.ts";
import { columnLayout, type LayoutEdge } from "../viz/column-layout.ts";
import { writeFigure } from "../viz/render.ts";
import { attentionOnSheet, sheetLayout, sheetMap, sheetMaps } from "../viz/sheet-maps.ts";
import type { AnalysisResult } from "./analyze.ts";
import type { SheetActivity } from "./collect.ts";
import { fieldFigures, fieldRows } from "./field-report.ts";
import { thresholdTopFraction } from "./graph.ts";

/** A figure in the report. */
export interface Figure {
  name: string;
  caption: string;
  svg: string;
}

/** Inputs of the report besides the metrics. */
export interface ReportInputs {
  title: string;
  geometry: Geometry;
  activity: SheetActivity;
  /** Training log records (log.jsonl), when analysing a run directory. */
  log?: Record<string, unknown>[];
  /** PNG of MIM reconstructions, when there is one. */
  reconstructionsPng?: string;
  classNames?: string[] | null;
  /** Columns whose attention is painted (default: centres of the first and last areas). */
  columns?: number[];
  /** The geometry's positions were learned (the checkpoint has a `positions` tensor). */
  learnedPositions?: boolean;
  /** Orientations (degrees) of the grating set, when orientation maps were measured. */
  orientations?: number[];
}

/**
 * The `count` strongest off-diagonal entries of an attention map [N, N] (row = target column
 * i, column = source column j) as edges j -> i (ties: lower row-major index first).
 */
export function strongestEdges(attention: ArrayLike<number>, n: number, count: number): LayoutEdge[] {
  if (n < 2 || count <= 0) return [];
  const adj = thresholdTopFraction(attention, n, Math.min(1, count / (n * (n - 1))));
  const edges: LayoutEdge[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (adj[i * n + j]) edges.push({ source: j, target: i, weight: attention[i * n + j] });
  return edges;
}

/** The centre column of an area (for its grid, the middle cell). */
function centreColumn(area: { start: number; end: number; grid?: [number, number] }): number {
  if (!area.grid) return Math.floor((area.start + area.end) / 2);
  const [rows, cols] = area.grid;
  return area.start + Math.floor(rows / 2) * cols + Math.floor(cols / 2);
}

/** Build every figure. */
export function buildFigures(result: AnalysisResult, inputs: ReportInputs): Figure[] {
  const { geometry, activity } = inputs;
  const n = geometry.numColumns;
  const layout = sheetLayout(geometry);
  const depth = activity.attention.length / (n * n);
  const meanMap = new Float32Array(n * n);
  for (let t = 0; t < depth; t++) for (let k = 0; k < n * n; k++) meanMap[k] += activity.attention[t * n * n + k] / depth;
  const figs: Figure[] = [];
  const add = (name: string, caption: string, svg: string) => figs.push({ name, caption, svg });

  const areaOf = new Float32Array(n);
  geometry.areas.forEach((a, k) => {
    areaOf.fill(k, a.start, a.end);
  });
  const edges = strongestEdges(meanMap, n, 2 * n);
  const where = inputs.learnedPositions ? "their LEARNED positions (the checkpoint's positions tensor, not the initial layout)" : "their positions in the geometry";
  const edgeText = `lines: the ${edges.length} strongest step-mean attention connections, arrow from source column to the column that reads it (darker and thicker = stronger)`;
  const layoutOf = (title: string, categories: ArrayLike<number>, names: readonly string[], legendLabel: string) =>
    columnLayout({
      title,
      positions: geometry.positions,
      positionDim: geometry.positionDim,
      categories,
      categoryNames: names,
      legendLabel,
      edges,
      arrows: true,
      layers: areaOf,
      note: inputs.learnedPositions ? "learned positions" : undefined,
    });
  add("column-layout", `Columns at ${where}, coloured by area; ${edgeText}.`, layoutOf("Column layout", areaOf, geometry.areas.map((a) => a.name), "area"));

  const columns = inputs.columns ?? [...new Set([centreColumn(geometry.areas[0]), centreColumn(geometry.areas[geometry.areas.length - 1])])];
  for (const c of columns) {
    const area = geometry.areas.find((a) => c >= a.start && c < a.end)?.name ?? "";
    add(`attention-in-${c}`, `Where column ${c} (${area}) reads from: its row of the step-mean attention.`, attentionOnSheet({ attention: meanMap, layout, column: c, direction: "incoming" }));
    add(`attention-out-${c}`, `Which columns read from column ${c} (${area}): its column of the step-mean attention.`, attentionOnSheet({ attention: meanMap, layout, column: c, direction: "outgoing" }));
  }
  for (let t = 0; t < depth; t++) {
    add(
      `attention-matrix-step${t + 1}`,
      `Attention matrix at step ${t + 1} (rows: target columns, columns: source columns), mean over ${activity.images} images.`,
      matrixHeatmap({
        title: `Attention, step ${t + 1}`,
        values: { rows: n, cols: n, data: activity.attention.subarray(t * n * n, (t + 1) * n * n) },
        colormap: "viridis",
        colorbarLabel: "attention",
        xLabel: "source column",
        yLabel: "target column",
      }),
    );
  }
  if (result.area_flow) {
    const { areas } = result.area_flow;
    add(
      "area-flow",
      `Attention flow between areas (step mean): row = target area, column = source area. Below the diagonal = feedforward (${fmtPct(result.area_flow.mean.feedforward)}), above = feedback (${fmtPct(result.area_flow.mean.feedback)}), diagonal = lateral (${fmtPct(result.area_flow.mean.lateral)}).`,
      matrixHeatmap({ title: "Area x area attention flow", values: result.area_flow.mean.matrix, colormap: "viridis", colorbarLabel: "attention mass", rowLabels: areas, colLabels: areas, xLabel: "source area", yLabel: "target area" }),
    );
    add(
      "area-flow-per-step",
      "Feedforward, feedback and lateral fractions of attention at each recurrent step.",
      lineChart({
        title: "Flow by step",
        xLabel: "step",
        yLabel: "fraction of attention",
        series: (["feedforward", "feedback", "lateral"] as const).map((k) => ({
          name: k,
          x: result.area_flow!.per_step.map((_, i) => i + 1),
          y: result.area_flow!.per_step.map((f) => f[k]),
        })),
      }),
    );
  }
  const mean = result.connectivity.mean;
  add("distance-histogram", `Attention mass by distance (step mean); mean attention distance ${mean.mean_attention_distance.toFixed(3)}.`, histogram({ title: "Attention distance", xLabel: "distance on the sheet", yLabel: "attention mass", edges: mean.distance_histogram.edges, values: mean.distance_histogram.mass }));
  add(
    "locality-curve",
    "Fraction of attention within radius r, per step and for the step-mean map.",
    lineChart({
      title: "Locality",
      xLabel: "radius r",
      yLabel: "attention within r",
      series: [
        ...result.connectivity.per_step.map((m, i) => ({ name: `step ${i + 1}`, x: m.locality_curve.radii, y: m.locality_curve.fraction })),
        { name: "mean", x: mean.locality_curve.radii, y: mean.locality_curve.fraction },
      ],
    }),
  );
  const corr = result.topography.correlation_vs_distance;
  const cka = result.topography.cka_vs_distance;
  const mid = (e: number[]) => e.slice(0, -1).map((v, i) => (v + e[i + 1]) / 2);
  add("correlation-vs-distance", `Response correlation vs distance; smoothness index ${result.topography.smoothness_index.toFixed(3)}.`, lineChart({ title: "Response correlation vs distance", xLabel: "distance", yLabel: "mean Pearson r", series: [{ name: "r", x: mid(corr.edges), y: corr.meanCorrelation }] }));
  const ws = result.topography.weight_similarity_vs_distance;
  if (ws) {
    // empty bins are left out, so that each line joins the bins that have pairs
    const centres = mid(ws.edges);
    const filled = ws.counts.flatMap((c, b) => (c > 0 ? [b] : []));
    const curve = (name: string, y: number[]) => ({ name, x: filled.map((b) => centres[b]), y: filled.map((b) => y[b]) });
    const neighbours =
      ws.neighbours === null
        ? `similarity to the nearest neighbours ${ws.neighbour_similarity.toFixed(3)}`
        : `similarity to the ${ws.neighbours} nearest neighbours ${ws.neighbour_similarity.toFixed(3)} (1 minus the feature-consistency penalty with those neighbours)`;
    add(
      "weight-similarity-vs-distance",
      `Cosine similarity of two columns' untied weights vs their distance, per weight matrix and mean; ${neighbours}. The feature-consistency penalty pulls neighbours' weights together, raising the curve at short distances.`,
      lineChart({
        title: "Weight similarity vs distance",
        xLabel: "distance",
        yLabel: "mean cosine similarity",
        series: [
          curve("mean", ws.meanCosine),
          ...(ws.matrices.length > 1 ? ws.matrices.map((m) => curve(m.name.replace(/^sheet\./, "").replace(/\.weight$/, ""), m.meanCosine)) : []),
        ],
      }),
    );
  }
  add("cka-vs-distance", "Linear CKA of two columns' final-state features vs their distance: do untied columns agree on a feature space?", lineChart({ title: "Feature consistency (CKA) vs distance", xLabel: "distance", yLabel: "mean linear CKA", series: [{ name: "CKA", x: mid(cka.edges), y: cka.meanCKA }] }));
  const sel = result.topography.selectivity;
  if (sel) {
    const names = inputs.classNames ?? sel.dprime.map((_, c) => String(c));
    add("selectivity-maps", "Class selectivity d' of every column, one map per class.", sheetMaps({ title: "Class selectivity (d')", maps: sel.dprime.map((v, c) => ({ title: names[c], values: v })), layout, colormap: "diverging", colorbarLabel: "d'" }));
    add("preferred-class", `Preferred class (argmax d') of every column; Moran's I of max d' = ${sel.morans_i.observed.toFixed(3)} (null ${sel.morans_i.nullMean.toFixed(3)} +- ${sel.morans_i.nullStd.toFixed(3)}, z ${sel.morans_i.z.toFixed(1)}).`, sheetMap({ title: "Preferred class", values: Float32Array.from(sel.preferred), layout, colormap: "categorical", colorbarLabel: "class", categories: names }));
    add(
      "column-layout-class",
      `Columns at ${where}, coloured by preferred class (argmax d'); ${edgeText}.`,
      layoutOf("Column layout by preferred class", Float32Array.from(sel.preferred), names, "class"),
    );
    add("max-dprime", "Strongest selectivity (max d') of every column.", sheetMap({ title: "Max d'", values: Float32Array.from(sel.max_dprime), layout, colormap: "viridis", colorbarLabel: "max d'" }));
  }
  const classNames = inputs.classNames ?? (result.topography.selectivity ? result.topography.selectivity.dprime.map((_, c) => String(c)) : []);
  for (const f of fieldFigures(result.field, classNames, inputs.orientations ?? null)) add(f.name, f.caption, f.svg);
  const energy = new Float32Array(n);
  result.field.areas.forEach((a, k) => {
    energy.set(a.energy.per_column, geometry.areas[k].start);
  });
  add("energy", "Energy (mean |activation| over images and features) of every column.", sheetMap({ title: "Energy", values: energy, layout, colormap: "viridis", colorbarLabel: "mean |a|" }));
  add("in-degree", "In-degree of every column in the thresholded connectivity graph.", sheetMap({ title: "In-degree", values: Float32Array.from(result.graph.in_degree), layout, colormap: "viridis", colorbarLabel: "in-degree" }));
  add("out-degree", "Out-degree of every column in the thresholded connectivity graph.", sheetMap({ title: "Out-degree", values: Float32Array.from(result.graph.out_degree), layout, colormap: "viridis", colorbarLabel: "out-degree" }));
  add("communities", `Louvain communities of the connectivity graph (Q = ${result.graph.modularity.toFixed(3)}).`, sheetMap({ title: "Communities", values: Float32Array.from(result.graph.communities), layout, colormap: "categorical", colorbarLabel: "community" }));
  add("hoyer", "Hoyer sparsity of every column's activations.", sheetMap({ title: "Activation sparsity (Hoyer)", values: Float32Array.from(result.topography.sparsity.hoyer), layout, colormap: "viridis", colorbarLabel: "Hoyer" }));
  if (inputs.log && inputs.log.length > 0) {
    const series = (key: string) => {
      const rows = inputs.log!.filter((r) => typeof r[key] === "number");
      return { name: key, x: rows.map((r) => r.step as number), y: rows.map((r) => r[key] as number) };
    };
    const losses = ["task_loss", "eval_mim_loss", "eval_classification_loss"].map(series).filter((s) => s.x.length > 0);
    add("training-curves", "Training curves from the run's log.jsonl.", lineChart({ title: "Training", xLabel: "step", yLabel: "loss", series: losses }));
    const wiring = series("wiring_cost");
    if (wiring.y.some((v) => v > 0)) add("training-wiring", "Wiring cost during training (lambda applied).", lineChart({ title: "Wiring cost", xLabel: "step", yLabel: "wiring cost", series: [wiring] }));
  }
  return figs;
}

const fmtPct = (v: number) => `${(100 * v).toFixed(1)} %`;
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Write figures (PNG + SVG under figures/) and report.html into `outDir`. */
export async function writeReport(outDir: string, result: AnalysisResult, inputs: ReportInputs): Promise<string[]> {
  const figs = buildFigures(result, inputs);
  const written: string[] = [];
  for (const f of figs) {
    const { png } = await writeFigure(path.join(outDir, "figures", f.name), f.svg);
    written.push(png);
  }
  const m = result.connectivity.mean;
  const g = result.graph;
  const rows: [string, string][] = [
    ["images", String(result.images)],
    ["wiring cost, L1 (lambda 1)", m.wiring_cost_l1.toFixed(4)],
    ["wiring cost, cross-entropy (lambda 1)", m.wiring_cost_cross_entropy.toFixed(4)],
    ["mean attention distance", m.mean_attention_distance.toFixed(4)],
    ["self-attention mass", m.self_attention_mass.toFixed(4)],
    ["attention entropy (normalised)", m.attention_entropy_normalized.toFixed(4)],
    ...(result.area_flow
      ? ([
          ["feedforward / feedback / lateral", `${fmtPct(result.area_flow.mean.feedforward)} / ${fmtPct(result.area_flow.mean.feedback)} / ${fmtPct(result.area_flow.mean.lateral)}`],
        ] as [string, string][])
      : []),
    [`graph: edges (top ${(100 * result.options.edgeFraction).toFixed(1)} %)`, String(g.edges)],
    ["modularity Q (Louvain)", g.modularity.toFixed(4)],
    ["clustering C / path length L", `${g.clustering.toFixed(4)} / ${g.path_length.toFixed(3)}`],
    ["small-world sigma", g.small_world.sigma.toFixed(3)],
    ["smoothness index", result.topography.smoothness_index.toFixed(4)],
    ...(result.topography.selectivity
      ? ([["Moran's I of max d' (z)", `${result.topography.selectivity.morans_i.observed.toFixed(4)} (z ${result.topography.selectivity.morans_i.z.toFixed(1)})`]] as [string, string][])
      : []),
    ["mean Hoyer sparsity", result.topography.sparsity.mean_hoyer.toFixed(4)],
    ...fieldRows(result.field, inputs.classNames ?? []),
    ...(result.topography.weight_similarity_vs_distance
      ? ([["weight similarity to nearest neighbours (cosine)", result.topography.weight_similarity_vs_distance.neighbour_similarity.toFixed(4)]] as [string, string][])
      : []),
  ];
  const steps = result.connectivity.per_step
    .map((s, i) => `<tr><td>${i + 1}</td><td>${s.wiring_cost_l1.toFixed(4)}</td><td>${s.mean_attention_distance.toFixed(4)}</td><td>${s.self_attention_mass.toFixed(4)}</td><td>${s.attention_entropy_normalized.toFixed(4)}</td></tr>`)
    .join("");
  let recon = "";
  if (inputs.reconstructionsPng) {
    const b64 = (await readFile(inputs.reconstructionsPng)).toString("base64");
    recon = `<figure><img alt="MIM reconstructions" src="data:image/png;base64,${b64}"><figcaption>Held-out images: original | masked input | reconstruction.</figcaption></figure>`;
  }
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(inputs.title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}
figure{display:inline-block;margin:1em;vertical-align:top;max-width:700px}figcaption{font-size:0.9em;color:#555}
svg{max-width:100%;height:auto}dt{font-weight:bold;margin-top:0.5em}
</style></head><body>
<h1>${esc(inputs.title)}</h1>
<h2>Summary</h2>
<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join("")}</table>
<h2>Per recurrent step</h2>
<table><tr><th>step</th><th>wiring cost L1</th><th>mean distance</th><th>self mass</th><th>entropy (norm.)</th></tr>${steps}</table>
<h2>Figures</h2>
${recon}
${figs.map((f) => `<figure>${f.svg}<figcaption>${esc(f.caption)}</figcaption></figure>`).join("\n")}
<h2>Definitions</h2>
<dl>${Object.entries(result.definitions).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>
<p>All numbers: analysis.json next to this file.</p>
</body></html>
`;
  await writeFileAtomic(path.join(outDir, "report.html"), html);
  return written;
}
