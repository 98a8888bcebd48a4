/**
 * `npm run bench`: run every benchmark, print an environment header and a
 * results table, and write everything to .bench/results.json (git-ignored).
 *
 * Env: BENCH_REPEATS (timed repeats per measurement, default 7);
 * COLUMNFORMER_THREADS (Wasm worker threads, see src/engine/node-globals.ts).
 * To add a benchmark, write a sibling file exporting an async function that
 * returns BenchResult[] and append it to BENCHMARKS below.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { initEngine } from "../src/engine/engine.ts";
import type { Benchmark, BenchResult } from "./harness.ts";
import { describeEnvironment, formatTable, repeatsFromEnv, round, RssSampler } from "./harness.ts";
import { benchSheet } from "./sheet.ts";
import { benchNativeSheet } from "./native-sheet.ts";
import { benchTrainStep, formatTrainStepComparison } from "./train-step.ts";
import { benchAnalysis } from "./analysis.ts";

/** The benchmarks `npm run bench` runs, in order. */
const BENCHMARKS: Benchmark[] = [
  { name: "sheet", run: (ctx) => benchSheet(ctx) },
  { name: "native sheet", run: (ctx) => benchNativeSheet(ctx) },
  { name: "train step", run: (ctx) => benchTrainStep(ctx) },
  { name: "analysis", run: (ctx) => benchAnalysis(ctx) },
];

/** Where the JSON results go. */
const RESULTS_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", ".bench", "results.json");

async function main(): Promise<void> {
  const repeats = repeatsFromEnv();
  const overall = new RssSampler().start();
  const info = await initEngine();
  const env = describeEnvironment(info);

  console.log("columnformer benchmarks");
  console.log(`  engine   ${env.engine} ${env.engineVersion} (device ${env.device}, ${env.threads} worker threads)`);
  console.log(`  node     ${env.node} (${env.platform})`);
  console.log(`  cpu      ${env.cpuModel} x ${env.cpuCores} cores (load average ${env.loadAverage1m.toFixed(2)} at start)`);
  console.log(
    `  timing   "compile" = first call (trace + jit compile + one run); then 1 warm-up and median/min/max of ${repeats} repeats`,
  );
  console.log(`  flops    per call, analytic: multiply-add = 2 FLOPs, matmuls only; forward+backward = 3 x forward`);
  console.log("");

  const started = Date.now();
  const results: BenchResult[] = [];
  try {
    for (const bench of BENCHMARKS) {
      results.push(
        ...(await bench.run({ repeats, onStart: (name) => process.stderr.write(`  running ${name} ...\n`) })),
      );
      overall.sample();
    }
  } finally {
    overall.stop();
  }
  const totalSeconds = (Date.now() - started) / 1000;

  const table = formatTable(
    [
      "benchmark",
      "compile ms",
      "median ms",
      "min ms",
      "max ms",
      "GFLOP",
      "GFLOP/s med",
      "GFLOP/s best",
      "peak RSS MiB",
      "RSS drift MiB",
    ],
    results.map((r) => [
      r.name,
      r.firstCallMs.toFixed(0),
      r.medianMs.toFixed(1),
      r.minMs.toFixed(1),
      r.maxMs.toFixed(1),
      (r.flops / 1e9).toFixed(2),
      r.gflopsPerSecMedian.toFixed(2),
      r.gflopsPerSecBest.toFixed(2),
      r.peakRssMiB.toFixed(0),
      (r.rssAfterRepeatsMiB - r.rssAfterWarmupMiB).toFixed(1),
    ]),
  );
  console.log("");
  console.log(table);
  console.log("");
  for (const line of formatTrainStepComparison(results)) console.log(line);
  const loadAtEnd = os.loadavg()[0];
  console.log(
    `peak RSS ${overall.peakMiB.toFixed(0)} MiB over the whole run; total ${totalSeconds.toFixed(1)} s; ` +
      `load average ${loadAtEnd.toFixed(2)} at end`,
  );
  console.log("RSS drift = RSS after the last repeat minus after the warm-up (a steady rise would suggest a leak)");

  mkdirSync(path.dirname(RESULTS_PATH), { recursive: true });
  const json = {
    date: new Date().toISOString(),
    environment: env,
    repeats,
    totalSeconds: round(totalSeconds, 2),
    loadAverage1mAtEnd: round(loadAtEnd, 2),
    peakRssMiB: round(overall.peakMiB),
    results: results.map((r) => ({
      ...r,
      firstCallMs: round(r.firstCallMs, 2),
      timesMs: r.timesMs.map((t) => round(t, 2)),
      medianMs: round(r.medianMs, 2),
      minMs: round(r.minMs, 2),
      maxMs: round(r.maxMs, 2),
      gflopsPerSecMedian: round(r.gflopsPerSecMedian, 3),
      gflopsPerSecBest: round(r.gflopsPerSecBest, 3),
      peakRssMiB: round(r.peakRssMiB),
      rssAfterWarmupMiB: round(r.rssAfterWarmupMiB),
      rssAfterRepeatsMiB: round(r.rssAfterRepeatsMiB),
    })),
  };
  writeFileSync(RESULTS_PATH, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), RESULTS_PATH)}`);
}

await main();
