/**
 * Learned connectivity by pruning: keep, for every column, the K sources it attended to most in
 * a trained model (dense or sparse), and continue training the resulting sparse sheet.
 *
 * Criterion: the mean incoming attention A[i, j] over `images` held-out images (no mask) and
 * over the `depth` steps ({@link meanAttentionMaps}, a sparse model's maps scattered to N x N).
 * Row i keeps the K sources with the largest A[i, j]; ties go to the lower index. The column
 * itself is kept only if it ranks among the K (it is not forced in). Kept sources are listed by
 * rank (largest mean attention first). A sparse model can only keep sources it is connected to
 * (K <= its K); its unconnected sources (attention exactly 0) never rank.
 *
 * The pruned model has the same parameters, except the attention bias, which is gathered from
 * [..., N, N] (dense) or [..., N, K_old] (sparse) onto the kept connections. Its
 * `sheet.connectivity` is `{"kind": "file", "path": <run>/connectivity.json, "k": K}`; the
 * file holds `{"indices": [[...], ...]}` and the indices are also stored in every checkpoint
 * (`sheet.connectivity`), which wins over the file.
 *
 * Pure parts: {@link topKSources}, {@link gatherAttentionBias}. I/O: {@link meanIncomingAttention},
 * {@link writePrunedRun}, {@link pruneCurve}.
 */
import { existsSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { stepMeanMap } from "../analysis/connectivity.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { saveVisionCheckpoint } from "../checkpoint/vision-checkpoint.ts";
import { type ImageDataset, openDataset } from "../data/index.ts";
import { initEngine } from "../engine/engine.ts";
import { distanceMatrix } from "../geometry/metric.ts";
import { numpy as np, tree } from "../engine/jax.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { resolveSheetConfig, type SheetConfig } from "../model/config.ts";
import { connectivityOf, type SheetConnectivity } from "../model/sheet-connectivity.ts";
import type { VisionParams } from "../model/vision.ts";
import { meanAttentionMaps } from "../analysis/collect.ts";
import { attentionMetrics } from "./sweep/run.ts";
import { lineChart } from "../viz/charts.ts";
import { writeFigure } from "../viz/render.ts";
import { applyOverrides, parseOverride } from "../io/overrides.ts";
import { parseTrainConfig, type TrainConfig } from "../train/config.ts";
import { describeEval, evaluate, type EvalResult } from "../train/evaluate.ts";
import { checkpointPath, createRunDir, runDirPaths, writeJsonAtomic } from "../train/run-dir.ts";
import { disposeSession } from "../train/session.ts";
import { loadTrainedModel, type TrainedModel } from "../train/trained-model.ts";
import { trainToCompletion } from "../train/trainer.ts";

// ---------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------

/**
 * Per row i of `scores` [N * N] (row-major; row i = incoming attention of column i), the `k`
 * sources with the largest score, ties by lower index, listed by rank: Int32Array [N * k].
 * `allowed` [N * K_old] (a sparse model's connectivity) restricts row i to its K_old sources.
 * The column itself is kept only if it ranks.
 */
export function topKSources(scores: ArrayLike<number>, n: number, k: number, allowed?: { indices: Int32Array; k: number } | null): Int32Array {
  checkK(k, n, allowed?.k ?? null);
  if (scores.length !== n * n) throw new Error(`topKSources: scores has ${scores.length} entries, expected N * N = ${n * n}`);
  const out = new Int32Array(n * k);
  for (let i = 0; i < n; i++) {
    const candidates = allowed ? Array.from(allowed.indices.subarray(i * allowed.k, (i + 1) * allowed.k)) : Array.from({ length: n }, (_, j) => j);
    const score = (j: number) => {
      const v = scores[i * n + j];
      return Number.isNaN(v) ? -Infinity : v;
    };
    candidates.sort((a, b) => score(b) - score(a) || a - b);
    for (let t = 0; t < k; t++) out[i * k + t] = candidates[t];
  }
  return out;
}

/** Validate K against N columns (and a sparse model's K_old): one line naming the problem. */
export function checkK(k: number, n: number, kOld: number | null = null): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`prune: k must be an integer >= 1, got ${k}`);
  if (k > n) throw new Error(`prune: k is ${k} but the sheet has ${n} columns; k <= ${n}`);
  if (kOld !== null && k > kOld) {
    throw new Error(`prune: k is ${k} but the model is sparse with ${kOld} sources per column; pruning can only keep existing connections (k <= ${kOld})`);
  }
}

/**
 * Gather an attention bias onto the kept connections. `bias` is [blocks, N, W] (flat; blocks = 1
 * for a recurrent sheet, depth for a stack) with W = N (dense: column j at j) or W = K_old
 * (sparse: column `old.indices[i * K_old + t]` at t). Returns [blocks, N, K] with entry (i, t)
 * the old bias of the connection from `kept[i * K + t]`.
 */
export function gatherAttentionBias(
  bias: ArrayLike<number>,
  n: number,
  kept: Int32Array,
  k: number,
  old: { indices: Int32Array; k: number } | null = null,
): Float32Array {
  const width = old ? old.k : n;
  if (bias.length % (n * width) !== 0) throw new Error(`gatherAttentionBias: ${bias.length} values is not a multiple of N * W = ${n * width}`);
  const blocks = bias.length / (n * width);
  const out = new Float32Array(blocks * n * k);
  for (let i = 0; i < n; i++) {
    const position = new Map<number, number>();
    if (old) for (let t = 0; t < old.k; t++) position.set(old.indices[i * old.k + t], t);
    for (let t = 0; t < k; t++) {
      const j = kept[i * k + t];
      const col = old ? position.get(j) : j;
      if (col === undefined) throw new Error(`gatherAttentionBias: column ${i} keeps source ${j}, which it was not connected to`);
      for (let b = 0; b < blocks; b++) out[b * n * k + i * k + t] = bias[b * n * width + i * width + col];
    }
  }
  return out;
}

/** The connectivity file's JSON: `{"indices": [[...], ...]}` (one row of K sources per column). */
export function connectivityJson(indices: Int32Array, n: number, k: number): string {
  const rows = Array.from({ length: n }, (_, i) => `[${Array.from(indices.subarray(i * k, (i + 1) * k)).join(",")}]`);
  return `{"indices": [\n${rows.map((r) => `  ${r}`).join(",\n")}\n]}\n`;
}

/** Parse a `--k` list such as "2,4,8,16" (integers, distinct, ascending order kept as given). */
export function parseKList(text: string): number[] {
  const ks = text.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (ks.length === 0 || ks.some((k) => !Number.isInteger(k))) throw new Error(`--k must be integers separated by commas (e.g. 2,4,8), got "${text}"`);
  if (new Set(ks).size !== ks.length) throw new Error(`--k lists a value twice: "${text}"`);
  for (const k of ks) if (k < 1) throw new Error(`prune: k must be an integer >= 1, got ${k}`);
  return ks;
}

/** Default fine-tuning steps: a quarter of the original run's (at least 1). */
export function defaultPruneSteps(config: TrainConfig): number {
  return Math.max(1, Math.round(config.steps / 4));
}

// ---------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------

/** Mean incoming attention [N * N] over the first `images` images of `ds` and over steps. Borrows the model. */
export async function meanIncomingAttention(model: TrainedModel, ds: ImageDataset, images: number): Promise<{ mean: Float32Array; maps: Float32Array }> {
  const maps = await meanAttentionMaps(model.session, model.checkpoint.params, ds, images);
  return { mean: stepMeanMap(maps, model.session.sheet.num_columns), maps };
}

/** A checkpoint path, or a run directory (its checkpoints/last.safetensors). */
export function resolveCheckpointArg(arg: string): string {
  const run = runDirPaths(arg);
  if (existsSync(arg) && !arg.endsWith(".safetensors") && existsSync(run.configPath)) {
    const last = checkpointPath(run, "last");
    if (!existsSync(last)) throw new Error(`${arg} is a run directory without checkpoints/last.safetensors; train it first`);
    return last;
  }
  if (!existsSync(arg)) throw new Error(`${arg}: no such checkpoint or run directory`);
  if (statSync(arg).isDirectory()) throw new Error(`${arg} is a directory but not a run directory (no config.json); pass a checkpoint or a run directory`);
  return arg;
}

/** What one pruned run directory holds, before training. */
export interface PrunedRun {
  root: string;
  config: TrainConfig;
  /** `<root>/init.safetensors`: the pruned parameters (step 0). */
  checkpoint: string;
  connectivity: SheetConnectivity;
}

/**
 * Build the pruned model of `model` with `k` sources per column chosen from `mean` ([N * N]), and
 * write the run directory `root`: `connectivity.json`, `init.safetensors` (the pruned parameters,
 * step 0) and `config.json` (the model's training config with `--set` overrides, the file
 * connectivity and `steps`). An existing `init.safetensors` is kept when its metadata `prune`
 * (K and `options.provenance`: source checkpoint, its step, criterion images) matches, else refused.
 */
export async function writePrunedRun(
  model: TrainedModel,
  mean: Float32Array,
  k: number,
  root: string,
  options: {
    steps: number;
    overrides?: string[];
    /** Where the model and the criterion came from, stored as checkpoint metadata `prune`; an existing init.safetensors must match it. */
    provenance?: Record<string, unknown>;
  },
): Promise<PrunedRun> {
  const { session, checkpoint } = model;
  const sheet = session.sheet;
  const n = sheet.num_columns;
  if (sheet.learn_positions) throw new Error(`prune: the model learns its column positions; sparse sheets need fixed positions`);
  const old = session.connectivity ? { indices: session.connectivity.indices, k: session.connectivity.k } : null;
  const kept = topKSources(mean, n, k, old);
  root = path.resolve(root);
  await mkdir(root, { recursive: true });
  const connPath = path.join(root, "connectivity.json");
  const spec = { kind: "file" as const, path: connPath, k };

  // the new training config: the old one, overrides, then the sparse connectivity and steps
  const base = JSON.parse(JSON.stringify(model.config)) as Record<string, unknown>;
  const raw = applyOverrides(base, (options.overrides ?? []).map(parseOverride)) as { sheet: Record<string, unknown>; steps?: number };
  raw.sheet = { ...raw.sheet, connectivity: spec };
  // --steps 0: no training now; config.json gets the default fine-tuning steps for a later `train --resume`
  raw.steps = options.steps > 0 ? options.steps : defaultPruneSteps(model.config);
  const config = parseTrainConfig(raw);
  const newSheet: SheetConfig = { ...sheet, connectivity: spec };
  const resolvedNew = resolveSheetConfig(config.sheet).config;
  const same = (a: unknown, b: unknown) => isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));
  if (!same(resolvedNew, newSheet) || !same(config.vision, model.config.vision)) {
    throw new Error(`prune: --set must not change the model (sheet or vision fields): the pruned parameters are the trained ones`);
  }

  const connectivity: SheetConnectivity = connectivityOf(session.geometry, kept, k);
  const init = runDirPaths(root).initPath;
  const provenance = JSON.stringify({ k, ...(options.provenance ?? {}) });
  await createRunDir(root, config); // refuses a directory holding a different run before anything is written
  if (existsSync(init)) {
    const stored = (await readSafetensors(init)).metadata.prune;
    if (stored !== provenance) {
      throw new Error(`${init} holds a model pruned differently (${stored ?? "no prune metadata"}; now ${provenance}); choose another --out or delete that run`);
    }
  }
  await writeFileAtomic(connPath, connectivityJson(kept, n, k));
  if (!existsSync(init)) {
    const params = checkpoint.params;
    let bias: np.Array | undefined;
    if (params.sheet.attn.attn_bias) {
      const b = params.sheet.attn.attn_bias;
      const lead = b.shape.slice(0, -2);
      const host = (await b.ref.data()) as Float32Array;
      bias = np.array(gatherAttentionBias(host, n, kept, k, old)).reshape([...lead, n, k]);
    }
    const pruned = { ...params, sheet: { ...params.sheet, attn: { ...params.sheet.attn, attn_bias: bias } } } as VisionParams;
    if (!bias) delete (pruned.sheet.attn as { attn_bias?: np.Array }).attn_bias;
    const meta = { step: "0", train_config: JSON.stringify(config), prune: provenance };
    try {
      await saveVisionCheckpoint(init, newSheet, session.vision, session.geometry, pruned, meta, connectivity);
    } finally {
      bias?.dispose();
    }
  }
  return { root, config, checkpoint: init, connectivity };
}

/** One row of the pruning curve. */
export interface PruneRow {
  k: number;
  /** 1 - K / N. */
  sparsity: number;
  run_dir: string;
  /** Held-out metrics of the pruned model before fine-tuning (config.eval_images images). */
  pruned: EvalResult;
  /** After fine-tuning (null with --steps 0). */
  finetuned: EvalResult | null;
  /** L1 wiring cost (p 1, d / mean d over all pairs) and mean attention distance of the mean attention on the criterion images. */
  pruned_attention: { wiring_cost: number; mean_distance: number };
  finetuned_attention: { wiring_cost: number; mean_distance: number } | null;
  steps: number;
}

/** prune.json. */
export interface PruneResult {
  source: string;
  task: "mim" | "classify";
  /** "mim_loss" (lower is better) or "accuracy". */
  metric: "mim_loss" | "accuracy";
  num_columns: number;
  /** K of a sparse source model, null for a dense one. */
  source_k: number | null;
  criterion: { images: number; split: string };
  eval_images: number;
  dense: { eval: EvalResult; attention: { wiring_cost: number; mean_distance: number } };
  rows: PruneRow[];
}

/** Options of {@link pruneCurve}. */
export interface PruneOptions {
  ks: number[];
  /** Fine-tuning steps per K; 0: only prune and evaluate. Default {@link defaultPruneSteps}. */
  steps?: number;
  /** Images for the criterion (default 500), the first ones of `split` (default "test"). */
  images?: number;
  split?: "train" | "test";
  overrides?: string[];
  verbose?: boolean;
}

/**
 * Prune the model in `source` (a checkpoint or run directory) to each K, fine-tune and evaluate.
 * One K: `out` is the run directory; several: `out/k-<K>/`. Writes `out/prune.json`,
 * `out/prune.csv` and `out/prune-curve.svg/.png` (atomically) and returns the result. Each run
 * directory resumes: a finished run (summary.json for its steps) is only measured, one with
 * checkpoints/last resumes, else training starts from its init.safetensors.
 */
export async function pruneCurve(source: string, out: string, options: PruneOptions): Promise<PruneResult> {
  await initEngine();
  const verbose = options.verbose ?? true;
  const say = (line: string) => verbose && process.stderr.write(`${line}\n`);
  const ckptPath = resolveCheckpointArg(source);
  const model = await loadTrainedModel(ckptPath);
  const runs: PruneRow[] = [];
  let result: PruneResult;
  try {
    const { session, config } = model;
    const n = session.sheet.num_columns;
    const sourceK = session.connectivity?.k ?? null;
    for (const k of options.ks) checkK(k, n, sourceK);
    if (session.sheet.learn_positions) throw new Error(`prune: the model learns its column positions; sparse sheets need fixed positions`);
    const steps = options.steps ?? defaultPruneSteps(config);
    if (!Number.isInteger(steps) || steps < 0) throw new Error(`--steps must be an integer >= 0, got ${steps}`);
    const images = options.images ?? 500;
    const split = options.split ?? "test";
    const criterionSet = await openDataset(config.data, split);
    const testSet = await openDataset(config.data, "test");
    const metric = config.vision.task === "mim" ? "mim_loss" : "accuracy";
    const distances = distanceMatrix(session.geometry);

    say(`prune: mean attention of ${ckptPath} over ${images} ${split} images`);
    const { mean, maps } = await meanIncomingAttention(model, criterionSet, images);
    const denseAttention = metrics(attentionMetrics(maps, distances, n));
    const denseEval = await evaluate(session, model.checkpoint.params, testSet, config.eval_images);
    say(`unpruned: ${describeEval(denseEval)}`);

    for (const k of options.ks) {
      const root = options.ks.length === 1 ? path.resolve(out) : path.join(path.resolve(out), `k-${k}`);
      const provenance = { source: path.resolve(ckptPath), source_step: model.checkpoint.step, images, split };
      const run = await writePrunedRun(model, mean, k, root, { steps, overrides: options.overrides, provenance });
      const pruned = await measure(run.checkpoint, config.eval_images, criterionSet, images, distances);
      say(`k ${k}: after pruning ${describeEval(pruned.eval)}`);
      let finetuned: { eval: EvalResult; attention: PruneRow["pruned_attention"] } | null = null;
      if (steps > 0) {
        const summary = await trainToCompletion(run.config, run.root, { verbose });
        const last = await measure(checkpointPath(runDirPaths(run.root), "last"), 0, criterionSet, images, distances);
        finetuned = { eval: summary.final, attention: last.attention };
        say(`k ${k}: after ${steps} fine-tuning steps ${describeEval(summary.final)}`);
      }
      runs.push({
        k,
        sparsity: 1 - k / n,
        run_dir: run.root,
        pruned: pruned.eval,
        finetuned: finetuned?.eval ?? null,
        pruned_attention: pruned.attention,
        finetuned_attention: finetuned?.attention ?? null,
        steps,
      });
    }
    result = {
      source: path.resolve(ckptPath),
      task: config.vision.task,
      metric,
      num_columns: n,
      source_k: sourceK,
      criterion: { images, split },
      eval_images: config.eval_images,
      dense: { eval: denseEval, attention: denseAttention },
      rows: runs,
    };
  } finally {
    tree.dispose(model.checkpoint.params);
    disposeSession(model.session);
  }
  await writePruneOutputs(out, result);
  return result;
}

function metrics(m: { wiringCost: number; meanDistance: number }): { wiring_cost: number; mean_distance: number } {
  return { wiring_cost: m.wiringCost, mean_distance: m.meanDistance };
}


/** Evaluate a checkpoint (evalImages > 0) and measure its mean attention on the criterion images. */
async function measure(
  ckpt: string,
  evalImages: number,
  criterionSet: ImageDataset,
  images: number,
  distances: ArrayLike<number>,
): Promise<{ eval: EvalResult; attention: PruneRow["pruned_attention"] }> {
  const model = await loadTrainedModel(ckpt);
  try {
    const n = model.session.sheet.num_columns;
    const maps = await meanAttentionMaps(model.session, model.checkpoint.params, criterionSet, images);
    const attention = metrics(attentionMetrics(maps, distances, n));
    const result = evalImages > 0 ? await evaluate(model.session, model.checkpoint.params, await openDataset(model.config.data, "test"), evalImages) : { images: 0 };
    return { eval: result, attention };
  } finally {
    tree.dispose(model.checkpoint.params);
    disposeSession(model.session);
  }
}


// ---------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------

/** The task metric of an evaluation (MIM loss or accuracy), NaN when missing. */
function metricOf(r: EvalResult | null, metric: PruneResult["metric"]): number {
  return r?.[metric] ?? NaN;
}

/** prune.csv: one line per K (and K = N "dense" first). */
export function pruneCsv(r: PruneResult): string {
  const m = r.metric;
  const header = ["k", "sparsity", "kept_fraction", `${m}_pruned`, `${m}_finetuned`, "wiring_cost_pruned", "wiring_cost_finetuned", "mean_distance_pruned", "mean_distance_finetuned", "eval_wiring_cost_finetuned", "steps"];
  const num = (v: number | undefined | null) => (v === undefined || v === null || !Number.isFinite(v) ? "" : String(v));
  const lines = [header.join(",")];
  const d = r.dense;
  lines.push(["dense", "0", "1", num(metricOf(d.eval, m)), "", num(d.attention.wiring_cost), "", num(d.attention.mean_distance), "", "", "0"].join(","));
  for (const row of r.rows) {
    lines.push(
      [
        row.k,
        num(row.sparsity),
        num(row.k / r.num_columns),
        num(metricOf(row.pruned, m)),
        num(metricOf(row.finetuned, m)),
        num(row.pruned_attention.wiring_cost),
        num(row.finetuned_attention?.wiring_cost),
        num(row.pruned_attention.mean_distance),
        num(row.finetuned_attention?.mean_distance),
        num(row.finetuned?.wiring_cost),
        row.steps,
      ].join(","),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** A Markdown table of the curve. */
export function pruneTable(r: PruneResult): string {
  const m = r.metric;
  const f = (v: number) => (!Number.isFinite(v) ? "-" : m === "accuracy" ? `${(100 * v).toFixed(2)}%` : v.toFixed(4));
  const g = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(3));
  const lines = [
    `| K | sparsity | ${m} after pruning | ${m} after fine-tuning | wiring (pruned / tuned) | mean distance (pruned / tuned) |`,
    "|---:|---:|---:|---:|---:|---:|",
    `| ${r.num_columns} (unpruned) | 0 | ${f(metricOf(r.dense.eval, m))} | - | ${g(r.dense.attention.wiring_cost)} | ${g(r.dense.attention.mean_distance)} |`,
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.k} | ${row.sparsity.toFixed(3)} | ${f(metricOf(row.pruned, m))} | ${f(metricOf(row.finetuned, m))} | ` +
        `${g(row.pruned_attention.wiring_cost)} / ${g(row.finetuned_attention?.wiring_cost)} | ${g(row.pruned_attention.mean_distance)} / ${g(row.finetuned_attention?.mean_distance)} |`,
    );
  }
  return lines.join("\n");
}

/** The curve's SVG: task metric against log2 K, lines after pruning / after fine-tuning / unpruned. */
export function pruneCurveSvg(r: PruneResult): string {
  const m = r.metric;
  const rows = [...r.rows].sort((a, b) => a.k - b.k);
  const x = rows.map((row) => Math.log2(row.k));
  const series = [
    { name: "after pruning", x, y: rows.map((row) => metricOf(row.pruned, m)) },
    ...(rows.some((row) => row.finetuned) ? [{ name: "after fine-tuning", x, y: rows.map((row) => metricOf(row.finetuned, m)) }] : []),
    { name: `unpruned (K = N = ${r.num_columns})`, x: x.length > 1 ? [x[0], x[x.length - 1]] : [x[0] - 0.5, x[0] + 0.5], y: [1, 1].map(() => metricOf(r.dense.eval, m)) },
  ];
  return lineChart({
    title: `Pruning to K sources per column (N = ${r.num_columns})`,
    xLabel: "log2 K (K = sources kept per column)",
    yLabel: m === "mim_loss" ? "held-out MIM loss" : "held-out accuracy",
    series,
  });
}

/** Write prune.json, prune.csv and prune-curve.svg/.png in `out` (atomically). */
export async function writePruneOutputs(out: string, r: PruneResult): Promise<void> {
  await mkdir(out, { recursive: true });
  await writeJsonAtomic(path.join(out, "prune.json"), r);
  await writeFileAtomic(path.join(out, "prune.csv"), pruneCsv(r));
  await writeFigure(path.join(out, "prune-curve"), pruneCurveSvg(r));
}
