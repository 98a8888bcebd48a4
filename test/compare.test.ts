/**
 * `columnformer compare`: pure table and figure building on hand-written run
 * summaries, reading a sweep directory (with and without sweep.json, unfinished
 * runs, a run without a probe), the files written, and the CLI's errors.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, test } from "node:test";
import {
  buildRows,
  chooseMetric,
  csvField,
  csvTable,
  figureSpecs,
  formatSI,
  markdownTable,
  readSweepDir,
  writeComparison,
  type SweepEntry,
} from "../src/workflows/sweep/compare.ts";
import { describeOverrides, shortKeys, varyingKeys } from "../src/workflows/sweep/overrides.ts";
import type { RunSummary } from "../src/workflows/sweep/summary.ts";

const execFileP = promisify(execFile);
const CLI = path.join(import.meta.dirname, "..", "src", "cli", "main.ts");

/** Run the CLI; resolves with exit code, stdout and stderr. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, ["--import", "tsx", CLI, ...args], { env: { ...process.env, COLUMNFORMER_DEBUG: "" } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** A classification run summary with the given overrides and numbers. */
function clsSummary(name: string, overrides: Record<string, unknown>, o: Partial<RunSummary> & { accuracy: number }): RunSummary {
  return {
    name,
    overrides,
    task: "classify",
    steps: 300,
    parameters: 123_456,
    flops_per_image: 1_234_567,
    images_per_second: 28.44,
    train_seconds: 340,
    eval: { loss: 0.3, accuracy: o.accuracy },
    probe_accuracy: 0.9,
    wiring_cost: 1.0,
    mean_attention_distance: 2.5,
    ...o,
  };
}

/** A MIM run summary. */
function mimSummary(name: string, overrides: Record<string, unknown>, mim: number, wiring: number): RunSummary {
  return {
    name,
    overrides,
    task: "mim",
    steps: 1200,
    parameters: 2_000_000,
    flops_per_image: 5.5e9,
    images_per_second: 100,
    train_seconds: 12,
    eval: { loss: mim, mim_loss: mim },
    probe_accuracy: null,
    wiring_cost: wiring,
    mean_attention_distance: 3,
  };
}

/** The classification sweep of the fixtures: 3 finished runs (one without probe) and one unfinished. */
function clsEntries(): SweepEntry[] {
  return [
    { name: "columns_lambda-0", overrides: { "wiring.lambda": 0 }, summary: clsSummary("columns_lambda-0", { "wiring.lambda": 0 }, { accuracy: 0.95, wiring_cost: 1.1 }) },
    {
      name: "columns_lambda-0.1",
      overrides: { "wiring.lambda": 0.1 },
      summary: clsSummary("columns_lambda-0.1", { "wiring.lambda": 0.1 }, { accuracy: 0.93, wiring_cost: 0.4, probe_accuracy: null }),
    },
    { name: "transformer_lambda-0", overrides: { "sheet.untie_attn": false, "wiring.lambda": 0 }, summary: null },
    {
      name: "transformer_lambda-0.1",
      overrides: { "sheet.untie_attn": false, "wiring.lambda": 0.1 },
      summary: clsSummary("transformer_lambda-0.1", { "sheet.untie_attn": false, "wiring.lambda": 0.1 }, { accuracy: 0.9, parameters: 12_000, wiring_cost: 0.5 }),
    },
  ];
}

/** Write a sweep directory: sweep.json (unless `plan` is false) and the finished runs' summaries. */
function writeSweepDir(entries: SweepEntry[], plan = true, name = "fixture"): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cf-compare-"));
  if (plan) {
    writeFileSync(path.join(dir, "sweep.json"), JSON.stringify({ name, runs: entries.map((e, index) => ({ index, name: e.name, overrides: e.overrides, config: {} })) }));
  }
  for (const e of entries) {
    mkdirSync(path.join(dir, e.name), { recursive: true });
    writeFileSync(path.join(dir, e.name, "config.json"), "{}");
    if (e.summary) writeFileSync(path.join(dir, e.name, "sweep-summary.json"), JSON.stringify(e.summary));
  }
  return dir;
}

describe("compare: pure helpers", () => {
  test("formatSI: three significant digits with k / M / G", () => {
    assert.equal(formatSI(0), "0");
    assert.equal(formatSI(950), "950");
    assert.equal(formatSI(12.345), "12.3");
    assert.equal(formatSI(1234), "1.23 k");
    assert.equal(formatSI(123_456), "123 k");
    assert.equal(formatSI(1_234_567), "1.23 M");
    assert.equal(formatSI(999_999), "1 M");
    assert.equal(formatSI(5.5e9), "5.5 G");
    assert.equal(formatSI(-2500), "-2.5 k");
  });

  test("varyingKeys / shortKeys / describeOverrides: only keys that differ, shortest unique labels", () => {
    const rows = buildRows(clsEntries());
    const keys = varyingKeys(rows);
    assert.deepEqual(keys, ["wiring.lambda", "sheet.untie_attn"]);
    assert.deepEqual(varyingKeys([{ overrides: { a: 1 } }, { overrides: { a: 1, b: 2 } }]), ["b"]);
    assert.deepEqual(varyingKeys([{ overrides: { a: 1, b: "x" } }]), ["a", "b"]);
    const labels = shortKeys(["wiring.lambda", "other.lambda", "sheet.untie_attn"]);
    assert.equal(labels.get("wiring.lambda"), "wiring.lambda");
    assert.equal(labels.get("sheet.untie_attn"), "untie_attn");
    assert.equal(describeOverrides({ "wiring.lambda": 0.1, "sheet.geometry": { kind: "grid" } }, ["wiring.lambda", "sheet.geometry"], shortKeys(["wiring.lambda", "sheet.geometry"])), 'lambda=0.1, geometry={"kind":"grid"}');
    assert.equal(describeOverrides({}, ["x"], new Map()), "-");
  });

  test("chooseMetric: accuracy for classification sweeps, MIM loss for MIM sweeps", () => {
    assert.equal(chooseMetric(buildRows(clsEntries())), "accuracy");
    assert.equal(chooseMetric(buildRows([{ name: "a", overrides: {}, summary: mimSummary("a", {}, 0.3, 1) }])), "mim_loss");
    assert.equal(chooseMetric(buildRows([{ name: "a", overrides: {}, summary: null }])), null);
  });

  test("markdownTable: every run in order, human units, unfinished and missing probe marked", () => {
    const table = markdownTable(buildRows(clsEntries()));
    const lines = table.trimEnd().split("\n");
    assert.equal(lines.length, 2 + 4);
    assert.equal(
      lines[0],
      "| run | key overrides | parameters | FLOPs/image | images/s | accuracy | probe accuracy | wiring cost | mean attn. distance | steps |",
    );
    assert.ok(!lines[0].includes("MIM loss"), "a classification sweep has no MIM loss column");
    assert.equal(lines[2], "| columns_lambda-0 | lambda=0 | 123 k | 1.23 M | 28.4 | 95.00% | 90.00% | 1.100 | 2.500 | 300 |");
    assert.equal(lines[3], "| columns_lambda-0.1 | lambda=0.1 | 123 k | 1.23 M | 28.4 | 93.00% | - | 0.400 | 2.500 | 300 |");
    assert.equal(lines[4], "| transformer_lambda-0 | lambda=0, untie_attn=false | unfinished | - | - | - | - | - | - | - |");
    assert.match(lines[5], /^\| transformer_lambda-0\.1 \| lambda=0\.1, untie_attn=false \| 12 k \|/);
  });

  test("markdownTable: MIM sweeps get a MIM loss column; pipes in names are escaped", () => {
    const table = markdownTable(buildRows([{ name: "a|b", overrides: { x: "p|q" }, summary: mimSummary("a|b", { x: "p|q" }, 0.28912, 0.7) }]));
    const lines = table.trimEnd().split("\n");
    assert.ok(lines[0].includes("| MIM loss |") && !lines[0].includes("| accuracy |"));
    assert.equal(lines[2], "| a\\|b | x=p\\|q | 2 M | 5.5 G | 100.0 | 0.2891 | - | 0.700 | 3.000 | 1,200 |");
  });

  test("csvTable: raw numbers, empty cells for missing values, one column per override key, RFC 4180 quoting", () => {
    const csv = csvTable(buildRows(clsEntries()));
    const lines = csv.trimEnd().split("\n");
    assert.equal(
      lines[0],
      "run,status,task,steps,parameters,flops_per_image,images_per_second,train_seconds,eval_loss,mim_loss,accuracy,probe_accuracy,wiring_cost,mean_attention_distance,overrides,set:wiring.lambda,set:sheet.untie_attn",
    );
    assert.equal(lines[1], 'columns_lambda-0,finished,classify,300,123456,1234567,28.44,340,0.3,,0.95,0.9,1.1,2.5,"{""wiring.lambda"":0}",0,');
    assert.equal(lines[2].split(",")[11], "", "probe null -> empty cell");
    assert.equal(lines[3], 'transformer_lambda-0,unfinished,,,,,,,,,,,,,"{""sheet.untie_attn"":false,""wiring.lambda"":0}",0,false');
    assert.equal(csvField('say "hi", bye'), '"say ""hi"", bye"');
    assert.equal(csvField("plain"), "plain");
  });

  test("figureSpecs: three scatter plots of the metric with one labelled point per finished run", () => {
    const specs = figureSpecs(buildRows(clsEntries()), "accuracy", "fixture");
    assert.deepEqual(
      specs.map((s) => s.file),
      ["compare-accuracy-vs-wiring-cost", "compare-accuracy-vs-parameters", "compare-accuracy-vs-attention-distance"],
    );
    for (const s of specs) {
      assert.ok(s.svg.startsWith("<svg"));
      assert.equal((s.svg.match(/<circle /g) ?? []).length, 3, "unfinished run not plotted");
      for (const name of ["columns_lambda-0", "columns_lambda-0.1", "transformer_lambda-0.1"]) assert.ok(s.svg.includes(`>${name}</text>`), name);
      assert.ok(!s.svg.includes(">transformer_lambda-0</text>"));
      assert.ok(s.svg.includes("test accuracy (%)"));
    }
    const mim = figureSpecs(buildRows([{ name: "a", overrides: {}, summary: mimSummary("a", {}, 0.3, 1) }]), "mim_loss", "m");
    assert.equal(mim[0].file, "compare-mim-loss-vs-wiring-cost");
    assert.ok(mim[0].svg.includes("held-out MIM loss"));
  });
});

describe("compare: sweep directories", () => {
  test("readSweepDir follows sweep.json's order and marks runs without a summary unfinished", () => {
    const entries = clsEntries();
    const dir = writeSweepDir(entries);
    const listing = readSweepDir(dir);
    assert.equal(listing.name, "fixture");
    assert.equal(listing.fromPlan, true);
    assert.deepEqual(
      listing.runs.map((r) => [r.name, r.summary !== null]),
      entries.map((e) => [e.name, e.summary !== null]),
    );
    assert.deepEqual(listing.runs[2].overrides, { "sheet.untie_attn": false, "wiring.lambda": 0 });
  });

  test("without sweep.json: run directories in name order, overrides from the summaries", () => {
    const entries = clsEntries().reverse();
    const dir = writeSweepDir(entries, false);
    mkdirSync(path.join(dir, "not-a-run"));
    const listing = readSweepDir(dir);
    assert.equal(listing.fromPlan, false);
    assert.deepEqual(
      listing.runs.map((r) => r.name),
      ["columns_lambda-0", "columns_lambda-0.1", "transformer_lambda-0", "transformer_lambda-0.1"],
    );
    assert.deepEqual(listing.runs[2].overrides, {}, "an unfinished run without a plan has no known overrides");
    assert.deepEqual(listing.runs[3].overrides, { "sheet.untie_attn": false, "wiring.lambda": 0.1 });
  });

  test("writeComparison writes compare.csv, compare.md and three figures (SVG + PNG), atomically, into --out", async () => {
    const dir = writeSweepDir(clsEntries());
    const out = path.join(dir, "report");
    const result = await writeComparison(readSweepDir(dir), out);
    assert.deepEqual(result.unfinished, ["transformer_lambda-0"]);
    const files = readdirSync(out).sort();
    assert.deepEqual(files, [
      "compare-accuracy-vs-attention-distance.png",
      "compare-accuracy-vs-attention-distance.svg",
      "compare-accuracy-vs-parameters.png",
      "compare-accuracy-vs-parameters.svg",
      "compare-accuracy-vs-wiring-cost.png",
      "compare-accuracy-vs-wiring-cost.svg",
      "compare.csv",
      "compare.md",
    ]);
    const png = readFileSync(path.join(out, "compare-accuracy-vs-wiring-cost.png"));
    assert.ok(png.subarray(1, 4).equals(Buffer.from("PNG")));
    const md = readFileSync(path.join(out, "compare.md"), "utf8");
    assert.ok(md.startsWith("# Sweep fixture: 3 of 4 runs finished"));
    assert.ok(md.includes(result.table.trimEnd()));
    assert.ok(md.includes("Unfinished (no sweep-summary.json yet): transformer_lambda-0."));
    assert.ok(md.includes("](compare-accuracy-vs-parameters.png)"));
    assert.equal(readFileSync(path.join(out, "compare.csv"), "utf8").trimEnd().split("\n").length, 5);
    assert.ok(!existsSync(path.join(dir, "compare.md")), "--out: nothing written into the sweep dir");
  });

  test("errors: missing dir, not a sweep dir, no finished runs, a corrupt summary", async () => {
    assert.throws(() => readSweepDir("/nonexistent/sweep"), /does not exist/);
    const empty = mkdtempSync(path.join(os.tmpdir(), "cf-compare-empty-"));
    assert.throws(() => readSweepDir(empty), /is not a sweep directory: it has no sweep\.json/);
    const none = writeSweepDir([{ name: "a", overrides: {}, summary: null }]);
    await assert.rejects(writeComparison(readSweepDir(none)), /no finished runs in .* none of its 1 run has sweep-summary\.json \(a\)/);
    const bad = writeSweepDir([{ name: "a", overrides: {}, summary: null }]);
    writeFileSync(path.join(bad, "a", "sweep-summary.json"), JSON.stringify({ name: "a", task: "regress" }));
    assert.throws(() => readSweepDir(bad), /sweep-summary\.json is not a run summary: task:/);
  });
});

describe("columnformer compare (CLI)", () => {
  test("prints the Markdown table, lists unfinished runs and writes into the sweep dir", async () => {
    const dir = writeSweepDir(clsEntries());
    const r = await cli("compare", dir);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith("| run | key overrides |"));
    assert.ok(r.stdout.includes("unfinished: transformer_lambda-0"));
    assert.match(r.stderr, /wrote .*compare\.md, compare\.csv and 3 figures/);
    for (const f of ["compare.md", "compare.csv", "compare-accuracy-vs-wiring-cost.png"]) assert.ok(existsSync(path.join(dir, f)), f);
  });

  test("one-line errors and a non-zero exit code", async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), "cf-compare-empty-"));
    const r = await cli("compare", empty);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^columnformer: error: .* is not a sweep directory/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  });
});
