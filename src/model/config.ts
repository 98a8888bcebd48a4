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
    /** Query/key width of the single attention head. */
    qk_dim: positiveInt.default(32),
    /** Hidden width of each column's MLP. */
    mlp_dim: positiveInt.default(128),
    /** Recurrent steps: the one sheet is applied `depth` times. */
    depth: positiveInt.default(4),
    /** Residual around attention (x = x + attn) when true; x = attn when false. */
    skip_attn: z.boolean().default(true),
    /** Scale of q.k scores; null means qk_dim^-1/2. */
    attn_scale: z.number().positive().nullable().default(null),
    /** LayerNorm epsilon. */
    norm_eps: z.number().positive().default(1e-5),
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
  mlp_dim: number;
  depth: number;
  skip_attn: boolean;
  attn_scale: number;
  norm_eps: number;
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
  const config: SheetConfig = {
    ...c,
    geometry: c.geometry as GeometrySpec,
    num_columns: geometry.numColumns,
    attn_scale: c.attn_scale ?? c.qk_dim ** -0.5,
  };
  return { config, geometry };
}
