/**
 * Configuration of the column sheet, validated by a schema. Field names are
 * snake_case because they are stored verbatim in checkpoints and config files
 * and match the earlier Python model.
 */
import { z } from "zod";
import { formatSchemaError } from "../io/schema-errors.ts";
import { connectivityFromFile } from "../geometry/connectivity.ts";
import { buildGeometry, geometrySpecSchema } from "../geometry/index.ts";
import type { Geometry, GeometrySpec } from "../geometry/index.ts";

const positiveInt = z.number().int().positive();

/**
 * Which source columns each column attends to. `dense`: all N (attention [N, N]). Sparse kinds
 * give every column K sources (attention [N, K], see src/model/sheet-connectivity.ts):
 * `local`: itself and its k - 1 nearest columns by the geometry's distances;
 * `small_world`: the k_local nearest, then k_long distinct far sources drawn uniformly
 * (decay 0) or with probability proportional to d^-decay, deterministic per `seed`;
 * `file`: explicit index lists (JSON `{"indices": [[...], ...]}` or CSV, one row per column);
 * `k` is filled in from the file when the config is resolved.
 */
export const connectivitySpecSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("dense") }).strict(),
  z.object({ kind: z.literal("local"), k: positiveInt }).strict(),
  z
    .object({
      kind: z.literal("small_world"),
      k_local: positiveInt,
      k_long: z.number().int().nonnegative(),
      decay: z.number().nonnegative().optional(),
      seed: z.number().int().optional(),
    })
    .strict(),
  z.object({ kind: z.literal("file"), path: z.string().min(1), k: positiveInt.optional() }).strict(),
]);

/** A connectivity spec (see connectivitySpecSchema). */
export type ConnectivitySpec = z.infer<typeof connectivitySpecSchema>;

/** Schema of a sheet config as written by a user (defaults filled in, unknown fields rejected). */
export const sheetConfigSchema = z
  .object({
    /** Where the columns sit; `num_columns` follows from it. */
    geometry: geometrySpecSchema,
    /** Number of columns N. Optional in user configs (derived from the geometry); must agree when given. */
    num_columns: positiveInt.optional(),
    /** Width D of each column's state. */
    dim: positiveInt.default(128),
    /** Query/key width of each attention head. */
    qk_dim: positiveInt.default(32),
    /** Attention heads; each mixes D / heads of the value features (D must divide by heads). */
    heads: positiveInt.default(1),
    /** Hidden width of each column's MLP. */
    mlp_dim: positiveInt.default(128),
    /** Steps: the one sheet is applied `depth` times (recurrent), or `depth` separate blocks in a stack. */
    depth: positiveInt.default(4),
    /** One block reused at every step (a Columnformer) or `depth` blocks with their own weights (a transformer stack). */
    recurrent: z.boolean().default(true),
    /** Each column has its own LayerNorm affine (true) or all columns share one (false). */
    untie_norm: z.boolean().default(true),
    /** Each column has its own attention projections (true) or all columns share them (false). */
    untie_attn: z.boolean().default(true),
    /** Each column has its own MLP (true) or all columns share one (false, as in a transformer). */
    untie_mlp: z.boolean().default(true),
    /** Value and output projections in attention (a transformer's); without them the value is the normed state. */
    value_proj: z.boolean().default(false),
    /** A learned N x N attention bias (a per-connection prior); false removes it. */
    attn_bias: z.boolean().default(true),
    /** Residual around attention (x = x + attn) when true; x = attn when false. */
    skip_attn: z.boolean().default(true),
    /** Scale of q.k scores; null means qk_dim^-1/2. */
    attn_scale: z.number().positive().nullable().default(null),
    /** LayerNorm epsilon. */
    norm_eps: z.number().positive().default(1e-5),
    /** Column positions are trainable parameters (a learned geometry; see src/geometry/learned.ts). */
    learn_positions: z.boolean().default(false),
    /** Attention-bias initialisation: local Gaussian in distance, or zeros. */
    attn_bias_init: z.enum(["local", "zeros"]).default("local"),
    /** Width sigma of the local Gaussian: bias = max(-d^2 / (2 sigma^2), -8). */
    attn_bias_sigma: z.number().positive().default(2),
    /** Which columns attend to which: dense (all N) or K sources per column (see connectivitySpecSchema). */
    connectivity: connectivitySpecSchema.default({ kind: "dense" }),
  })
  .strict();

/** A sheet config as a user writes it (optional fields may be left out). */
export type SheetConfigInput = z.input<typeof sheetConfigSchema>;

/** A resolved sheet config: every field present, `num_columns` and `attn_scale` filled in. */
export interface SheetConfig {
  geometry: GeometrySpec;
  num_columns: number;
  dim: number;
  qk_dim: number;
  heads: number;
  mlp_dim: number;
  depth: number;
  recurrent: boolean;
  untie_norm: boolean;
  untie_attn: boolean;
  untie_mlp: boolean;
  value_proj: boolean;
  attn_bias: boolean;
  skip_attn: boolean;
  attn_scale: number;
  norm_eps: number;
  learn_positions: boolean;
  attn_bias_init: "local" | "zeros";
  attn_bias_sigma: number;
  /** Dense when absent. A resolved `file` spec carries its `k`. */
  connectivity?: ConnectivitySpec;
}

/** Sources per column K of a sparse sheet, or null for a dense one. */
export function connectivityK(config: Pick<SheetConfig, "connectivity">): number | null {
  const c = config.connectivity;
  if (!c || c.kind === "dense") return null;
  if (c.kind === "local") return c.k;
  if (c.kind === "small_world") return c.k_local + c.k_long;
  if (c.k === undefined) throw new Error(`config.connectivity: the file spec has no k; resolve the config first (resolveSheetConfig)`);
  return c.k;
}

/**
 * Validate and resolve a sheet config. Throws one clear line naming the bad
 * field. Returns the resolved config and its built geometry.
 */
export function resolveSheetConfig(input: unknown, options: { readFiles?: boolean } = {}): { config: SheetConfig; geometry: Geometry } {
  const parsed = sheetConfigSchema.safeParse(input);
  if (!parsed.success) throw new Error(`invalid config: ${formatSchemaError(parsed.error, "config")}`);
  const c = parsed.data;
  const geometry = buildGeometry(c.geometry);
  if (c.num_columns !== undefined && c.num_columns !== geometry.numColumns) {
    throw new Error(
      `invalid config: num_columns is ${c.num_columns} but the geometry has ${geometry.numColumns} columns; ` +
        `drop num_columns or make them agree`,
    );
  }
  if (c.dim % c.heads !== 0) {
    throw new Error(`invalid config: dim ${c.dim} is not divisible by heads ${c.heads}; each head mixes dim / heads features`);
  }
  const connectivity = resolveConnectivitySpec(c.connectivity, geometry.numColumns, c.learn_positions, options.readFiles ?? true);
  const config: SheetConfig = {
    ...c,
    connectivity,
    geometry: c.geometry as GeometrySpec,
    num_columns: geometry.numColumns,
    attn_scale: c.attn_scale ?? c.qk_dim ** -0.5,
  };
  return { config, geometry };
}

/**
 * Check a connectivity spec against N columns (one-line errors naming the field); a file spec
 * gets its k. `readFiles` false (a config stored in a checkpoint, whose connectivity is its
 * own tensor): a file spec must carry its k, and its path is never opened.
 */
function resolveConnectivitySpec(spec: ConnectivitySpec, n: number, learnPositions: boolean, readFiles: boolean): ConnectivitySpec {
  if (spec.kind === "dense") return spec;
  if (learnPositions) {
    throw new Error(`invalid config: connectivity is ${spec.kind} but learn_positions is true; learned positions need a dense sheet (sparse connections are fixed at init)`);
  }
  if (spec.kind === "local" && spec.k > n) {
    throw new Error(`invalid config: connectivity.k is ${spec.k} but the sheet has ${n} columns; k counts the column itself, so k <= ${n}`);
  }
  if (spec.kind === "small_world" && spec.k_local + spec.k_long > n) {
    throw new Error(`invalid config: connectivity.k_local + connectivity.k_long is ${spec.k_local + spec.k_long} but the sheet has ${n} columns; every row needs distinct sources`);
  }
  if (spec.kind === "file") {
    if (spec.k !== undefined) return spec; // resolved before (e.g. stored in a checkpoint): the file is not read again
    if (!readFiles) {
      throw new Error(
        `invalid config: connectivity is a file spec without k (path ${JSON.stringify(spec.path)}); a stored config's connectivity comes from its sheet.connectivity tensor and no file it names is read`,
      );
    }
    let k: number;
    try {
      k = connectivityFromFile(spec.path, n).k;
    } catch (e) {
      throw new Error(`invalid config: connectivity.path: ${(e as Error).message}`);
    }
    return { ...spec, k };
  }
  return spec;
}
