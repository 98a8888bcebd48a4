/**
 * Seeds: sweep files replicate runs over `seeds`, compare summarises each configuration (mean,
 * SD, Student-t 95 % CI) and marks differences from the best configuration that are not
 * significant. Golden values: printed t tables and hand computation.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { buildRows, readSweepDir, seedGroups, writeComparison } from "../src/workflows/sweep/compare.ts";
import { expandSweep, parseSweepFile } from "../src/workflows/sweep/spec.ts";
import { replicates, studentTCdf, studentTQuantile, welchTTest } from "../src/workflows/sweep/stats.ts";
import { tmpDir } from "./data-fixtures.ts";

const close = (a: number, b: number, tol: number, what = "") => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} != ${b}`);

describe("statistics", () => {
  test("Student t quantiles match the printed table", () => {
    // t_{0.975, df} from any statistics table
    for (const [df, t] of [[1, 12.706], [2, 4.303], [4, 2.776], [10, 2.228], [30, 2.042], [1000, 1.962]] as const) close(studentTQuantile(0.975, df), t, 1e-3, `df ${df}`);
    close(studentTCdf(0, 3), 0.5, 1e-12);
    close(studentTCdf(1, 1), 0.75, 1e-12); // Cauchy: 1/2 + atan(1)/pi
    close(studentTCdf(-2, 2), 0.5 - 2 / (2 * Math.sqrt(6)), 1e-12); // df 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2))
  });

  test("replicates: mean, SD and the 95 % CI by hand", () => {
    // 1, 2, 3: mean 2, SD 1, half-width 4.303 / sqrt(3)
    const r = replicates([1, 2, 3]);
    assert.equal(r.mean, 2);
    close(r.std, 1, 1e-12);
    close(r.ci95[1] - 2, 4.3027 / Math.sqrt(3), 1e-3);
    assert.ok(Number.isNaN(replicates([5]).std));
  });

  test("Welch's t-test by hand", () => {
    // a = 1, 2, 3 (mean 2, var 1), b = 4, 6, 8 (mean 6, var 4): t = -4 / sqrt(1/3 + 4/3) = -3.0984; df = (5/3)^2 / ((1/9 + 16/9) / 2) = 50/17
    const w = welchTTest([1, 2, 3], [4, 6, 8]);
    close(w.t, -4 / Math.sqrt(5 / 3), 1e-12);
    close(w.df, 50 / 17, 1e-12);
    close(w.p, 2 * studentTCdf(-4 / Math.sqrt(5 / 3), 50 / 17), 1e-12);
    assert.ok(w.p > 0.03 && w.p < 0.1, `p ${w.p}`); // t 3.10 on about 3 df: p about 0.05
    assert.ok(welchTTest([1, 1.1, 0.9], [5, 5.1, 4.9]).p < 0.001);
    assert.ok(Number.isNaN(welchTTest([1], [2, 3]).p));
  });
});

describe("seeds in sweeps", () => {
  test("expand: every run once per seed, named _seed-S, config seed set", () => {
    const plan = expandSweep(parseSweepFile({ name: "s", preset: "tiny", grid: { "wiring.lambda": [0, 0.1] }, seeds: [0, 1, 2] }));
    assert.deepEqual(plan.runs.map((r) => r.name), ["lambda-0_seed-0", "lambda-0_seed-1", "lambda-0_seed-2", "lambda-0.1_seed-0", "lambda-0.1_seed-1", "lambda-0.1_seed-2"]);
    assert.deepEqual(plan.runs.map((r) => r.config.seed), [0, 1, 2, 0, 1, 2]);
    assert.deepEqual(plan.runs[4].overrides, { "wiring.lambda": 0.1, seed: 1 });
    assert.equal(plan.runs[4].seed, 1);
    assert.deepEqual(plan.seeds, [0, 1, 2]);
    assert.deepEqual(expandSweep(parseSweepFile({ name: "s", preset: "tiny", seeds: [4] })).runs.map((r) => r.name), ["seed-4"]);
    assert.throws(() => expandSweep(parseSweepFile({ name: "s", preset: "tiny", set: { seed: 3 }, seeds: [0, 1] })), /remove "seed"/);
    assert.throws(() => parseSweepFile({ name: "s", seeds: [1, 1] }), /distinct/);
    assert.equal(expandSweep(parseSweepFile({ name: "s", preset: "tiny" })).runs[0].seed, null);
  });

  test("compare: mean, SD, CI per configuration; not-significant differences marked; error bars drawn", async () => {
    const dir = await tmpDir("cf-seeds-");
    const acc: Record<string, number[]> = { a: [0.9, 0.91, 0.92], b: [0.895, 0.915, 0.905], c: [0.5, 0.51, 0.52] };
    const runs: { name: string; overrides: Record<string, unknown> }[] = [];
    for (const [cfg, values] of Object.entries(acc)) {
      values.forEach((accuracy, seed) => {
        const name = `${cfg}_seed-${seed}`;
        const overrides = { "sheet.variant": cfg, seed };
        runs.push({ name, overrides });
        mkdirSync(path.join(dir, name));
        writeFileSync(
          path.join(dir, name, "sweep-summary.json"),
          JSON.stringify({ name, overrides, task: "classify", steps: 10, parameters: 100, flops_per_image: 1, images_per_second: 1, train_seconds: 1, eval: { loss: 1, accuracy }, probe_accuracy: null, wiring_cost: 1 + seed / 10, mean_attention_distance: 1 }),
        );
      });
    }
    writeFileSync(path.join(dir, "sweep.json"), JSON.stringify({ name: "seeds", runs }));
    const listing = readSweepDir(dir);
    const groups = seedGroups(buildRows(listing.runs), "accuracy");
    assert.deepEqual(groups.map((g) => g.name), ["a", "b", "c"]);
    const a = groups[0];
    assert.ok(a.best);
    close(a.metric.mean, 0.91, 1e-12);
    close(a.metric.std, 0.01, 1e-12);
    close(a.metric.ci95[0], 0.91 - (4.3027 * 0.01) / Math.sqrt(3), 1e-5);
    assert.equal(groups[1].significant, false, "b is within noise of a");
    assert.equal(groups[2].significant, true, "c is clearly worse");
    assert.deepEqual(groups[1].seeds, [0, 1, 2]);
    const result = await writeComparison(listing);
    const md = readFileSync(path.join(dir, "compare.md"), "utf8");
    assert.match(md, /## Seeds/);
    assert.match(md, /\| b \| 3 \| 90\.50% ± 1\.00% \| .* \| p = [0-9.]+ \(n\.s\.\) \|/);
    assert.match(md, /\| a \| 3 \| 91\.00% ± 1\.00% \| .* \| best \|/);
    assert.ok(existsSync(path.join(dir, "compare-seeds.json")));
    const svg = readFileSync(path.join(dir, "compare-accuracy-seeds.svg"), "utf8");
    assert.equal((svg.match(/class="error-bar"/g) ?? []).length, 3, "one CI error bar per configuration");
    assert.match(svg, /b \(n\.s\.\)/);
    assert.ok(result.files.some((f) => f.endsWith("compare-accuracy-seeds.png")));
  });
});
