/**
 * Comparing the runs of a sweep: `columnformer compare SWEEP_DIR`.
 *
 * ```
 * <sweep dir>/sweep.json                   the plan: run names (in order) and overrides
 * <sweep dir>/<run>/sweep-summary.json     a finished run's RunSummary (src/workflows/sweep/summary.ts)
 * ```
 *
 * Outputs (in the sweep dir, or `--out`): `compare.csv` (raw numbers, one row per
 * run), `compare.md` (a Markdown table with human units, the unfinished runs and
 * the figures) and three scatter plots as `compare-<metric>-vs-<x>.svg|png`.
 *
 * The module has three layers: reading the sweep directory
 * ({@link readSweepDir}), pure table and figure building ({@link chooseMetric},
 * {@link buildRows}, {@link markdownTable}, {@link csvTable}, {@link figureSpecs},
 * {@link compareMarkdown}), and writing ({@link writeComparison}).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../../io/atomic.ts";
import { scatter, type ScatterPoint } from "../../viz/charts.ts";
import { writeFigure } from "../../viz/render.ts";
import { formatFieldPath } from "../../io/schema-errors.ts";
import { runDirPaths } from "../../train/run-dir.ts";
import { describeOverrides, formatValue, shortKeys, varyingKeys } from "./overrides.ts";
import { type Replicates, replicates, welchTTest } from "./stats.ts";
import { readRunTopography, type RunTopography, type TopographyGroup, topographyFigures, topographyGroups, topographyTable, RUN_ANALYSIS_FILE } from "./topography-compare.ts";
import { PLAN_FILE, type RunSummary, SUMMARY_FILE } from "./summary.ts";

// ---------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------

/**
 * A run summary as read back from disk: a {@link RunSummary}, except that any
 * measured number may be null (JSON writes NaN as null) and train_seconds may be absent.
 */
export interface StoredSummary {
  name: string;
  overrides: Record<string, unknown>;
  task: "mim" | "classify";
  steps: number | null;
  parameters: number | null;
  flops_per_image: number | null;
  images_per_second: number | null;
  train_seconds?: number | null;
  eval: { loss: number | null; mim_loss?: number | null; accuracy?: number | null };
  probe_accuracy: number | null;
  wiring_cost: number | null;
  mean_attention_distance: number | null;
}

/** One run of a sweep as found on disk. */
export interface SweepEntry {
  /** Run name (its directory name). */
  name: string;
  /** The run's own overrides (from sweep.json, else from its summary; {} when neither). */
  overrides: Record<string, unknown>;
  /** The run's summary; null while the run is unfinished. */
  summary: StoredSummary | null;
}

/** A sweep directory as found on disk. */
export interface SweepListing {
  /** Absolute path of the sweep directory. */
  dir: string;
  /** Sweep name from sweep.json, else the directory's name. */
  name: string;
  /** Whether the run order came from sweep.json (else: directory order). */
  fromPlan: boolean;
  /** Every run, in plan order (or sorted directory order). */
  runs: SweepEntry[];
}

/** The task metric that figures plot on the y axis. */
export type TaskMetric = "accuracy" | "mim_loss";

/** One row of the comparison: a run's numbers (null = not available), ready to format. */
export interface CompareRow {
  name: string;
  finished: boolean;
  overrides: Record<string, unknown>;
  task: "mim" | "classify" | null;
  steps: number | null;
  parameters: number | null;
  flops_per_image: number | null;
  images_per_second: number | null;
  train_seconds: number | null;
  eval_loss: number | null;
  mim_loss: number | null;
  accuracy: number | null;
  probe_accuracy: number | null;
  wiring_cost: number | null;
  mean_attention_distance: number | null;
}

// ---------------------------------------------------------------------------------------
// Reading a sweep directory
// ---------------------------------------------------------------------------------------

/** A number, or null (JSON has no NaN: a NaN the runner measured arrives as null). */
const num = z.number().nullable();

/** What compare needs from `sweep-summary.json`; extra fields are allowed. */
const runSummarySchema = z.looseObject({
  name: z.string(),
  overrides: z.record(z.string(), z.unknown()).default({}),
  task: z.enum(["mim", "classify"]),
  steps: num,
  parameters: num,
  flops_per_image: num,
  images_per_second: num,
  train_seconds: num.default(null),
  eval: z.looseObject({ loss: num.default(null), mim_loss: num.optional(), accuracy: num.optional() }),
  probe_accuracy: num,
  wiring_cost: num,
  mean_attention_distance: num,
});

/** What compare needs from `sweep.json`. */
const planSchema = z.looseObject({
  name: z.string().optional(),
  runs: z.array(z.looseObject({ name: z.string().min(1), overrides: z.record(z.string(), z.unknown()).default({}) })),
});

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message.split("\n")[0]}`);
  }
}

function zodLine(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = formatFieldPath(issue.path);
  return `${where.replace(/^\./, "") || "(top level)"}: ${issue.message}`;
}

/**
 * Read and validate one `sweep-summary.json`. Numeric fields that are null
 * (a NaN when written) are kept as null.
 *
 * @throws One line naming the file and the bad field.
 */
export function readRunSummary(file: string): StoredSummary {
  const parsed = runSummarySchema.safeParse(readJsonFile(file));
  if (!parsed.success) throw new Error(`${file} is not a run summary: ${zodLine(parsed.error)}`);
  return parsed.data;
}

/** Sub-directories of `dir` that look like run directories (hold a summary or a config.json), sorted by name. */
function runDirectories(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith("."))
    .map((d) => d.name)
    .filter((name) => existsSync(path.join(dir, name, SUMMARY_FILE)) || existsSync(runDirPaths(path.join(dir, name)).configPath))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Find the runs of a sweep directory. With `sweep.json`, its runs in its order;
 * without, every sub-directory holding `sweep-summary.json` or a training
 * `config.json`, in name order. A run is finished when it has `sweep-summary.json`.
 *
 * @throws When `dir` is missing or not a directory, when it has neither
 *   sweep.json nor any run directory, or when a plan or summary file is invalid.
 */
export function readSweepDir(dir: string): SweepListing {
  const root = path.resolve(dir);
  if (!existsSync(root)) throw new Error(`${dir} does not exist (give a sweep directory, the --out of columnformer sweep)`);
  if (!statSync(root).isDirectory()) throw new Error(`${dir} is not a directory (give a sweep directory, the --out of columnformer sweep)`);
  const planPath = path.join(root, PLAN_FILE);
  const summaryOf = (name: string): StoredSummary | null => {
    const file = path.join(root, name, SUMMARY_FILE);
    return existsSync(file) ? readRunSummary(file) : null;
  };
  if (existsSync(planPath)) {
    const parsed = planSchema.safeParse(readJsonFile(planPath));
    if (!parsed.success) throw new Error(`${planPath} is not a sweep plan: ${zodLine(parsed.error)}`);
    const runs = parsed.data.runs.map((r) => ({ name: r.name, overrides: r.overrides, summary: summaryOf(r.name) }));
    return { dir: root, name: parsed.data.name ?? path.basename(root), fromPlan: true, runs };
  }
  const names = runDirectories(root);
  if (names.length === 0) {
    throw new Error(`${dir} is not a sweep directory: it has no ${PLAN_FILE} and no run directories (<run>/${SUMMARY_FILE} or <run>/config.json)`);
  }
  const runs = names.map((name) => {
    const summary = summaryOf(name);
    return { name, overrides: summary?.overrides ?? {}, summary };
  });
  return { dir: root, name: path.basename(root), fromPlan: false, runs };
}

// ---------------------------------------------------------------------------------------
// Pure: rows, metric, formatting
// ---------------------------------------------------------------------------------------

/** A finite number, else null. */
function finite(v: number | null | undefined): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** One {@link CompareRow} per run, in the listing's order (unfinished runs have null numbers). */
export function buildRows(entries: readonly SweepEntry[]): CompareRow[] {
  return entries.map(({ name, overrides, summary: s }) => ({
    name,
    finished: s !== null,
    overrides,
    task: s?.task ?? null,
    steps: finite(s?.steps),
    parameters: finite(s?.parameters),
    flops_per_image: finite(s?.flops_per_image),
    images_per_second: finite(s?.images_per_second),
    train_seconds: finite(s?.train_seconds),
    eval_loss: finite(s?.eval.loss),
    mim_loss: finite(s?.eval.mim_loss),
    accuracy: finite(s?.eval.accuracy),
    probe_accuracy: finite(s?.probe_accuracy),
    wiring_cost: finite(s?.wiring_cost),
    mean_attention_distance: finite(s?.mean_attention_distance),
  }));
}

/**
 * The task metric to plot: test accuracy when any finished run reports one
 * (classification), else the held-out MIM loss. Runs without the chosen
 * metric are left out of the figures.
 *
 * @returns null when no finished run reports either.
 */
export function chooseMetric(rows: readonly CompareRow[]): TaskMetric | null {
  if (rows.some((r) => r.accuracy !== null)) return "accuracy";
  if (rows.some((r) => r.mim_loss !== null)) return "mim_loss";
  return null;
}

/** Human label of a task metric. */
export function metricLabel(metric: TaskMetric): string {
  return metric === "accuracy" ? "test accuracy (%)" : "held-out MIM loss";
}

const SI_PREFIXES = ["", "k", "M", "G", "T", "P", "E"];

/**
 * A count in human units with 3 significant digits: `950`, `1.23 k`, `45.6 M`, `7.89 G`.
 * Values below 1000 keep up to 3 significant digits without a prefix.
 */
export function formatSI(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const sign = v < 0 ? "-" : "";
  let a = Math.abs(v);
  let k = 0;
  while (a >= 999.5 && k < SI_PREFIXES.length - 1) {
    a /= 1000;
    k++;
  }
  const text = String(Number(a.toPrecision(3)));
  return k === 0 ? `${sign}${text}` : `${sign}${text} ${SI_PREFIXES[k]}`;
}

/** A fraction as a percentage with 2 decimals: 0.9712 -> `97.12%`. */
export function formatPercent(v: number): string {
  return `${(100 * v).toFixed(2)}%`;
}

/** One column of the Markdown table. */
interface MdColumn {
  header: string;
  /** Right-aligned (numbers). */
  right: boolean;
  cell: (r: CompareRow) => string;
}

const DASH = "-";

/** Format a nullable number with `f`, `-` for null. */
function cellOf(v: number | null, f: (x: number) => string): string {
  return v === null ? DASH : f(v);
}

/** Escape text for a Markdown table cell. */
function mdCell(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

/**
 * The Markdown comparison table: run, key overrides, parameters, FLOPs/image,
 * images/s, final MIM loss and/or accuracy (the columns any finished run has),
 * probe accuracy, wiring cost, mean attention distance, steps. Unfinished runs
 * get a row reading `unfinished`.
 */
export function markdownTable(rows: readonly CompareRow[]): string {
  const keys = varyingKeys(rows);
  const labels = shortKeys(keys);
  const hasMim = rows.some((r) => r.mim_loss !== null);
  const hasAcc = rows.some((r) => r.accuracy !== null);
  const columns: MdColumn[] = [
    { header: "run", right: false, cell: (r) => r.name },
    { header: "key overrides", right: false, cell: (r) => describeOverrides(r.overrides, keys, labels) },
    { header: "parameters", right: true, cell: (r) => (r.finished ? cellOf(r.parameters, formatSI) : "unfinished") },
    { header: "FLOPs/image", right: true, cell: (r) => cellOf(r.flops_per_image, formatSI) },
    { header: "images/s", right: true, cell: (r) => cellOf(r.images_per_second, (v) => v.toFixed(1)) },
    ...(hasMim ? [{ header: "MIM loss", right: true, cell: (r: CompareRow) => cellOf(r.mim_loss, (v) => v.toFixed(4)) }] : []),
    ...(hasAcc ? [{ header: "accuracy", right: true, cell: (r: CompareRow) => cellOf(r.accuracy, formatPercent) }] : []),
    { header: "probe accuracy", right: true, cell: (r) => cellOf(r.probe_accuracy, formatPercent) },
    { header: "wiring cost", right: true, cell: (r) => cellOf(r.wiring_cost, (v) => v.toFixed(3)) },
    { header: "mean attn. distance", right: true, cell: (r) => cellOf(r.mean_attention_distance, (v) => v.toFixed(3)) },
    { header: "steps", right: true, cell: (r) => cellOf(r.steps, (v) => v.toLocaleString("en-US")) },
  ];
  const lines = [
    `| ${columns.map((c) => c.header).join(" | ")} |`,
    `| ${columns.map((c) => (c.right ? "---:" : "---")).join(" | ")} |`,
    ...rows.map((r) => `| ${columns.map((c) => mdCell(c.cell(r))).join(" | ")} |`),
  ];
  return `${lines.join("\n")}\n`;
}

/** A CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * The CSV comparison: one header line, then one line per run (finished or not)
 * with raw numbers (empty = not available), the run's overrides as one JSON
 * column and one column per override key (`set:<key>`).
 */
export function csvTable(rows: readonly CompareRow[]): string {
  const overrideKeys: string[] = [];
  for (const r of rows) for (const k of Object.keys(r.overrides)) if (!overrideKeys.includes(k)) overrideKeys.push(k);
  const numeric = [
    "steps",
    "parameters",
    "flops_per_image",
    "images_per_second",
    "train_seconds",
    "eval_loss",
    "mim_loss",
    "accuracy",
    "probe_accuracy",
    "wiring_cost",
    "mean_attention_distance",
  ] as const;
  const header = ["run", "status", "task", ...numeric, "overrides", ...overrideKeys.map((k) => `set:${k}`)];
  const lines = [header.map(csvField).join(",")];
  for (const r of rows) {
    const fields = [
      r.name,
      r.finished ? "finished" : "unfinished",
      r.task ?? "",
      ...numeric.map((k) => {
        const v = r[k];
        return v === null ? "" : String(v);
      }),
      JSON.stringify(r.overrides),
      ...overrideKeys.map((k) => (k in r.overrides ? formatValue(r.overrides[k]) : "")),
    ];
    lines.push(fields.map(csvField).join(","));
  }
  return `${lines.join("\n")}\n`;
}

/** One figure of the comparison. */
export interface FigureSpec {
  /** File name without extension, e.g. `compare-accuracy-vs-wiring-cost`. */
  file: string;
  /** What it shows, for compare.md. */
  caption: string;
  /** The SVG document. */
  svg: string;
}

/** Ratio of largest to smallest positive x above which a log axis would help. */
export const LOG_RANGE_RATIO = 10;

/**
 * The scatter plots: the task metric against wiring cost, parameters and mean
 * attention distance, one labelled point per finished run that has both values.
 * (charts.ts `scatter` draws linear axes only; the parameters axis is linear even
 * when the values span more than {@link LOG_RANGE_RATIO}x.)
 */
export function figureSpecs(rows: readonly CompareRow[], metric: TaskMetric, sweepName: string): FigureSpec[] {
  const y = (r: CompareRow): number | null => (metric === "accuracy" ? (r.accuracy === null ? null : 100 * r.accuracy) : r.mim_loss);
  const axes: { key: "wiring_cost" | "parameters" | "mean_attention_distance"; slug: string; label: string }[] = [
    { key: "wiring_cost", slug: "wiring-cost", label: "wiring cost (L1, W = d / mean d)" },
    { key: "parameters", slug: "parameters", label: "parameters" },
    { key: "mean_attention_distance", slug: "attention-distance", label: "mean attention distance" },
  ];
  const metricName = metric === "accuracy" ? "accuracy" : "MIM loss";
  return axes.map(({ key, slug, label }) => {
    const points: ScatterPoint[] = [];
    for (const r of rows) {
      const xv = r[key];
      const yv = y(r);
      if (r.finished && xv !== null && yv !== null) points.push({ x: xv, y: yv, label: r.name });
    }
    const title = `${sweepName}: ${metricName} vs ${label.replace(/ \(.*\)$/, "")}`;
    return {
      file: `compare-${metric === "accuracy" ? "accuracy" : "mim-loss"}-vs-${slug}`,
      caption: `${metricName} vs ${label}`,
      svg: scatter({ title, xLabel: label, yLabel: metricLabel(metric), points }),
    };
  });
}

// ---------------------------------------------------------------------------------------
// Seeds: replicates of one configuration
// ---------------------------------------------------------------------------------------

/** One configuration replicated over seeds (runs whose overrides differ only in `seed`). */
export interface SeedGroup {
  /** The runs' common name without its `_seed-S` part (`run` when nothing is left). */
  name: string;
  /** The overrides without `seed`. */
  overrides: Record<string, unknown>;
  /** Finished runs of the group, in order. */
  runs: string[];
  seeds: number[];
  /** The task metric (accuracy as a fraction, or MIM loss) over the finished runs. */
  metric: Replicates;
  values: number[];
  wiring_cost: Replicates;
  probe_accuracy: Replicates;
  /** The group with the best mean metric (highest accuracy, lowest MIM loss). */
  best: boolean;
  /** Welch's two-sided p against the best group (null for the best group, NaN with fewer than 2 seeds on either side). */
  p_vs_best: number | null;
  /** p_vs_best < 0.05; null for the best group or when untestable. */
  significant: boolean | null;
}

/** Name of a seed group: the run name without `_seed-S` / `seed-S`. */
export function groupName(run: string): string {
  return run.replace(/_?seed-\d+$/, "") || "run";
}

const withoutSeed = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([k]) => k !== "seed"));
const groupKey = (o: Record<string, unknown>): string => JSON.stringify(Object.entries(withoutSeed(o)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * Group finished runs by their overrides without `seed` and summarise each group: mean, sample
 * SD and Student-t 95 % CI of the task metric, wiring cost and probe accuracy; each group is
 * tested against the best one with Welch's t-test (two-sided, alpha 0.05). Returns [] unless some
 * group has at least two seeded runs.
 */
export function seedGroups(rows: readonly CompareRow[], metric: TaskMetric | null): SeedGroup[] {
  if (metric === null) return [];
  const order: string[] = [];
  const byKey = new Map<string, CompareRow[]>();
  for (const r of rows) {
    if (!r.finished) continue;
    const key = groupKey(r.overrides);
    if (!byKey.has(key)) {
      byKey.set(key, []);
      order.push(key);
    }
    byKey.get(key)!.push(r);
  }
  if (![...byKey.values()].some((g) => g.length > 1 && g.every((r) => "seed" in r.overrides))) return [];
  const value = (r: CompareRow) => (metric === "accuracy" ? r.accuracy : r.mim_loss);
  const nums = (xs: (number | null)[]) => xs.filter((v): v is number => v !== null);
  const groups = order.map((key) => {
    const g = byKey.get(key)!;
    const values = nums(g.map(value));
    return {
      name: groupName(g[0].name),
      overrides: withoutSeed(g[0].overrides),
      runs: g.map((r) => r.name),
      seeds: g.map((r) => r.overrides.seed).filter((v): v is number => typeof v === "number"),
      metric: replicates(values),
      values,
      wiring_cost: replicates(nums(g.map((r) => r.wiring_cost))),
      probe_accuracy: replicates(nums(g.map((r) => r.probe_accuracy))),
      best: false,
      p_vs_best: null as number | null,
      significant: null as boolean | null,
    };
  });
  const scored = groups.filter((g) => Number.isFinite(g.metric.mean));
  if (scored.length === 0) return groups;
  const best = scored.reduce((a, b) => (metric === "accuracy" ? (b.metric.mean > a.metric.mean ? b : a) : b.metric.mean < a.metric.mean ? b : a));
  best.best = true;
  for (const g of groups) {
    if (g === best) continue;
    const p = welchTTest(g.values, best.values).p;
    g.p_vs_best = p;
    g.significant = Number.isFinite(p) ? p < 0.05 : null;
  }
  return groups;
}

/** The Markdown table of seed groups: mean +- SD, 95 % CI, and the test against the best group. */
export function seedTable(groups: readonly SeedGroup[], metric: TaskMetric): string {
  const f = (v: number) => (metric === "accuracy" ? formatPercent(v) : v.toFixed(4));
  const ci = (r: Replicates) => (Number.isFinite(r.ci95[0]) ? `[${f(r.ci95[0])}, ${f(r.ci95[1])}]` : DASH);
  const sd = (r: Replicates, g: (v: number) => string) => (Number.isFinite(r.mean) ? `${g(r.mean)} ± ${Number.isFinite(r.std) ? g(r.std) : DASH}` : DASH);
  const vs = (g: SeedGroup) => (g.best ? "best" : g.p_vs_best === null || !Number.isFinite(g.p_vs_best) ? DASH : `p = ${g.p_vs_best.toPrecision(2)}${g.significant ? "" : " (n.s.)"}`);
  const lines = [
    `| configuration | seeds | ${metric === "accuracy" ? "accuracy" : "MIM loss"} mean ± SD | 95 % CI | vs best (Welch) | wiring cost mean ± SD |`,
    "| --- | ---: | ---: | ---: | --- | ---: |",
    ...groups.map((g) => `| ${mdCell(g.name)} | ${g.metric.n} | ${sd(g.metric, f)} | ${ci(g.metric)} | ${vs(g)} | ${sd(g.wiring_cost, (v) => v.toFixed(3))} |`),
  ];
  return `${lines.join("\n")}\n`;
}

/** The metric of each seed group vs its mean wiring cost, with 95 % CI error bars. */
export function seedFigure(groups: readonly SeedGroup[], metric: TaskMetric, sweepName: string): FigureSpec {
  const scale = metric === "accuracy" ? 100 : 1;
  const points: ScatterPoint[] = groups
    .filter((g) => Number.isFinite(g.metric.mean) && Number.isFinite(g.wiring_cost.mean))
    .map((g) => ({ x: g.wiring_cost.mean, y: scale * g.metric.mean, label: `${g.name}${g.best || g.significant !== false ? "" : " (n.s.)"}`, yRange: [scale * g.metric.ci95[0], scale * g.metric.ci95[1]] }));
  const metricName = metric === "accuracy" ? "accuracy" : "MIM loss";
  return {
    file: `compare-${metric === "accuracy" ? "accuracy" : "mim-loss"}-seeds`,
    caption: `${metricName} per configuration (mean over seeds, 95 % CI error bars; "n.s." = not significantly different from the best configuration, Welch p >= 0.05) vs mean wiring cost`,
    svg: scatter({ title: `${sweepName}: ${metricName} over seeds`, xLabel: "wiring cost (L1, W = d / mean d), mean over seeds", yLabel: metricLabel(metric), points }),
  };
}

/** Names of the unfinished runs, in order. */
export function unfinishedRuns(rows: readonly CompareRow[]): string[] {
  return rows.filter((r) => !r.finished).map((r) => r.name);
}

/** The whole `compare.md`: heading, table, unfinished runs, the plotted metric and figure links. */
export function compareMarkdown(
  listing: Pick<SweepListing, "name" | "fromPlan">,
  rows: readonly CompareRow[],
  metric: TaskMetric | null,
  figures: readonly Pick<FigureSpec, "file" | "caption">[],
  topography: { groups: readonly TopographyGroup[]; figures: readonly Pick<FigureSpec, "file" | "caption">[] } | null = null,
): string {
  const finished = rows.length - unfinishedRuns(rows).length;
  const parts = [`# Sweep ${listing.name}: ${finished} of ${rows.length} runs finished`, "", markdownTable(rows).trimEnd(), ""];
  const open = unfinishedRuns(rows);
  if (open.length) parts.push(`Unfinished (no ${SUMMARY_FILE} yet): ${open.join(", ")}.`, "");
  if (!listing.fromPlan) parts.push(`No ${PLAN_FILE}: runs in directory order.`, "");
  parts.push(
    "Accuracy and probe accuracy are top-1 on held-out images; wiring cost is the unweighted L1 cost (W = d / mean d) " +
      "of held-out attention and mean attention distance its attention-weighted distance, both averaged over steps; " +
      "FLOPs are forward-pass matmul FLOPs per image; images/s is the median training throughput.",
    "",
  );
  const groups = seedGroups(rows, metric);
  if (metric !== null && groups.length) {
    parts.push(
      "## Seeds",
      "",
      seedTable(groups, metric).trimEnd(),
      "",
      "Runs that differ only in `seed` are one configuration: mean, sample SD and Student-t 95 % confidence interval of the mean over its seeds; " +
        "each configuration is compared with the best one by Welch's two-sided t-test, and (n.s.) marks a difference that is not significant (p >= 0.05).",
      "",
    );
  }
  if (metric !== null && figures.length) {
    parts.push(`Figures plot the ${metric === "accuracy" ? "test accuracy" : "held-out MIM loss"} of each finished run:`, "");
    for (const f of figures) parts.push(`![${f.caption}](${f.file}.png)`, "");
  }
  if (topography?.groups.length) {
    const analysed = topography.groups.reduce((n, g) => n + g.analysed.length, 0);
    parts.push(
      "## Topography",
      "",
      `From \`columnformer analyze\` of ${analysed} run${analysed === 1 ? "" : "s"} (each run's ${RUN_ANALYSIS_FILE}); mean ± SD over the analysed seeds. ` +
        "Smoothness is TDANN's (max - nearest-bin difference) / max of the preference-difference vs distance curve, beside the same on shuffled positions; " +
        "Moran's I of the max-t map with queen row-standardised weights, z against its permutation null; patches are connected regions of Gaussian-smoothed t above the threshold, summed over classes.",
      "",
      topographyTable(topography.groups).trimEnd(),
      "",
    );
    for (const f of topography.figures) parts.push(`![${f.caption}](${f.file}.png)`, "");
  }
  return parts.join("\n");
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/** What {@link writeComparison} produced. */
export interface ComparisonResult {
  /** The Markdown table (also in compare.md). */
  table: string;
  rows: CompareRow[];
  metric: TaskMetric | null;
  /** Absolute paths of every file written. */
  files: string[];
  /** Names of unfinished runs, in order. */
  unfinished: string[];
}

/**
 * Write `compare.csv`, `compare.md` and the figures (SVG + PNG) for a sweep into
 * `outDir` (default: the sweep directory), each atomically.
 *
 * @throws When no run of the sweep has finished.
 */
export async function writeComparison(listing: SweepListing, outDir: string = listing.dir): Promise<ComparisonResult> {
  const rows = buildRows(listing.runs);
  const finished = rows.filter((r) => r.finished).length;
  if (finished === 0) {
    throw new Error(
      `no finished runs in ${listing.dir} yet: none of its ${rows.length} run${rows.length === 1 ? "" : "s"} has ${SUMMARY_FILE} ` +
        `(${rows.map((r) => r.name).join(", ") || "none planned"})`,
    );
  }
  const metric = chooseMetric(rows);
  const groups = seedGroups(rows, metric);
  const specs = metric === null ? [] : [...figureSpecs(rows, metric, listing.name), ...(groups.length ? [seedFigure(groups, metric, listing.name)] : [])];
  // topography of the runs that `columnformer analyze` has been run on, pooled like the seeds
  const configurations = groups.length ? groups : rows.filter((r) => r.finished).map((r) => ({ name: r.name, overrides: r.overrides, runs: [r.name] }));
  const analysed = new Map<string, RunTopography>();
  for (const r of rows) {
    const t = readRunTopography(path.join(listing.dir, r.name));
    if (t) analysed.set(r.name, t);
  }
  const topoGroups = topographyGroups(configurations, analysed);
  const topoSpecs = topoGroups.length ? topographyFigures(topoGroups, listing.name) : [];
  const out = path.resolve(outDir);
  const files: string[] = [];
  const csvPath = path.join(out, "compare.csv");
  await writeFileAtomic(csvPath, csvTable(rows));
  files.push(csvPath);
  if (groups.length) {
    const seedsPath = path.join(out, "compare-seeds.json");
    await writeFileAtomic(seedsPath, `${JSON.stringify(groups, null, 2)}\n`);
    files.push(seedsPath);
  }
  if (topoGroups.length) {
    const topoPath = path.join(out, "compare-topography.json");
    await writeFileAtomic(topoPath, `${JSON.stringify(topoGroups, null, 2)}\n`);
    files.push(topoPath);
  }
  for (const spec of [...specs, ...topoSpecs]) {
    const written = await writeFigure(path.join(out, spec.file), spec.svg);
    files.push(written.svg, written.png);
  }
  const mdPath = path.join(out, "compare.md");
  await writeFileAtomic(mdPath, compareMarkdown(listing, rows, metric, specs, { groups: topoGroups, figures: topoSpecs }));
  files.push(mdPath);
  return { table: markdownTable(rows), rows, metric, files, unfinished: unfinishedRuns(rows) };
}
