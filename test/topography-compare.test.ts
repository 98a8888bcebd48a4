/**
 * `columnformer compare` on analysed runs: the field metrics of each run's analysis/analysis.json
 * pooled per configuration (seeds) and area, checked against means and SDs computed by hand; the
 * x axis of the figures; and the files and Markdown section writeComparison adds.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { readSweepDir, writeComparison } from "../src/workflows/sweep/compare.ts";
import type { RunSummary } from "../src/workflows/sweep/summary.ts";
import { readRunTopography, topographyAxis, topographyGroups, topographyTable } from "../src/workflows/sweep/topography-compare.ts";

/** The parts of an analysis.json's `field` that compare reads, for areas with the given numbers. */
function analysisJson(areas: { name: string; smooth: number; shuffled: number; ori: number | null; moran: number; patches: number[]; frac: number[] }[], ed: number): unknown {
  return {
    field: {
      areas: areas.map((a) => ({
        name: a.name,
        columns_level: {
          selectivity: {
            smoothness_preferred: { smoothness: a.smooth, shuffled: { smoothness: a.shuffled } },
            selective_fraction: a.frac,
            patches: a.patches.map((count) => ({ count, sizes: [] })),
            morans_i_max_t: { I: a.moran, z: 10 * a.moran },
          },
          orientation: a.ori === null ? null : { smoothness: { smoothness: a.ori, shuffled: { smoothness: 0.1 } } },
        },
      })),
      effective_dimensionality: { area: areas[areas.length - 1].name, value: ed },
    },
  };
}

function summary(name: string, overrides: Record<string, unknown>, accuracy: number): RunSummary {
  return {
    name,
    overrides,
    task: "classify",
    steps: 10,
    parameters: 100,
    flops_per_image: 1000,
    images_per_second: 10,
    train_seconds: 1,
    eval: { loss: 0.1, accuracy },
    probe_accuracy: null,
    wiring_cost: 1,
    mean_attention_distance: 2,
  };
}

/** A seeded lambda sweep (lambda 1 and 0.01 and 0, two seeds each); all but lambda-0_seed-1 analysed. */
function analysedSweep(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cf-topo-compare-"));
  const runs: { name: string; overrides: Record<string, unknown>; analysis: unknown | null }[] = [];
  const add = (lambda: number, seed: number, smooth: [number, number], analysed = true) =>
    runs.push({
      name: `lambda-${lambda}_seed-${seed}`,
      overrides: { "wiring.lambda": lambda, seed },
      analysis: analysed
        ? analysisJson(
            [
              { name: "area0", smooth: smooth[0], shuffled: 0.1, ori: 0.2 + seed, moran: 0.1 * (seed + 1), patches: [1, 2], frac: [0.2, 0.4] },
              { name: "area1", smooth: smooth[1], shuffled: 0.3, ori: null, moran: -0.1, patches: [0, 0], frac: [0, 0.1] },
            ],
            5 + seed,
          )
        : null,
    });
  add(1, 0, [0.5, 0.7]);
  add(1, 1, [0.3, 0.9]);
  add(0.01, 0, [0.2, 0.2]);
  add(0.01, 1, [0.4, 0.2]);
  add(0, 0, [0.1, 0.0]);
  add(0, 1, [0.9, 0.9], false);
  writeFileSync(path.join(dir, "sweep.json"), JSON.stringify({ name: "topo", runs: runs.map((r, index) => ({ index, name: r.name, overrides: r.overrides, config: {} })) }));
  for (const r of runs) {
    mkdirSync(path.join(dir, r.name, "analysis"), { recursive: true });
    writeFileSync(path.join(dir, r.name, "config.json"), "{}");
    writeFileSync(path.join(dir, r.name, "sweep-summary.json"), JSON.stringify(summary(r.name, r.overrides, 0.9)));
    if (r.analysis) writeFileSync(path.join(dir, r.name, "analysis", "analysis.json"), JSON.stringify(r.analysis));
  }
  return dir;
}

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

describe("compare: topography of analysed runs", () => {
  test("readRunTopography reads each area's numbers; a run without analysis.json gives null; a file without field metrics names the fix", () => {
    const dir = analysedSweep();
    const t = readRunTopography(path.join(dir, "lambda-1_seed-1"))!;
    assert.deepEqual([...t.areas.keys()], ["area0", "area1"]);
    const a0 = t.areas.get("area0")!;
    assert.equal(a0.smoothness_class, 0.3);
    assert.equal(a0.smoothness_class_shuffled, 0.1);
    assert.equal(a0.smoothness_orientation, 1.2);
    assert.equal(a0.morans_i, 0.2);
    assert.equal(a0.patches, 3, "patches summed over classes");
    close(a0.selective_fraction!, 0.3, "mean selective fraction");
    assert.equal(t.areas.get("area1")!.smoothness_orientation, null, "no gratings: null");
    assert.deepEqual(t.effective_dimensionality, { area: "area1", value: 6 });
    assert.equal(readRunTopography(path.join(dir, "lambda-0_seed-1")), null);
    const old = path.join(dir, "lambda-0_seed-0", "analysis", "analysis.json");
    writeFileSync(old, JSON.stringify({ topography: {} }));
    assert.throws(() => readRunTopography(path.join(dir, "lambda-0_seed-0")), /has no field metrics .*re-run columnformer analyze/);
  });

  test("topographyGroups pools the analysed seeds: mean and sample SD by hand; the axis orders lambda by value", () => {
    const dir = analysedSweep();
    const names = ["lambda-1", "lambda-0.01", "lambda-0"];
    const lambdas = [1, 0.01, 0];
    const configurations = names.map((name, i) => ({ name, overrides: { "wiring.lambda": lambdas[i] }, runs: [`${name}_seed-0`, `${name}_seed-1`] }));
    const byRun = new Map(readdirSync(dir).flatMap((r) => {
      const t = readRunTopography(path.join(dir, r));
      return t ? [[r, t] as const] : [];
    }));
    const groups = topographyGroups(configurations, byRun);
    assert.deepEqual(groups.map((g) => g.analysed.length), [2, 2, 1]);
    const s = groups[0].areas.area0.smoothness_class;
    close(s.mean, 0.4, "mean of 0.5 and 0.3");
    close(s.std, Math.sqrt(((0.5 - 0.4) ** 2 + (0.3 - 0.4) ** 2) / 1), "sample SD");
    close(groups[0].areas.area1.smoothness_class.mean, 0.8, "area1 mean");
    assert.equal(groups[2].areas.area0.smoothness_class.n, 1);
    assert.ok(Number.isNaN(groups[2].areas.area0.smoothness_class.std), "one seed: no SD");
    close(groups[0].effective_dimensionality.mean, 5.5, "effective dimensionality");
    const table = topographyTable(groups);
    assert.match(table, /\| lambda-1 \| area0 \| 2 \| 0\.400 ± 0\.141 \|/);
    assert.match(table, /\| lambda-0 \| area0 \| 1 \| 0\.100 \| - \|/);
    const axis = topographyAxis(groups);
    assert.equal(axis.label, "lambda");
    assert.deepEqual(axis.ticks.map((t) => t.label), ["0", "0.01", "1"]);
    assert.deepEqual(axis.x, [2, 1, 0]);
    const mixed = topographyAxis([{ ...groups[0], overrides: { "sheet.geometry": "grid" } }, { ...groups[1], overrides: { "sheet.geometry": "torus" } }]);
    assert.deepEqual(mixed.ticks.map((t) => t.label), ["lambda-1", "lambda-0.01"], "a non-numeric override: one tick per configuration");
  });

  test("writeComparison adds compare-topography.json, three figures and a Topography section when runs were analysed", async () => {
    const dir = analysedSweep();
    const out = path.join(dir, "report");
    await writeComparison(readSweepDir(dir), out);
    const files = readdirSync(out);
    for (const f of ["compare-topography.json", "compare-topography-class-smoothness.svg", "compare-topography-class-smoothness.png", "compare-topography-orientation-smoothness.png", "compare-topography-morans-i.png"]) {
      assert.ok(files.includes(f), f);
    }
    const md = readFileSync(path.join(out, "compare.md"), "utf8");
    assert.match(md, /## Topography\n\nFrom `columnformer analyze` of 5 runs/);
    assert.ok(md.includes("](compare-topography-class-smoothness.png)"));
    const json = JSON.parse(readFileSync(path.join(out, "compare-topography.json"), "utf8")) as { name: string }[];
    assert.deepEqual(json.map((g) => g.name), ["lambda-1", "lambda-0.01", "lambda-0"]);
    const svg = readFileSync(path.join(out, "compare-topography-class-smoothness.svg"), "utf8");
    assert.ok(svg.includes("shuffled positions"), "the null is drawn");

    const plain = mkdtempSync(path.join(os.tmpdir(), "cf-topo-none-"));
    writeFileSync(path.join(plain, "sweep.json"), JSON.stringify({ name: "p", runs: [{ index: 0, name: "a", overrides: {}, config: {} }] }));
    mkdirSync(path.join(plain, "a"));
    writeFileSync(path.join(plain, "a", "sweep-summary.json"), JSON.stringify(summary("a", {}, 0.5)));
    await writeComparison(readSweepDir(plain));
    assert.ok(!readdirSync(plain).some((f) => f.startsWith("compare-topography")), "no analysis: no topography files");
    assert.ok(!readFileSync(path.join(plain, "compare.md"), "utf8").includes("## Topography"));
  });
});
