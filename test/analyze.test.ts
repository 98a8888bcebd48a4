/**
 * The analyze command end to end on a tiny trained model: analysis.json holds
 * every metric with its definition, figures come as PNG and SVG, report.html
 * is self-contained, and a fixed seed gives identical results on rerun.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { before, test } from "node:test";
import { type AnalysisResult, analyzeActivity } from "../src/analysis/analyze.ts";
import { buildFigures } from "../src/analysis/report.ts";
import { initEngine } from "../src/engine/engine.ts";
import { buildGeometry } from "../src/geometry/index.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { train } from "../src/train/trainer.ts";
import { halvesIdxFolder, tmpDir } from "./data-fixtures.ts";

const run = promisify(execFile);
const CLI = path.join(import.meta.dirname, "..", "src", "cli", "main.ts");
let runDir = "";

before(async () => {
  await initEngine();
  const dataDir = await halvesIdxFolder("cf-analyze-data-");
  runDir = path.join(await tmpDir("cf-analyze-run-"), "run");
  await train(
    parseTrainConfig({
      sheet: { geometry: { kind: "stacked", widths: [2, 2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2 },
      vision: { image_size: 8, patch_size: 4, channels: 1, task: "classify", num_classes: 2 },
      data: { kind: "idx", path: dataDir },
      batch_size: 16,
      steps: 4,
      eval_every: 2,
      eval_images: 16,
      checkpoint_every: 2,
    }),
    runDir,
    { verbose: false },
  );
});

/** Run `columnformer analyze`; analysis.json holds the AnalysisResult (and the checkpoint, step and geometry, not read here). */
async function analyze(out: string): Promise<AnalysisResult> {
  await run(process.execPath, ["--import", "tsx", CLI, "analyze", runDir, "--images", "40", "--out", out, "--seed", "3"]);
  return JSON.parse(readFileSync(path.join(out, "analysis.json"), "utf8"));
}

test("analysis.json, figures and a self-contained report; identical on rerun", async () => {
  const base = await tmpDir("cf-analyze-out-");
  const a = await analyze(path.join(base, "a"));
  const b = await analyze(path.join(base, "b"));
  assert.deepEqual(a, b, "same seed, same results");

  assert.equal(a.images, 40);
  assert.equal(a.connectivity.per_step.length, 2);
  for (const key of ["wiring_cost_l1", "wiring_cost_cross_entropy", "mean_attention_distance", "self_attention_mass", "attention_entropy"] as const) {
    assert.ok(Number.isFinite(a.connectivity.mean[key]), key);
    assert.ok(typeof a.definitions[key] === "string" || key.startsWith("attention_entropy"), `definition of ${key}`);
  }
  const hist = a.connectivity.mean.distance_histogram.mass as number[];
  assert.ok(Math.abs(hist.reduce((s, v) => s + v, 0) - 1) < 1e-6, "histogram mass sums to 1");
  const curve = a.connectivity.mean.locality_curve.fraction as number[];
  assert.ok(Math.abs(curve[curve.length - 1] - 1) < 1e-6, "all attention within the largest radius");
  const flow = a.area_flow!.mean;
  assert.deepEqual(a.area_flow!.areas, ["area0", "area1", "area2"]);
  assert.ok(Math.abs(flow.feedforward + flow.feedback + flow.lateral - 1) < 1e-6);
  assert.equal(a.graph.in_degree.length, 12);
  assert.equal(a.topography.selectivity!.dprime.length, 2);
  assert.ok(a.options.edgeFraction > 0 && a.options.seed === 3, "parameters recorded");
  const ws = a.topography.weight_similarity_vs_distance!;
  assert.deepEqual(ws.matrices.map((m: { name: string }) => m.name), ["sheet.attn.q.weight", "sheet.attn.k.weight", "sheet.mlp.fc1.weight", "sheet.mlp.fc2.weight"]);
  assert.equal(ws.edges.length, ws.meanCosine.length + 1);
  assert.ok(Number.isFinite(ws.neighbour_similarity) && Math.abs(ws.neighbour_similarity) <= 1, "neighbour weight similarity");
  assert.equal(typeof a.definitions.weight_similarity_vs_distance, "string");

  // the published-definition metrics: every one documented with its formula and source
  const field = a.field;
  for (const key of ["tdann_smoothness", "welch_t", "dprime", "patches", "morans_i", "localiser", "effective_dimensionality", "energy", "unit_level", "orientation", "pinwheels"]) {
    assert.equal(typeof field.references[key].formula, "string", `formula of ${key}`);
    assert.equal(typeof field.references[key].source, "string", `source of ${key}`);
  }
  assert.deepEqual(field.areas.map((x: { name: string }) => x.name), ["area0", "area1", "area2"]);
  const top = field.areas[2];
  assert.deepEqual(top.grid, [2, 2]);
  assert.equal(top.columns_level.selectivity!.t.length, 2);
  assert.equal(top.columns_level.selectivity!.smoothness_preferred.curve.length, 20);
  assert.equal(top.columns_level.selectivity!.morans_i_max_t.permutations, 199);
  assert.equal(top.columns_level.orientation!.preferred.length, 4, "orientation maps from the grating set");
  assert.deepEqual(top.unit_level!.sub_grid, [3, 3], "D = 8 features as a 3 x 3 sub-grid");
  assert.equal(top.unit_level!.selectivity!.preferred.length, 4 * 8);
  assert.equal(top.unit_level!.orientation!.preferred.length, 4 * 8);
  assert.ok(top.energy.mean > 0);
  assert.ok(field.effective_dimensionality.value >= 1 && field.effective_dimensionality.units === 32);
  assert.deepEqual(field.localiser!.areas, ["area0", "area1", "area2"]);
  assert.equal(field.options.response, "mean");

  const out = path.join(base, "a");
  for (const fig of ["area-flow", "locality-curve", "distance-histogram", "correlation-vs-distance", "cka-vs-distance", "preferred-class", "selectivity-maps", "in-degree", "training-curves", "attention-matrix-step1", "column-layout", "column-layout-class", "weight-similarity-vs-distance", "energy", "energy-area2", "welch-t-area2", "tdann-smoothness-class-area2", "tdann-smoothness-orientation-area2", "unit-preferred-class-area2", "orientation-map-area2", "unit-orientation-map-area2"]) {
    assert.ok(existsSync(path.join(out, "figures", `${fig}.png`)), `${fig}.png`);
    assert.ok(existsSync(path.join(out, "figures", `${fig}.svg`)), `${fig}.svg`);
  }
  const html = readFileSync(path.join(out, "report.html"), "utf8");
  assert.ok(html.includes("<svg"), "figures inline");
  assert.ok(!/(src|href)="(https?:|\/\/)/.test(html), "no external resources");
  const layout = readFileSync(path.join(out, "figures", "column-layout.svg"), "utf8");
  assert.equal((layout.match(/<circle /g) ?? []).length, 12, "one dot per column");
  assert.equal((layout.match(/class="edge"/g) ?? []).length, 24, "the 2N strongest connections");
});

test("report: column layouts (learned positions noted) and the weight-similarity curve from synthetic activity", () => {
  const geometry = buildGeometry({ kind: "grid", height: 2, width: 3 });
  const n = 6;
  const dim = 2;
  const images = 8;
  const attention = Float32Array.from({ length: 2 * n * n }, (_, k) => 0.05 + ((k * 7) % 11) / 100);
  const states = Float32Array.from({ length: images * n * dim }, (_, k) => Math.sin(0.7 * k) + (Math.floor(k / (n * dim)) % 2));
  const activity = { images, attention, states, labels: Int32Array.from({ length: images }, (_, i) => i % 2) };
  const weights = [{ name: "sheet.mlp.fc1.weight", shape: [n, 1, 2], values: Float32Array.from({ length: n * 2 }, (_, k) => 1 + Math.cos(k)) }];
  const result = analyzeActivity(activity, geometry, dim, 2, undefined, { weights, neighbours: 2 });
  assert.equal(result.topography.weight_similarity_vs_distance?.neighbours, 2);
  const figs = buildFigures(result, { title: "t", geometry, activity, classNames: ["a", "b"], learnedPositions: true });
  const byName = new Map(figs.map((f) => [f.name, f]));
  for (const name of ["column-layout", "column-layout-class", "weight-similarity-vs-distance"]) assert.ok(byName.has(name), name);
  assert.match(byName.get("column-layout")!.caption, /LEARNED positions/);
  assert.equal((byName.get("column-layout")!.svg.match(/class="edge"/g) ?? []).length, 2 * n);
  assert.ok(byName.get("column-layout-class")!.svg.includes(">b<"), "class names in the legend");
  const plain = buildFigures(analyzeActivity(activity, geometry, dim, null), { title: "t", geometry, activity });
  assert.ok(!plain.some((f) => f.name === "weight-similarity-vs-distance" || f.name === "column-layout-class"), "no weights, no classes");
  assert.doesNotMatch(plain.find((f) => f.name === "column-layout")!.caption, /LEARNED/);
});
