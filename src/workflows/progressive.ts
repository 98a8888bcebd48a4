/**
 * Progressive training: a schedule of phases (train, prune to K, grow the sheet) in one file,
 * each phase an ordinary run directory `<out>/<i>-<kind>` chained to the previous one.
 *
 * ```yaml
 * name: tiny-progressive        # default out dir: runs/progressive/<name>
 * preset: tiny                  # optional starting preset
 * base: { optim: { lr: 0.002 } }  # optional inline config, deep-merged over the preset
 * set: { "vision.task": classify }   # dotted overrides, as in sweep files
 * phases:
 *   - train: { steps: 200 }                 # the first phase must train (from scratch)
 *   - grow: { factor: 2 }                   # areas?: [area1]
 *   - train: { steps: 100, set: { "optim.lr": 0.001 } }
 *   - prune: { k: 16 }                      # steps? (fine-tuning, default 0), images?, split?
 *   - train: { steps: 100 }
 * ```
 *
 * A later train phase starts from the previous phase's final parameters (its
 * `checkpoints/last.safetensors`, or `init.safetensors` of a prune / grow phase that did not
 * train) through {@link TrainOptions.initFrom}, with the previous phase's config.json (grown
 * geometry, sparse connectivity) plus its own `steps` and `set` (which must not touch `sheet` or
 * `vision`). Prune and grow phases call {@link pruneCurve} (one K: the phase dir is the run dir,
 * finished when it holds prune.json, and summary.json when it fine-tunes) and {@link growRun}
 * (steps 0; finished when it holds grow.json). A train phase is finished when its run directory
 * is (summary.json of its steps, see {@link runDirState}); an interrupted one resumes from its
 * newest complete checkpoint. `<out>/progressive.json`
 * records the plan and every phase's status and held-out metric (written atomically); rerunning
 * with a different plan into the same out dir is refused.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { readConfigFile } from "../io/config-file.ts";
import { loadVisionCheckpoint } from "../checkpoint/vision-checkpoint.ts";
import { countParameters } from "../engine/param-tree.ts";
import { initEngine } from "../engine/engine.ts";
import { tree } from "../engine/jax.ts";
import { buildGeometry, type Geometry, type GeometrySpec } from "../geometry/index.ts";
import { connectivityK, resolveSheetConfig } from "../model/config.ts";
import { visionLayout } from "../model/vision.ts";
import { applyOverrides, mergeConfig } from "../io/overrides.ts";
import { formatSchemaError } from "../io/schema-errors.ts";
import { parseTrainConfig, type TrainConfig } from "../train/config.ts";
import type { EvalResult } from "../train/evaluate.ts";
import { checkGrowable, growRun, type GrowResult, planGrow } from "./grow.ts";
import { PRESETS, type PresetName } from "../train/presets.ts";
import { checkK, pruneCurve, type PruneResult } from "./prune.ts";
import { checkpointPath, runDirPaths, writeJsonAtomic } from "../train/run-dir.ts";
import { runDirState } from "../train/run-state.ts";
import type { TrainSummary } from "../train/run-state.ts";
import { resume, train, type TrainOptions } from "../train/trainer.ts";

const DOTTED_KEY = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const positiveInt = z.number().int().positive();

const overridesSchema = z.record(z.string(), z.unknown()).superRefine((rec, ctx) => {
  for (const key of Object.keys(rec)) {
    if (!DOTTED_KEY.test(key)) ctx.addIssue({ code: "custom", path: [key], message: "keys must be dotted config paths such as optim.lr" });
  }
});

const trainPhaseSchema = z.object({ steps: positiveInt, set: overridesSchema.optional() }).strict();
const prunePhaseSchema = z
  .object({
    k: positiveInt,
    /** Fine-tuning steps right after pruning (0: prune only; the next train phase continues). */
    steps: z.number().int().nonnegative().default(0),
    /** Criterion images (the first ones of `split`). */
    images: positiveInt.default(500),
    split: z.enum(["train", "test"]).default("test"),
  })
  .strict();
const growPhaseSchema = z.object({ factor: z.number().int().min(2), areas: z.array(z.string().min(1)).min(1).optional() }).strict();

const phaseSchema = z
  .object({ train: trainPhaseSchema.optional(), prune: prunePhaseSchema.optional(), grow: growPhaseSchema.optional() })
  .strict()
  .superRefine((p, ctx) => {
    const kinds = Object.keys(p).filter((k) => p[k as keyof typeof p] !== undefined);
    if (kinds.length !== 1) ctx.addIssue({ code: "custom", message: `a phase has exactly one of train, prune, grow (got ${kinds.length === 0 ? "none" : kinds.join(", ")})` });
  });

/** Schema of a progressive-training file. */
export const progressiveFileSchema = z
  .object({
    name: z.string().regex(SAFE_NAME, { message: "must start with a letter or digit and use only letters, digits, '.', '_' and '-'" }),
    preset: z.enum(Object.keys(PRESETS) as [PresetName, ...PresetName[]]).optional(),
    base: z.record(z.string(), z.unknown()).optional(),
    set: overridesSchema.optional(),
    phases: z.array(phaseSchema).min(1, { message: "needs at least one phase" }),
  })
  .strict();

export type ProgressiveFile = z.output<typeof progressiveFileSchema>;

/** One phase as planned (validated up front). */
export type PlannedPhase = {
  index: number;
  /** Directory name inside the out dir: `<index>-<kind>`. */
  dir: string;
  /** Columns and sources per column (null: dense) after the phase. */
  num_columns: number;
  k: number | null;
  steps: number;
} & (
  | { kind: "train"; train: z.output<typeof trainPhaseSchema> }
  | { kind: "prune"; prune: z.output<typeof prunePhaseSchema> }
  | { kind: "grow"; grow: z.output<typeof growPhaseSchema>; geometry: GeometrySpec }
);

/** A validated plan: the first phase's full training config and every phase. */
export interface ProgressivePlan {
  name: string;
  preset: PresetName | null;
  file: ProgressiveFile;
  /** The first (train) phase's config. */
  config: TrainConfig;
  phases: PlannedPhase[];
}

/**
 * Validate a parsed progressive file and plan it: the first phase must train; a later train
 * phase's `set` must not change the model (sheet, vision); grow needs a dense stacked geometry
 * with an attention bias and a middle area; prune needs k <= N (and <= K of a sparse sheet).
 * Errors are one line naming the field, e.g. `progressive.phases[3].prune.k: ...`.
 */
export function planProgressive(value: unknown, source = "progressive file"): ProgressivePlan {
  const parsed = progressiveFileSchema.safeParse(value);
  if (!parsed.success) throw new Error(`invalid ${source}: ${formatSchemaError(parsed.error, "progressive")}`);
  const file = parsed.data;
  const fail = (where: string, message: string): never => {
    throw new Error(`invalid ${source}: progressive.${where}: ${message}`);
  };
  const first = file.phases[0];
  if (!first.train) fail("phases[0]", `the first phase must be a train phase (got ${Object.keys(first).join(", ")})`);

  let raw: unknown = file.preset ? structuredClone(PRESETS[file.preset]) : {};
  if (file.base) raw = mergeConfig(raw, file.base);
  raw = applyOverrides(raw, Object.entries(file.set ?? {}));
  raw = applyOverrides(raw, Object.entries({ ...(first.train!.set ?? {}), steps: first.train!.steps }));
  let config: TrainConfig;
  let geometry: Geometry;
  try {
    config = parseTrainConfig(raw);
    geometry = resolveSheetConfig(config.sheet).geometry;
    visionLayout(config.vision, geometry);
  } catch (e) {
    return fail("phases[0].train", (e as Error).message);
  }
  let sheet = resolveSheetConfig(config.sheet).config;
  let n = geometry.numColumns;
  let k = connectivityK(sheet);
  const phases: PlannedPhase[] = [];
  for (const [index, phase] of file.phases.entries()) {
    const where = `phases[${index}]`;
    if (phase.train) {
      if (index > 0) {
        for (const key of Object.keys(phase.train.set ?? {})) {
          if (key === "sheet" || key === "vision" || key.startsWith("sheet.") || key.startsWith("vision.") || key === "steps") {
            fail(`${where}.train.set["${key}"]`, key === "steps" ? "give steps as train.steps" : "a later train phase continues the previous model; it must not change sheet or vision fields");
          }
        }
        try {
          parseTrainConfig(applyOverrides(config, Object.entries({ ...(phase.train.set ?? {}), steps: phase.train.steps })));
        } catch (e) {
          fail(`${where}.train`, (e as Error).message);
        }
      }
      phases.push({ index, dir: `${index}-train`, kind: "train", train: phase.train, num_columns: n, k, steps: phase.train.steps });
    } else if (phase.prune) {
      try {
        checkK(phase.prune.k, n, k);
        if (sheet.learn_positions) throw new Error("prune: the model learns its column positions; sparse sheets need fixed positions");
      } catch (e) {
        fail(`${where}.prune.k`, (e as Error).message);
      }
      k = phase.prune.k;
      sheet = { ...sheet, connectivity: { kind: "file", path: "connectivity.json", k } } as typeof sheet;
      phases.push({ index, dir: `${index}-prune`, kind: "prune", prune: phase.prune, num_columns: n, k, steps: phase.prune.steps });
    } else {
      const grow = phase.grow!;
      let spec: GeometrySpec;
      try {
        if (k !== null) throw new Error(`grow: the sheet is sparse (pruned to K ${k} by an earlier phase); growing sparse sheets is not supported: grow first, then prune`);
        checkGrowable(sheet);
        const plan = planGrow(geometry, config.vision, grow.factor, grow.areas);
        spec = plan.spec;
      } catch (e) {
        return fail(`${where}.grow`, (e as Error).message);
      }
      geometry = buildGeometry(spec);
      n = geometry.numColumns;
      sheet = { ...sheet, geometry: spec, num_columns: n };
      phases.push({ index, dir: `${index}-grow`, kind: "grow", grow, geometry: spec, num_columns: n, k, steps: 0 });
    }
  }
  return { name: file.name, preset: file.preset ?? null, file, config, phases };
}

/** Read (JSON or YAML), validate and plan a progressive file. */
export async function loadProgressive(filePath: string): Promise<ProgressivePlan> {
  return planProgressive(await readConfigFile(filePath), `progressive file ${filePath}`);
}

/** One phase's record in progressive.json. */
export interface PhaseRecord {
  index: number;
  kind: "train" | "prune" | "grow";
  run_dir: string;
  status: "pending" | "done" | "skipped" | "interrupted";
  num_columns: number;
  k: number | null;
  steps: number;
  parameters: number | null;
  /** "mim_loss" (lower is better) or "accuracy". */
  metric: "mim_loss" | "accuracy";
  /** The held-out metric after the phase. */
  value: number | null;
}

/** progressive.json. */
export interface ProgressiveResult {
  name: string;
  out: string;
  file: ProgressiveFile;
  phases: PhaseRecord[];
  /** True when every phase is finished. */
  finished: boolean;
}

export interface ProgressiveOptions {
  /** Default runs/progressive/<name>. */
  out?: string;
  verbose?: boolean;
  /** Stop the train phase `phase` after step `step` (resumable; for tests). */
  stopAfter?: { phase: number; step: number };
}

/** A phase's run directory. */
export function phaseDir(out: string, phase: Pick<PlannedPhase, "dir">): string {
  return path.join(out, phase.dir);
}

/** Whether a phase's outputs are complete (a finished run directory; prune.json / grow.json for prune / grow). */
export function phaseFinished(out: string, phase: PlannedPhase): boolean {
  const root = phaseDir(out, phase);
  const trained = () => runDirState(root, phase.steps).kind === "finished";
  if (phase.kind === "train") return trained();
  if (phase.kind === "grow") return existsSync(path.join(root, "grow.json"));
  return existsSync(path.join(root, "prune.json")) && (phase.prune.steps === 0 || trained());
}

/** The checkpoint holding a finished phase's final parameters. */
export function phaseCheckpoint(out: string, phase: PlannedPhase): string {
  const dir = runDirPaths(phaseDir(out, phase));
  const trained = phase.kind === "train" || (phase.kind === "prune" && phase.prune.steps > 0);
  return trained ? checkpointPath(dir, "last") : dir.initPath;
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

async function checkpointParameters(file: string): Promise<number> {
  const ckpt = await loadVisionCheckpoint(file);
  try {
    return countParameters(ckpt.params);
  } finally {
    tree.dispose(ckpt.params);
  }
}

/**
 * Run (or resume) a plan: finished phases are skipped, an interrupted train phase resumes from its
 * checkpoint, every other phase starts from the previous one's final parameters. Writes
 * `<out>/progressive.json` after every phase.
 */
export async function runProgressive(plan: ProgressivePlan, options: ProgressiveOptions = {}): Promise<ProgressiveResult> {
  await initEngine();
  const verbose = options.verbose ?? true;
  const say = (line: string) => verbose && process.stderr.write(`${line}\n`);
  const out = path.resolve(options.out ?? path.join("runs", "progressive", plan.name));
  await mkdir(out, { recursive: true });
  const metric = plan.config.vision.task === "mim" ? "mim_loss" : "accuracy";
  const pick = (r: EvalResult | null | undefined) => {
    const v = r?.[metric];
    return v === undefined ? null : v;
  };
  const records: PhaseRecord[] = plan.phases.map((p) => ({
    index: p.index,
    kind: p.kind,
    run_dir: phaseDir(out, p),
    status: "pending",
    num_columns: p.num_columns,
    k: p.k,
    steps: p.steps,
    parameters: null,
    metric,
    value: null,
  }));
  const recordPath = path.join(out, "progressive.json");
  if (existsSync(recordPath)) {
    const stored = readJson<{ file?: unknown }>(recordPath).file;
    if (!isDeepStrictEqual(stored, JSON.parse(JSON.stringify(plan.file)))) {
      throw new Error(`${out} holds a different progressive plan (its progressive.json); choose another --out or delete that directory`);
    }
  }
  const result: ProgressiveResult = { name: plan.name, out, file: plan.file, phases: records, finished: false };
  const save = () => writeJsonAtomic(recordPath, result);
  await save();

  for (const phase of plan.phases) {
    const rec = records[phase.index];
    const root = phaseDir(out, phase);
    const prev = phase.index > 0 ? plan.phases[phase.index - 1] : null;
    const prevCkpt = prev ? phaseCheckpoint(out, prev) : null;
    const skipped = phaseFinished(out, phase);
    if (skipped) say(`progressive: phase ${phase.index} (${phase.kind}) is finished; skipping ${root}`);
    else say(`progressive: phase ${phase.index} (${phase.kind}) -> ${root}`);

    if (phase.kind === "train") {
      const state = runDirState(root, phase.steps);
      let summary: TrainSummary;
      if (state.kind === "finished") {
        summary = state.summary;
      } else {
        const trainOptions: TrainOptions = { verbose };
        if (options.stopAfter && options.stopAfter.phase === phase.index) trainOptions.stopAfter = options.stopAfter.step;
        if (state.kind === "partial") {
          summary = await resume(root, trainOptions);
        } else if (prev === null) {
          summary = await train(plan.config, root, trainOptions);
        } else {
          const prevConfig = readJson<unknown>(runDirPaths(phaseDir(out, prev)).configPath);
          const config = parseTrainConfig(applyOverrides(prevConfig, Object.entries({ ...(phase.train.set ?? {}), steps: phase.train.steps })));
          summary = await train(config, root, { ...trainOptions, initFrom: prevCkpt! });
        }
      }
      rec.parameters = summary.parameters;
      rec.value = pick(summary.final);
      if (runDirState(root, phase.steps).kind !== "finished") {
        rec.status = "interrupted";
        await save();
        say(`progressive: stopped in phase ${phase.index} after step ${summary.steps}; rerun to resume`);
        return result;
      }
    } else if (phase.kind === "prune") {
      let pr: PruneResult;
      if (skipped) pr = readJson<PruneResult>(path.join(root, "prune.json"));
      else {
        pr = await pruneCurve(prevCkpt!, root, { ks: [phase.prune.k], steps: phase.prune.steps, images: phase.prune.images, split: phase.prune.split, verbose });
      }
      const row = pr.rows[0];
      rec.value = pick(row.finetuned ?? row.pruned);
      rec.parameters = await checkpointParameters(phaseCheckpoint(out, phase));
    } else {
      let gr: GrowResult;
      if (skipped) gr = readJson<GrowResult>(path.join(root, "grow.json"));
      else gr = await growRun(prevCkpt!, root, { factor: phase.grow.factor, areas: phase.grow.areas ?? null, steps: 0, verbose });
      rec.value = pick(gr.grown);
      rec.parameters = await checkpointParameters(phaseCheckpoint(out, phase));
    }
    rec.status = skipped ? "skipped" : "done";
    await save();
  }
  result.finished = true;
  await save();
  return result;
}

/** The final Markdown table: phase, kind, columns N, K (or dense), parameters, steps, metric. */
export function progressiveTable(r: Pick<ProgressiveResult, "phases">): string {
  const metric = r.phases[0]?.metric ?? "mim_loss";
  const f = (v: number | null) => (v === null || !Number.isFinite(v) ? "-" : metric === "accuracy" ? `${(100 * v).toFixed(2)}%` : v.toFixed(4));
  return [
    `| phase | kind | columns N | K | parameters | steps | held-out ${metric} |`,
    "|---:|---|---:|---:|---:|---:|---:|",
    ...r.phases.map(
      (p) =>
        `| ${p.index} | ${p.kind}${p.status === "interrupted" ? " (interrupted)" : p.status === "pending" ? " (pending)" : ""} | ${p.num_columns} | ${p.k ?? "dense"} | ` +
        `${p.parameters === null ? "-" : p.parameters.toLocaleString("en-US")} | ${p.steps} | ${f(p.value)} |`,
    ),
  ].join("\n");
}

/** A dry-run table of a plan: what each phase will do. */
export function planTable(plan: ProgressivePlan): string {
  return [
    "| phase | kind | what | columns N | K | steps |",
    "|---:|---|---|---:|---:|---:|",
    ...plan.phases.map((p) => {
      const what =
        p.kind === "train"
          ? p.index === 0
            ? "from scratch"
            : "from the previous parameters"
          : p.kind === "prune"
            ? `prune to K ${p.prune.k} (${p.prune.images} ${p.prune.split} images)`
            : `grow x${p.grow.factor}: widths [${(p.geometry as { widths: number[] }).widths.join(", ")}]`;
      return `| ${p.index} | ${p.kind} | ${what} | ${p.num_columns} | ${p.k ?? "dense"} | ${p.steps} |`;
    }),
  ].join("\n");
}
