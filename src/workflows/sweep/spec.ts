/**
 * Sweep files: a set of training runs written as a preset, a base config,
 * common overrides, an optional list of named runs and an optional grid.
 *
 * ```yaml
 * name: weight-sharing          # default sweep dir: runs/sweeps/<name>
 * preset: tiny                  # optional starting preset
 * base: { optim: { lr: 0.002 } }  # optional inline config, deep-merged over the preset
 * set: { "vision.task": classify, steps: 300 }   # common overrides: dotted path -> JSON value
 * grid: { "wiring.lambda": [0, 0.01, 0.1] }      # optional cartesian product
 * runs:                                          # optional list of named variants
 *   - { name: transformer, set: { "sheet.untie_attn": false } }
 * probe: { train_images: 2000, test_images: 1000 }  # or false
 * measure_images: 500
 * seeds: [0, 1, 2]                               # optional: every run once per seed (config `seed`)
 * ```
 *
 * {@link expandSweep} turns a parsed file into a {@link SweepPlan}: the runs
 * list (or one unnamed run) times the grid product, each with a unique,
 * filesystem-safe name and a fully resolved, validated {@link TrainConfig}.
 * Everything is validated here, before any training starts.
 */
import { z } from "zod";
import { resolveSheetConfig } from "../../model/config.ts";
import { visionLayout } from "../../model/vision.ts";
import { readConfigFile } from "../../io/config-file.ts";
import { applyOverrides, mergeConfig } from "../../io/overrides.ts";
import { formatSchemaError } from "../../io/schema-errors.ts";
import { parseTrainConfig, type TrainConfig } from "../../train/config.ts";
import { PRESETS, type PresetName } from "../../train/presets.ts";

/** A dotted config path: `steps`, `wiring.lambda`, `sheet.geometry.widths`. */
const DOTTED_KEY = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
/** Sweep and run names: safe as a directory name and a Slurm job name. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A record whose keys must be dotted config paths (the error names the bad key). */
function dottedRecord<T extends z.ZodType>(value: T) {
  return z.record(z.string(), value).superRefine((rec, ctx) => {
    for (const key of Object.keys(rec)) {
      if (!DOTTED_KEY.test(key)) ctx.addIssue({ code: "custom", path: [key], message: "keys must be dotted config paths such as wiring.lambda" });
    }
  });
}
/** Dotted path -> JSON value (values are kept as written: numbers stay numbers). */
const overridesSchema = dottedRecord(z.unknown());

/** Settings of the post-training linear probe. */
export const probeSettingsSchema = z
  .object({
    /** Training-split images whose features train the probe. */
    train_images: z.number().int().positive().default(2000),
    /** Test-split images the probe is scored on. */
    test_images: z.number().int().positive().default(1000),
    /** Passes of logistic regression over the probe's training set. */
    epochs: z.number().int().positive().default(30),
    /** Output-area features: all columns' states concatenated (flat) or their mean (avg). */
    pooling: z.enum(["flat", "avg"]).default("flat"),
  })
  .strict();

/** Resolved probe settings. */
export type ProbeSettings = z.output<typeof probeSettingsSchema>;

const DEFAULT_PROBE: ProbeSettings = probeSettingsSchema.parse({});

/** Schema of a sweep file. */
export const sweepFileSchema = z
  .object({
    name: z.string().regex(SAFE_NAME, { message: "must start with a letter or digit and use only letters, digits, '.', '_' and '-'" }),
    preset: z.enum(Object.keys(PRESETS) as [PresetName, ...PresetName[]]).optional(),
    base: z.record(z.string(), z.unknown()).optional(),
    set: overridesSchema.optional(),
    grid: dottedRecord(z.array(z.unknown()).min(1, { message: "a grid axis needs at least one value" })).optional(),
    runs: z
      .array(
        z
          .object({
            name: z.string().min(1),
            set: overridesSchema.optional(),
          })
          .strict(),
      )
      .min(1, { message: "runs, when given, needs at least one run" })
      .optional(),
    /** `false` skips the probe; `true` or an object (missing fields defaulted) runs it. */
    probe: z.union([z.boolean(), probeSettingsSchema]).default(true),
    /** Held-out images for the wiring cost and mean attention distance. */
    measure_images: z.number().int().positive().default(500),
    /** Replicate every run once per seed (sets the config's `seed`; names get `_seed-S`). */
    seeds: z
      .array(z.number().int().nonnegative())
      .min(1, { message: "seeds, when given, needs at least one seed" })
      .refine((xs) => new Set(xs).size === xs.length, { message: "seeds must be distinct" })
      .optional(),
  })
  .strict();

/** A sweep file as written. */
export type SweepFileInput = z.input<typeof sweepFileSchema>;
/** A parsed sweep file (defaults filled). */
export type SweepFile = z.output<typeof sweepFileSchema>;

/** One expanded run of a sweep. */
export interface PlannedRun {
  /** Position in the expansion (0-based): the `--task` index and the Slurm array index. */
  index: number;
  /** Unique, filesystem-safe name; the run's directory is `<sweep dir>/<name>`. */
  name: string;
  /** This run's own overrides (the run's `set`, then its grid values, then `seed` when the sweep has seeds), dotted path -> value. */
  overrides: Record<string, unknown>;
  /** The replicate's seed when the sweep has `seeds`, else null. */
  seed: number | null;
  /** Fully resolved training config. */
  config: TrainConfig;
}

/** An expanded sweep: what `sweep.json` holds. */
export interface SweepPlan {
  name: string;
  preset: PresetName | null;
  /** Overrides shared by every run (the file's `set`). */
  set: Record<string, unknown>;
  /** Probe settings, or false when the probe is skipped. */
  probe: ProbeSettings | false;
  /** Held-out images for the attention measurements. */
  measure_images: number;
  /** The sweep's seeds (every configuration once per seed), or null. */
  seeds: number[] | null;
  runs: PlannedRun[];
}

/** Validate a parsed sweep file; one line naming the bad field on error. */
export function parseSweepFile(value: unknown, source = "sweep file"): SweepFile {
  const parsed = sweepFileSchema.safeParse(value);
  if (!parsed.success) throw new Error(`invalid ${source}: ${formatSchemaError(parsed.error, "sweep")}`);
  return parsed.data;
}

/**
 * Make a string safe as a directory name: runs of characters other than
 * letters, digits, `.`, `_`, `-` and `=` become one `-`; leading `.`/`-` and
 * trailing `-` are dropped (no hidden or option-like names). Empty results
 * become `run`.
 */
export function sanitizeName(s: string): string {
  const out = s
    .replace(/[^A-Za-z0-9._=-]+/g, "-")
    .replace(/^[.-]+/, "")
    .replace(/-+$/, "");
  return out === "" ? "run" : out;
}

/**
 * A short label of a grid value: numbers, strings and booleans as written,
 * anything else as compact JSON without braces, brackets and quotes
 * (`{"kind":"mnist"}` -> `kind:mnist`, sanitised later to `kind-mnist`).
 */
function valueLabel(v: unknown): string {
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return String(v);
  return (JSON.stringify(v) ?? "undefined").replace(/["{}[\]]/g, "");
}

/**
 * Short labels of grid keys: the shortest dotted suffix that is unique among
 * the keys (`wiring.lambda` -> `lambda`, unless another key also ends in `lambda`).
 */
export function gridKeyLabels(keys: string[]): string[] {
  const parts = keys.map((k) => k.split("."));
  return parts.map((p) => {
    for (let take = 1; take <= p.length; take++) {
      const label = p.slice(-take).join(".");
      const clash = parts.some((q) => q !== p && q.slice(-take).join(".") === label);
      if (!clash) return label;
    }
    return p.join(".");
  });
}

/** Cartesian product of the grid's axes, the LAST key varying fastest: one {key: value} object per combination. */
export function gridProduct(grid: Record<string, unknown[]>): Record<string, unknown>[] {
  let combos: Record<string, unknown>[] = [{}];
  for (const [key, values] of Object.entries(grid)) {
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
  }
  return combos;
}

/**
 * Expand a parsed sweep file: (runs list, or one unnamed run) x grid product,
 * in that order (run-major; within a run the last grid key varies fastest).
 * Each run's config is preset ⊕ base (deep merge) ⊕ set ⊕ run.set ⊕ grid values
 * (dotted keys, see {@link applyOverrides}), validated with the training-config
 * schema and checked against its geometry and vision layout.
 *
 * Names: the run's name (if any) and `label-value` per grid key, joined by `_`
 * and sanitised ({@link sanitizeName}), e.g. `transformer_lambda-0.01`; a
 * lone unnamed run without a grid is called `run`.
 *
 * @throws One line naming the run and the field, for the first invalid run;
 *   or when two runs end up with the same name.
 */
export function expandSweep(file: SweepFile, source = "sweep file"): SweepPlan {
  let base: unknown = file.preset ? structuredClone(PRESETS[file.preset]) : {};
  if (file.base) base = mergeConfig(base, file.base);
  base = applyOverrides(base, Object.entries(file.set ?? {}));

  const gridKeys = Object.keys(file.grid ?? {});
  const labels = gridKeyLabels(gridKeys);
  const combos = gridProduct(file.grid ?? {});
  const variants = file.runs ?? [{ name: undefined, set: undefined }];
  const seeds: (number | null)[] = file.seeds ?? [null];
  if (file.seeds && (gridKeys.includes("seed") || "seed" in (file.set ?? {}) || variants.some((v) => v.set && "seed" in v.set))) {
    throw new Error(`invalid ${source}: sweep.seeds replicates every run over its seeds; remove "seed" from set, runs and grid`);
  }

  const runs: PlannedRun[] = [];
  const byName = new Map<string, number>();
  variants.forEach((variant, v) => {
    const runSet = variant.set ?? {};
    for (const key of gridKeys) {
      if (key in runSet) throw new Error(`invalid ${source}: sweep.runs[${v}].set["${key}"] is also a grid key; remove one of them`);
    }
    for (const combo of combos) for (const seed of seeds) {
      const parts = [
        ...(variant.name !== undefined ? [variant.name] : []),
        ...gridKeys.map((k, i) => `${labels[i]}-${valueLabel(combo[k])}`),
        ...(seed !== null ? [`seed-${seed}`] : []),
      ];
      const name = parts.length === 0 ? "run" : sanitizeName(parts.join("_"));
      const index = runs.length;
      const previous = byName.get(name);
      if (previous !== undefined) {
        throw new Error(`invalid ${source}: runs ${previous} and ${index} are both named "${name}"; give the runs (or grid values) distinct names`);
      }
      byName.set(name, index);
      const overrides = seed !== null ? { ...runSet, ...combo, seed } : { ...runSet, ...combo };
      const config = resolveRunConfig(applyOverrides(base, Object.entries(overrides)), name);
      runs.push({ index, name, overrides, seed, config });
    }
  });
  return {
    name: file.name,
    preset: file.preset ?? null,
    set: file.set ?? {},
    probe: file.probe === true ? DEFAULT_PROBE : file.probe,
    measure_images: file.measure_images,
    seeds: file.seeds ?? null,
    runs,
  };
}

/** Validate one run's config fully (schema, geometry, vision layout); errors name the run. */
function resolveRunConfig(raw: unknown, name: string): TrainConfig {
  try {
    const config = parseTrainConfig(raw);
    const { geometry } = resolveSheetConfig(config.sheet);
    visionLayout(config.vision, geometry);
    return config;
  } catch (e) {
    throw new Error(`run "${name}": ${(e as Error).message}`);
  }
}

/** Read (JSON or YAML), validate and expand a sweep file. */
export async function loadSweep(path: string): Promise<SweepPlan> {
  const source = `sweep file ${path}`;
  return expandSweep(parseSweepFile(await readConfigFile(path), source), source);
}
