/**
 * Training configuration: a preset, then a config file, then command-line
 * overrides, validated by one schema (unknown or mistyped fields are errors
 * naming the field).
 */
import { z } from "zod";
import { dataSpecSchema } from "../data/index.ts";
import { formatSchemaError } from "../io/schema-errors.ts";
import { sheetConfigSchema } from "../model/config.ts";
import { visionConfigSchema } from "../model/vision-config.ts";

const positiveInt = z.number().int().positive();

/**
 * How a penalty's coefficient changes over training: `constant`; `warmup`
 * (linear from 0 over warmup_fraction of the steps, then constant); `cosine`
 * (the same warm-up, then cosine decay to final_fraction of the coefficient).
 */
export const penaltyScheduleSchema = z
  .object({
    kind: z.enum(["constant", "warmup", "cosine"]).default("constant"),
    warmup_fraction: z.number().min(0).max(1).default(0.1),
    final_fraction: z.number().min(0).max(1).default(0),
  })
  .strict();

/**
 * Wiring cost in the loss; lambda 0 turns it off. `communicability` is the seRNN cost
 * (src/objectives/communicability.ts): the L1 weights (with `p`) times the communicability of
 * the batch- and step-mean attention; dense sheets only.
 */
export const wiringConfigSchema = z
  .object({
    form: z.enum(["l1", "cross_entropy", "communicability"]).default("l1"),
    lambda: z.number().nonnegative().default(0),
    p: z.number().positive().default(1),
    sigma: z.number().positive().default(2),
    schedule: penaltyScheduleSchema.default(penaltyScheduleSchema.parse({})),
  })
  .strict();

/** Feature-consistency penalty (src/objectives/feature-consistency.ts); coef 0 turns it off. */
export const consistencyConfigSchema = z
  .object({
    coef: z.number().nonnegative().default(0),
    /** Each column is pulled towards its this many nearest columns. */
    neighbours: positiveInt.default(4),
    schedule: penaltyScheduleSchema.default(penaltyScheduleSchema.parse({})),
  })
  .strict();

/**
 * TDANN's activation-correlation spatial loss on the final column states
 * (src/objectives/spatial-correlation.ts); coef 0 turns it off (and it is not computed).
 */
export const spatialCorrelationConfigSchema = z
  .object({
    coef: z.number().nonnegative().default(0),
    /** Random neighbourhoods per optimiser step. */
    neighbourhoods: positiveInt.default(4),
    /** Columns per neighbourhood: a centre and its nearest columns in its own area (>= 3). */
    size: positiveInt.default(9),
    schedule: penaltyScheduleSchema.default(penaltyScheduleSchema.parse({})),
  })
  .strict();

/**
 * TopoLoss-style weight-blur smoothness of the untied weights (src/objectives/topo-blur.ts);
 * coef 0 turns it off (and it is not computed).
 */
export const topoBlurConfigSchema = z
  .object({
    coef: z.number().nonnegative().default(0),
    /** "gaussian" (any geometry) or "resample" (TopoLoss's bilinear down- and up-sampling; grid areas). */
    kernel: z.enum(["gaussian", "resample"]).default("gaussian"),
    /** Gaussian width in distance units. */
    sigma: z.number().positive().default(1),
    /** Resampling factor (the grid shrinks by it, then is resized back). */
    factor: z.number().gt(1).default(2),
    schedule: penaltyScheduleSchema.default(penaltyScheduleSchema.parse({})),
  })
  .strict();

/** Activation-sparsity penalty: coef * mean |x| of the column states after every step; coef 0 turns it off. */
export const activationSparsityConfigSchema = z
  .object({
    coef: z.number().nonnegative().default(0),
    schedule: penaltyScheduleSchema.default(penaltyScheduleSchema.parse({})),
  })
  .strict();

/** Training of learned column positions (sheet.learn_positions; src/geometry/learned.ts). */
export const positionsConfigSchema = z
  .object({
    /** Learning rate of the positions relative to optim.lr. */
    lr_scale: z.number().positive().default(10),
    /** Weight of the repulsion that keeps columns apart. */
    repulsion: z.number().nonnegative().default(1),
    /** Spacing below which columns repel; null: half the geometry's median nearest-neighbour distance. */
    min_spacing: z.number().positive().nullable().default(null),
  })
  .strict();

/** AdamW with a cosine schedule and linear warm-up. */
export const optimConfigSchema = z
  .object({
    lr: z.number().positive().default(1e-3),
    final_lr_fraction: z.number().min(0).max(1).default(0.05),
    warmup_fraction: z.number().min(0).max(1).default(0.1),
    weight_decay: z.number().nonnegative().default(0.05),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.95),
    eps: z.number().positive().default(1e-8),
    clip_norm: z.number().positive().nullable().default(1.0),
  })
  .strict();

/** A whole training run. */
export const trainConfigSchema = z
  .object({
    sheet: sheetConfigSchema,
    vision: visionConfigSchema.default(visionConfigSchema.parse({})),
    data: dataSpecSchema.default({ kind: "mnist" }),
    wiring: wiringConfigSchema.default(wiringConfigSchema.parse({})),
    consistency: consistencyConfigSchema.default(consistencyConfigSchema.parse({})),
    activation_sparsity: activationSparsityConfigSchema.default(activationSparsityConfigSchema.parse({})),
    spatial_correlation: spatialCorrelationConfigSchema.default(spatialCorrelationConfigSchema.parse({})),
    topo_blur: topoBlurConfigSchema.default(topoBlurConfigSchema.parse({})),
    positions: positionsConfigSchema.default(positionsConfigSchema.parse({})),
    optim: optimConfigSchema.default(optimConfigSchema.parse({})),
    /** Fraction of patches masked per image (MIM). */
    mask_ratio: z.number().gt(0).lt(1).default(0.75),
    batch_size: positiveInt.default(64),
    /** Micro-batches whose gradients are summed before one optimiser step (effective batch = batch_size * accum_steps). */
    accum_steps: positiveInt.default(1),
    steps: positiveInt.default(1000),
    /** Random resized crop + flip on training images (off for digits). */
    augment: z.boolean().default(false),
    /** Crop scale range of the random resized crop. */
    crop_scale: z.tuple([z.number().gt(0).max(1), z.number().gt(0).max(1)]).default([0.35, 1]),
    hflip: z.boolean().default(true),
    eval_every: positiveInt.default(250),
    /** Held-out images used by periodic and final evaluation (the first ones of the test split). */
    eval_images: positiveInt.default(1000),
    checkpoint_every: positiveInt.default(500),
    /** Steps per log record (their mean metrics): the train state is read from the device once per record. */
    log_every: positiveInt.default(1),
    seed: z.number().int().default(0),
  })
  .strict();

/** A training config as a user writes it. */
export type TrainConfigInput = z.input<typeof trainConfigSchema>;
/** A resolved training config (defaults filled). */
export type TrainConfig = z.output<typeof trainConfigSchema>;

/** Validate a training config; one line naming the bad field on error. */
export function parseTrainConfig(value: unknown): TrainConfig {
  const parsed = trainConfigSchema.safeParse(value);
  if (!parsed.success) throw new Error(`invalid training config: ${formatSchemaError(parsed.error, "config")}`);
  return parsed.data;
}
