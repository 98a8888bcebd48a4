/**
 * Growing the sheet: refine the grid of chosen areas of a trained DENSE model by an integer
 * factor f (each column of a w x w area becomes the f x f block of columns it covers in a
 * (f w) x (f w) area), then continue training the bigger sheet.
 *
 * Copy rule: every new column copies its PARENT (the old column it refines; columns of areas
 * that do not grow are their own parent). Untied leaves (one slice per column) are gathered
 * along the column axis with the parent map; tied leaves, the front end and the readouts
 * (the output area never grows) are unchanged; the learned initial state and learned positions
 * are gathered too. The dense attention bias becomes
 *
 *   bias_new[i, j] = bias_old[parent(i), parent(j)] - log(copies(parent(j)))
 *
 * so a column's attention on the copies of a source sums to what it gave that source. Copies of a
 * column start with identical states and weights, so they stay identical at every step, and the
 * grown model computes exactly what the old one did (up to float rounding): same output-area
 * states, MIM predictions and logits.
 *
 * Limits: only stacked geometries have areas that can grow (grid and torus have one area, which is
 * the input and output area, tied to the patch grid); the input and output areas never grow;
 * sparse sheets and sheets without an attention bias are refused.
 *
 * Pure parts: {@link planGrow}, {@link growAttentionBias}, {@link gatherColumns}. Arrays:
 * {@link growParams}. I/O: {@link writeGrownRun}, {@link growRun}.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { readSafetensors } from "../io/safetensors.ts";
import { saveVisionCheckpoint } from "../checkpoint/vision-checkpoint.ts";
import { openDataset } from "../data/index.ts";
import { initEngine } from "../engine/engine.ts";
import { numpy as np, tree } from "../engine/jax.ts";
import { areaByName, type Geometry, type GeometrySpec } from "../geometry/index.ts";
import { connectivityK, resolveSheetConfig, type SheetConfig } from "../model/config.ts";
import { leafAt, treeFromLeaves } from "../model/param-spec.ts";
import { type VisionConfig, type VisionLayout, type VisionParams, visionParamSpecs } from "../model/vision.ts";
import { applyOverrides, parseOverride } from "../io/overrides.ts";
import { parseTrainConfig, type TrainConfig } from "../train/config.ts";
import { describeEval, evaluate, type EvalResult } from "../train/evaluate.ts";
import { resolveCheckpointArg } from "./prune.ts";
import { createRunDir, runDirPaths, writeJsonAtomic } from "../train/run-dir.ts";
import { disposeSession } from "../train/session.ts";
import { loadTrainedModel, type TrainedModel } from "../train/trained-model.ts";
import { trainToCompletion } from "../train/trainer.ts";

// ---------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------

/** How a sheet grows: the new geometry spec and where every new column comes from. */
export interface GrowPlan {
  factor: number;
  /** Names of the areas that grow. */
  areas: string[];
  /** The grown geometry's spec (stacked: the grown areas' widths times the factor). */
  spec: GeometrySpec;
  oldColumns: number;
  newColumns: number;
  /** parent[i]: the old column that new column i copies, Int32Array [newColumns]. */
  parent: Int32Array;
  /** copies[j]: how many new columns copy old column j (f * f in a grown area, else 1), Int32Array [oldColumns]. */
  copies: Int32Array;
}

/** The input and output area names of a vision model on a geometry (defaults: first and last area). */
export function ioAreas(geometry: Geometry, vision: Pick<VisionConfig, "input_area" | "output_area">): { input: string; output: string } {
  const input = vision.input_area ? areaByName(geometry, vision.input_area).name : geometry.areas[0].name;
  const output = vision.output_area ? areaByName(geometry, vision.output_area).name : geometry.areas[geometry.areas.length - 1].name;
  return { input, output };
}

/**
 * Plan growing `geometry` by `factor`: `areas` names the areas to grow (default: every area that
 * is neither the input nor the output area). One-line errors: factor < 2 or not an integer, a
 * grid / torus (one area, tied to the patch grid), a sphere / custom geometry, the input or output
 * area, an unknown area, nothing to grow.
 */
export function planGrow(
  geometry: Geometry,
  vision: Pick<VisionConfig, "input_area" | "output_area">,
  factor: number,
  areas?: readonly string[] | null,
): GrowPlan {
  if (!Number.isInteger(factor) || factor < 2) throw new Error(`grow: --factor must be an integer >= 2, got ${factor}`);
  const spec = geometry.spec;
  if (spec.kind === "grid" || spec.kind === "torus") {
    throw new Error(
      `grow: a ${spec.kind} geometry has one area ("${geometry.areas[0].name}", ${spec.height}x${spec.width}), which is both the input and the output area; ` +
        `its grid must equal the patch grid, so growing it would change the patch grid. Use a stacked geometry (e.g. widths [7, 7, 7]) whose middle areas can grow`,
    );
  }
  if (spec.kind !== "stacked") {
    throw new Error(`grow: only stacked geometries (and grid / torus, which cannot grow) are supported, got a ${spec.kind} geometry`);
  }
  const io = ioAreas(geometry, vision);
  let chosen: string[];
  if (areas && areas.length > 0) {
    chosen = [];
    for (const name of areas) {
      areaByName(geometry, name); // throws naming the available areas
      if (name === io.input || name === io.output) {
        const role = name === io.input && name === io.output ? "input and output" : name === io.input ? "input" : "output";
        throw new Error(`grow: area "${name}" is the ${role} area; its grid is tied to the patch grid (and the readout), so it cannot grow; choose other areas`);
      }
      if (chosen.includes(name)) throw new Error(`grow: --areas lists "${name}" twice`);
      chosen.push(name);
    }
  } else {
    chosen = geometry.areas.map((a) => a.name).filter((name) => name !== io.input && name !== io.output);
    if (chosen.length === 0) {
      throw new Error(`grow: every area of this geometry is the input or the output area (tied to the patch grid); add areas between them (stacked widths [w, w2, w]) to grow`);
    }
  }
  const widths = spec.widths.map((w, a) => (chosen.includes(geometry.areas[a].name) ? w * factor : w));
  const newColumns = widths.reduce((s, w) => s + w * w, 0);
  const parent = new Int32Array(newColumns);
  const copies = new Int32Array(geometry.numColumns);
  let start = 0;
  let oldStart = 0;
  spec.widths.forEach((w, a) => {
    const f = chosen.includes(geometry.areas[a].name) ? factor : 1;
    const nw = w * f;
    for (let r = 0; r < nw; r++) {
      for (let c = 0; c < nw; c++) {
        const p = oldStart + Math.floor(r / f) * w + Math.floor(c / f);
        parent[start + r * nw + c] = p;
        copies[p]++;
      }
    }
    start += nw * nw;
    oldStart += w * w;
  });
  return { factor, areas: chosen, spec: { ...spec, widths }, oldColumns: geometry.numColumns, newColumns, parent, copies };
}

/**
 * Gather `data` (row-major, shape `shape`) along `axis` with `parent`: out[..., i, ...] =
 * data[..., parent[i], ...]. Returns the new data and shape.
 */
export function gatherColumns(data: ArrayLike<number>, shape: readonly number[], axis: number, parent: Int32Array): { data: Float32Array; shape: number[] } {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const m = parent.length;
  const out = new Float32Array(outer * m * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < m; i++) {
      const src = (o * n + parent[i]) * inner;
      const dst = (o * m + i) * inner;
      for (let t = 0; t < inner; t++) out[dst + t] = data[src + t];
    }
  }
  const newShape = [...shape];
  newShape[axis] = m;
  return { data: out, shape: newShape };
}

/**
 * The grown dense attention bias: `bias` is [blocks, N_old, N_old] (flat); returns
 * [blocks, N_new, N_new] with entry (i, j) = bias[parent(i), parent(j)] - log(copies(parent(j))).
 */
export function growAttentionBias(bias: ArrayLike<number>, parent: Int32Array, copies: Int32Array): Float32Array {
  const n = copies.length;
  const m = parent.length;
  if (bias.length % (n * n) !== 0) throw new Error(`growAttentionBias: ${bias.length} values is not a multiple of N * N = ${n * n}`);
  const blocks = bias.length / (n * n);
  const logCopies = Array.from(copies, (c) => Math.log(c));
  const out = new Float32Array(blocks * m * m);
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < m; i++) {
      const row = b * n * n + parent[i] * n;
      const dst = b * m * m + i * m;
      for (let j = 0; j < m; j++) out[dst + j] = bias[row + parent[j]] - logCopies[parent[j]];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Arrays
// ---------------------------------------------------------------------------

/** Refuse models whose outputs growing cannot preserve: sparse sheets, no attention bias. */
export function checkGrowable(sheet: SheetConfig): void {
  if (connectivityK(sheet) !== null) {
    throw new Error(`grow: the sheet is sparse (connectivity ${sheet.connectivity!.kind}); growing sparse sheets is not supported yet (future work): grow the dense model, then prune`);
  }
  if (!sheet.attn_bias) {
    throw new Error(`grow: the model has no attention bias (sheet.attn_bias false), so the copies of a column would together get more attention than it did and the outputs would change; growing needs the bias`);
  }
}

async function hostData(a: np.Array): Promise<Float32Array> {
  const d = await a.ref.data();
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

async function gatherArray(a: np.Array, axis: number, plan: GrowPlan, what: string): Promise<np.Array> {
  if (a.shape[axis] !== plan.oldColumns) throw new Error(`grow: ${what} is [${a.shape.join(", ")}], expected ${plan.oldColumns} columns on axis ${axis}`);
  const g = gatherColumns(await hostData(a), a.shape, axis, plan.parent);
  return np.array(g.data).reshape(g.shape);
}

/**
 * The grown parameters of a dense vision model (new arrays; borrows `params`), leaf by leaf from
 * its parameter specs: a leaf with a column axis (untied sheet leaves, the learned initial state,
 * positions) gathered along it, the attention bias by {@link growAttentionBias}, everything else
 * a new reference to the old array.
 */
export async function growParams(params: VisionParams, sheet: SheetConfig, vision: VisionConfig, layout: VisionLayout, plan: GrowPlan): Promise<VisionParams> {
  checkGrowable(sheet);
  if (sheet.num_columns !== plan.oldColumns) throw new Error(`grow: the sheet has ${sheet.num_columns} columns but the plan is for ${plan.oldColumns}`);
  const grown: [string, np.Array][] = [];
  for (const spec of visionParamSpecs(sheet, vision, layout)) {
    const leaf = leafAt(params, spec.path);
    if (!(leaf instanceof np.Array)) throw new Error(`grow: the parameters have no ${spec.path}`);
    if (spec.path === "sheet.attn.attn_bias") {
      const bias = growAttentionBias(await hostData(leaf), plan.parent, plan.copies);
      grown.push([spec.path, np.array(bias).reshape([...leaf.shape.slice(0, -2), plan.newColumns, plan.newColumns])]);
    } else grown.push([spec.path, spec.columnAxis === null ? leaf.ref : await gatherArray(leaf, spec.columnAxis, plan, spec.path)]);
  }
  return treeFromLeaves(grown) as unknown as VisionParams;
}

// ---------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------

/** Default training steps after growing: a quarter of the original run's (at least 1). */
export function defaultGrowSteps(config: TrainConfig): number {
  return Math.max(1, Math.round(config.steps / 4));
}

/** What one grown run directory holds, before training. */
export interface GrownRun {
  root: string;
  config: TrainConfig;
  /** `<root>/init.safetensors`: the grown parameters (step 0). */
  checkpoint: string;
  plan: GrowPlan;
}

/**
 * Grow `model` by `factor` (areas: see {@link planGrow}) and write the run directory `root`:
 * `config.json` (the model's training config with `--set` overrides, the grown geometry and
 * `steps`) and `init.safetensors` (the grown parameters, step 0). An existing init.safetensors is
 * kept when its metadata `grow` (factor, areas, provenance) matches, else refused.
 */
export async function writeGrownRun(
  model: TrainedModel,
  root: string,
  options: { factor: number; areas?: string[] | null; steps: number; overrides?: string[]; provenance?: Record<string, unknown> },
): Promise<GrownRun> {
  const { session, checkpoint } = model;
  const sheet = session.sheet;
  checkGrowable(sheet);
  const plan = planGrow(session.geometry, session.vision, options.factor, options.areas);
  root = path.resolve(root);

  const base = JSON.parse(JSON.stringify(model.config)) as Record<string, unknown>;
  const raw = applyOverrides(base, (options.overrides ?? []).map(parseOverride)) as { sheet: Record<string, unknown>; steps?: number };
  // the grown geometry: another kind of geometry from --set would be replaced here, so compare below
  const setSheet = raw.sheet;
  raw.sheet = { ...setSheet, geometry: plan.spec };
  if (raw.sheet.num_columns !== undefined) raw.sheet.num_columns = plan.newColumns;
  raw.steps = options.steps > 0 ? options.steps : defaultGrowSteps(model.config);
  const config = parseTrainConfig(raw);
  const { config: newSheet, geometry } = resolveSheetConfig(config.sheet);
  const expected: SheetConfig = { ...sheet, geometry: plan.spec, num_columns: plan.newColumns };
  const same = (a: unknown, b: unknown) => isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));
  if (!same(newSheet, expected) || !same(config.vision, model.config.vision) || !same(setSheet.geometry, model.config.sheet.geometry)) {
    throw new Error(`grow: --set must not change the model (sheet or vision fields): the grown parameters are copies of the trained ones`);
  }

  await mkdir(root, { recursive: true });
  const init = runDirPaths(root).initPath;
  const provenance = JSON.stringify({ factor: plan.factor, areas: plan.areas, ...(options.provenance ?? {}) });
  await createRunDir(root, config); // refuses a directory holding a different run
  if (existsSync(init)) {
    const stored = (await readSafetensors(init)).metadata.grow;
    if (stored !== provenance) {
      throw new Error(`${init} holds a model grown differently (${stored ?? "no grow metadata"}; now ${provenance}); choose another --out or delete that run`);
    }
  } else {
    const grown = await growParams(checkpoint.params, sheet, session.vision, session.layout, plan);
    try {
      const meta = { step: "0", train_config: JSON.stringify(config), grow: provenance };
      await saveVisionCheckpoint(init, newSheet, session.vision, geometry, grown, meta);
    } finally {
      tree.dispose(grown);
    }
  }
  return { root, config, checkpoint: init, plan };
}

/** grow.json. */
export interface GrowResult {
  source: string;
  factor: number;
  areas: string[];
  geometry_before: GeometrySpec;
  geometry_after: GeometrySpec;
  num_columns_before: number;
  num_columns_after: number;
  task: "mim" | "classify";
  metric: "mim_loss" | "accuracy";
  eval_images: number;
  run_dir: string;
  /** Held-out metrics of the source model, of the grown model before training (they agree), after training (null with steps 0). */
  before: EvalResult;
  grown: EvalResult;
  trained: EvalResult | null;
  steps: number;
}

/** Options of {@link growRun}. */
export interface GrowOptions {
  factor: number;
  /** Areas to grow (default: all but the input and output area). */
  areas?: string[] | null;
  /** Training steps after growing; 0: only grow and evaluate. Default {@link defaultGrowSteps}. */
  steps?: number;
  overrides?: string[];
  verbose?: boolean;
}

/**
 * Grow the model in `source` (a checkpoint or run directory) into the run directory `out`,
 * evaluate the source and the grown model, train `steps` steps (resuming a run interrupted before)
 * and write `out/grow.json`.
 */
export async function growRun(source: string, out: string, options: GrowOptions): Promise<GrowResult> {
  await initEngine();
  const verbose = options.verbose ?? true;
  const say = (line: string) => verbose && process.stderr.write(`${line}\n`);
  const ckptPath = resolveCheckpointArg(source);
  const model = await loadTrainedModel(ckptPath);
  let run: GrownRun;
  let before: EvalResult;
  let steps: number;
  const { config } = model;
  try {
    checkGrowable(model.session.sheet);
    planGrow(model.session.geometry, model.session.vision, options.factor, options.areas); // errors before anything is written
    steps = options.steps ?? defaultGrowSteps(config);
    if (!Number.isInteger(steps) || steps < 0) throw new Error(`--steps must be an integer >= 0, got ${steps}`);
    run = await writeGrownRun(model, out, {
      factor: options.factor,
      areas: options.areas,
      steps,
      overrides: options.overrides,
      provenance: { source: path.resolve(ckptPath), source_step: model.checkpoint.step },
    });
    say(`grow: ${model.session.sheet.num_columns} -> ${run.plan.newColumns} columns (areas ${run.plan.areas.join(", ")} x${run.plan.factor}), run ${run.root}`);
    before = await evaluate(model.session, model.checkpoint.params, await openDataset(config.data, "test"), config.eval_images);
  } finally {
    tree.dispose(model.checkpoint.params);
    disposeSession(model.session);
  }
  const grownModel = await loadTrainedModel(run.checkpoint);
  let grown: EvalResult;
  try {
    grown = await evaluate(grownModel.session, grownModel.checkpoint.params, await openDataset(config.data, "test"), config.eval_images);
  } finally {
    tree.dispose(grownModel.checkpoint.params);
    disposeSession(grownModel.session);
  }
  say(`before growing: ${describeEval(before)}; grown (before training): ${describeEval(grown)}`);
  let trained: EvalResult | null = null;
  if (steps > 0) {
    const summary = await trainToCompletion(run.config, run.root, { verbose });
    trained = summary.final;
    say(`after ${steps} steps: ${describeEval(trained)}`);
  }
  const result: GrowResult = {
    source: path.resolve(ckptPath),
    factor: run.plan.factor,
    areas: run.plan.areas,
    geometry_before: config.sheet.geometry as GeometrySpec,
    geometry_after: run.plan.spec,
    num_columns_before: run.plan.oldColumns,
    num_columns_after: run.plan.newColumns,
    task: config.vision.task,
    metric: config.vision.task === "mim" ? "mim_loss" : "accuracy",
    eval_images: config.eval_images,
    run_dir: run.root,
    before,
    grown,
    trained,
    steps,
  };
  await writeJsonAtomic(path.join(run.root, "grow.json"), result);
  return result;
}

/** A few lines comparing the source, the grown and the trained model. */
export function growTable(r: GrowResult): string {
  const f = (e: EvalResult | null) => {
    const v = e?.[r.metric];
    return v === undefined || !Number.isFinite(v) ? "-" : r.metric === "accuracy" ? `${(100 * v).toFixed(2)}%` : v.toFixed(4);
  };
  return [
    `| model | columns | held-out ${r.metric} |`,
    "|---|---:|---:|",
    `| before growing | ${r.num_columns_before} | ${f(r.before)} |`,
    `| grown (x${r.factor}: ${r.areas.join(", ")}) | ${r.num_columns_after} | ${f(r.grown)} |`,
    `| after ${r.steps} steps | ${r.num_columns_after} | ${f(r.trained)} |`,
  ].join("\n");
}


