/**
 * Geometry specs: the zod schema is the one definition (types inferred from it), the
 * cross-field rules (custom positions of equal length, areas covering the columns, the column
 * cap) beside it, and one parser for typed and untrusted values alike.
 */
import { z } from "zod";
import { formatFieldPath, formatValue } from "../io/schema-errors.ts";

/**
 * Most columns a geometry may have (2^24: a sparse sheet's N x K indices stay within int32 at
 * K <= 128). The dense N x N distance matrix has its own, lower limit: `MAX_DENSE_COLUMNS`.
 */
export const MAX_COLUMNS = 2 ** 24;

/** The geometry kinds, in documentation order. */
export const GEOMETRY_KINDS = ["grid", "torus", "stacked", "sphere", "custom"] as const;

const KIND_LIST = GEOMETRY_KINDS.map((k) => `"${k}"`).join(", ");

const posInt = z
  .number({ error: "must be a positive integer" })
  .int({ error: "must be a positive integer" })
  .min(1, { error: "must be a positive integer" });
const nonNegInt = z
  .number({ error: "must be a non-negative integer" })
  .int({ error: "must be a non-negative integer" })
  .min(0, { error: "must be a non-negative integer" });
const nonNegNumber = z.number({ error: "must be a finite number >= 0" }).min(0, { error: "must be a finite number >= 0" });
const positiveNumber = z.number({ error: "must be a finite number > 0" }).positive({ error: "must be a finite number > 0" });
const selfOffset = nonNegNumber.optional();

/** A named, contiguous range of columns [start, end); `grid` [rows, cols] when laid out as a grid (needed for input/output areas and sheet maps). */
const areaSchema = z.strictObject({
  name: z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" }),
  start: nonNegInt,
  end: nonNegInt,
  grid: z.tuple([posInt, posInt], { error: "must be [rows, cols] of positive integers" }).optional(),
});

const kindSchemas = {
  grid: z.strictObject({ kind: z.literal("grid"), height: posInt, width: posInt, self_offset: selfOffset }),
  torus: z.strictObject({ kind: z.literal("torus"), height: posInt, width: posInt, self_offset: selfOffset }),
  stacked: z.strictObject({
    kind: z.literal("stacked"),
    widths: z.array(posInt, { error: "must be a non-empty array of positive integers" }).min(1, { error: "must be a non-empty array of positive integers" }),
    offset: nonNegNumber.optional(),
    self_offset: selfOffset,
  }),
  sphere: z.strictObject({ kind: z.literal("sphere"), num_columns: posInt, radius: positiveNumber.optional(), self_offset: selfOffset }),
  custom: z.strictObject({
    kind: z.literal("custom"),
    positions: z
      .array(z.array(z.number({ error: "must be a finite number" }), { error: "must be an array of 1 to 3 numbers" }).min(1, { error: "must be an array of 1 to 3 numbers" }).max(3, { error: "must be an array of 1 to 3 numbers" }), {
        error: "must be a non-empty array of [x, y(, z)] rows",
      })
      .min(1, { error: "must be a non-empty array of [x, y(, z)] rows" }),
    areas: z.array(areaSchema, { error: "must be an array of {name, start, end, grid?}" }).optional(),
    metric: z.literal("euclidean", { error: 'must be "euclidean" or left out' }).optional(),
    self_offset: selfOffset,
  }),
};

/**
 * Zod schema of a geometry spec (structure and field types; unknown fields rejected):
 *
 * - `grid`: H x W unit-spaced grid centred on the origin, Euclidean distance.
 * - `torus`: the same grid with wrap-around distance on both axes.
 * - `stacked`: areas of w x w grids at linspace(-w/2, w/2, w), area i at z = i * offset (default 2).
 * - `sphere`: `num_columns` Fibonacci-lattice points on a sphere (radius default 1), geodesic distance.
 * - `custom`: explicit positions (N x k, k in 1..3) and optional areas, Euclidean distance.
 *
 * `self_offset` s >= 0 turns every distance d into sqrt(d^2 + s^2), diagonal included, so that
 * self-connections also cost. Cross-field rules: {@link geometryFromJSON}.
 */
export const geometrySpecSchema = z.discriminatedUnion(
  "kind",
  [kindSchemas.grid, kindSchemas.torus, kindSchemas.stacked, kindSchemas.sphere, kindSchemas.custom],
  { error: (iss) => (iss.code === "invalid_union" ? `must be one of ${KIND_LIST}` : undefined) },
);

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** A geometry spec as written in configs and stored in checkpoints. */
export type GeometrySpec = z.output<typeof geometrySpecSchema>;
/** The `kind` tag of a geometry spec. */
export type GeometryKind = GeometrySpec["kind"];
/** A named, contiguous range of columns [start, end). */
export type Area = z.output<typeof areaSchema>;

/**
 * Validate a spec (typed, or untrusted JSON from a config file) into a clean GeometrySpec
 * (a copy holding only the known fields).
 * Throws one line naming the bad field, e.g. `geometry.widths[1] must be a positive integer, got 0`
 * or `geometry: unknown field "foo" for kind "grid"; allowed: kind, height, width, self_offset`.
 * `where` prefixes the field names (a custom geometry file's loader passes `"FILE: "`).
 */
export function geometryFromJSON(value: unknown, where = "geometry."): GeometrySpec {
  const parsed = geometrySpecSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    // "geometry." + "positions[1]" (the path's leading "." dropped), or "geometry" for the spec itself
    const field = issue.path.length === 0 ? where.replace(/[.: ]+$/, "") : where + formatFieldPath(issue.path).replace(/^\./, "");
    if (issue.code === "unrecognized_keys") {
      const keys = issue.keys.map((k) => `"${k}"`).join(", ");
      const plural = issue.keys.length > 1 ? "s" : "";
      if (issue.path.length === 0) {
        const kind = (value as { kind: GeometryKind }).kind;
        const allowed = Object.keys(kindSchemas[kind].shape).join(", ");
        throw new Error(`${field}: unknown field${plural} ${keys} for kind "${kind}"; allowed: ${allowed}`);
      }
      throw new Error(`${field}: unknown field${plural} ${keys}; allowed: ${Object.keys(areaSchema.shape).join(", ")}`);
    }
    if (issue.path.length === 0 && issue.code === "invalid_type") {
      throw new Error(`geometry spec must be an object with a "kind" field (one of ${KIND_LIST}), got ${formatValue(value)}`);
    }
    throw new Error(`${field} ${issue.message}, got ${formatValue(valueAt(value, issue.path))}`);
  }
  const spec = parsed.data;
  let n: number;
  switch (spec.kind) {
    case "grid":
    case "torus":
      n = spec.height * spec.width;
      break;
    case "stacked":
      n = spec.widths.reduce((total, w) => total + w * w, 0);
      break;
    case "sphere":
      n = spec.num_columns;
      break;
    case "custom":
      checkPositions(spec.positions, where);
      n = spec.positions.length;
      if (spec.areas !== undefined) checkAreas(spec.areas, n, where);
      break;
  }
  if (n > MAX_COLUMNS) throw new Error(`geometry has ${n} columns, more than the ${MAX_COLUMNS} a geometry may have; use a smaller geometry`);
  return spec;
}

/** Check a geometry spec (see {@link geometryFromJSON}); throws one line naming the bad field and the fix. */
export function validateGeometrySpec(spec: unknown): asserts spec is GeometrySpec {
  geometryFromJSON(spec);
}

/**
 * The cross-field rule of custom positions (their structure is the schema's, src/geometry/spec.ts):
 * every row has as many coordinates as the first. `where` prefixes field names in errors (e.g.
 * "geometry." or "file.json: ").
 */
export function checkPositions(positions: readonly (readonly number[])[], where = "geometry."): void {
  const dim = positions[0].length;
  positions.forEach((row, i) => {
    if (row.length !== dim) throw new Error(`${where}positions[${i}] has ${row.length} coordinates but positions[0] has ${dim}; give every row the same length`);
  });
}

/**
 * The cross-field rules of areas over `n` columns (their structure is the schema's): unique names,
 * start < end, contiguous and covering [0, n) in order, grid rows * cols = end - start.
 */
export function checkAreas(areas: readonly Area[], n: number, where = "geometry."): void {
  const seen = new Set<string>();
  let expectedStart = 0;
  areas.forEach(({ name, start, end, grid }, i) => {
    const f = `${where}areas[${i}]`;
    if (seen.has(name)) throw new Error(`${f}.name "${name}" is used twice; area names must be unique`);
    seen.add(name);
    if (start !== expectedStart) {
      throw new Error(`${f}.start must be ${expectedStart} (areas must be contiguous and in order from 0), got ${start}`);
    }
    if (end <= start) throw new Error(`${f}.end must be greater than start ${start}, got ${end}`);
    if (end > n) throw new Error(`${f}.end must be at most the number of columns ${n}, got ${end}`);
    if (grid !== undefined && grid[0] * grid[1] !== end - start) {
      throw new Error(`${f}.grid ${grid[0]}x${grid[1]} has ${grid[0] * grid[1]} cells but the area has ${end - start} columns; make rows * cols = end - start`);
    }
    expectedStart = end;
  });
  if (expectedStart !== n) {
    throw new Error(`${where}areas must cover all ${n} columns, but the last area ends at ${expectedStart}`);
  }
}
