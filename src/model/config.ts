/**
 * Configuration of the column sheet, validated by a schema. Field names are
 * snake_case because they are stored verbatim in checkpoints and config files
 * and match the earlier Python model.
 */
import { z } from "zod";
import { buildGeometry, geometrySpecSchema } from "../geometry/index.ts";
import type { Geometry, GeometrySpec } from "../geometry/index.ts";

const positiveInt = z.number().int().positive();

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
}

/** Format a zod error as one line naming the field, e.g. `config.depth: expected number`. */
export function formatSchemaError(error: z.ZodError, root: string): string {
  const issue = error.issues[0];
  const where = [root, ...issue.path.map(String)].join(".");
  return `${where}: ${issue.message}`;
}

/**
 * Validate and resolve a sheet config. Throws one clear line naming the bad
 * field. Returns the resolved config and its built geometry.
 */
export function resolveSheetConfig(input: unknown): { config: SheetConfig; geometry: Geometry } {
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
  const config: SheetConfig = {
    ...c,
    geometry: c.geometry as GeometrySpec,
    num_columns: geometry.numColumns,
    attn_scale: c.attn_scale ?? c.qk_dim ** -0.5,
  };
  return { config, geometry };
}
