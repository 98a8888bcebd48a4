/** Build a geometry from its spec: validate, lay out the columns and name the areas. */
import { z } from "zod";
import { formatFieldPath } from "../io/schema-errors.ts";
import { checkAreas, checkPositions, customLayout, formatValue } from "./custom.ts";
import { gridLayout } from "./grid.ts";
import { sphereLayout } from "./sphere.ts";
import { DEFAULT_STACK_OFFSET, stackedLayout } from "./stacked.ts";
import type { Area, ColumnLayout, Geometry, GeometryKind, GeometrySpec } from "./types.ts";

/** The geometry kinds, in documentation order. */
export const GEOMETRY_KINDS: readonly GeometryKind[] = ["grid", "torus", "stacked", "sphere", "custom"];

/**
 * Most columns a geometry may have (2^24: a sparse sheet's N x K indices stay within int32 at
 * K <= 128). The dense N x N distance matrix has its own, lower limit: `MAX_DENSE_COLUMNS`.
 */
export const MAX_COLUMNS = 2 ** 24;

const KIND_LIST = GEOMETRY_KINDS.map((k) => `"${k}"`).join(", ");

function fail(field: string, what: string, value: unknown): never {
  throw new Error(`geometry.${field} must be ${what}, got ${formatValue(value)}`);
}

function checkPositiveInt(obj: Record<string, unknown>, field: string): number {
  const v = obj[field];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) fail(field, "a positive integer", v);
  return v;
}

function checkOptionalNumber(obj: Record<string, unknown>, field: string, positive: boolean): void {
  const v = obj[field];
  if (v === undefined) return;
  if (typeof v !== "number" || !Number.isFinite(v) || (positive ? v <= 0 : v < 0)) {
    fail(field, positive ? "a finite number > 0" : "a finite number >= 0", v);
  }
}

/**
 * Check an untrusted spec's values (positive integer sizes, finite numbers, non-empty widths,
 * well-formed custom positions and areas). Throws one line naming the bad field and the fix.
 * Extra fields are ignored here; `geometryFromJSON` rejects them.
 */
export function validateGeometrySpec(spec: unknown): asserts spec is GeometrySpec {
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new Error(`geometry spec must be an object with a "kind" field (one of ${KIND_LIST}), got ${formatValue(spec)}`);
  }
  const s = spec as Record<string, unknown>;
  let n: number;
  switch (s.kind) {
    case "grid":
    case "torus":
      n = checkPositiveInt(s, "height") * checkPositiveInt(s, "width");
      break;
    case "stacked": {
      const widths = s.widths;
      if (!Array.isArray(widths) || widths.length === 0) fail("widths", "a non-empty array of positive integers, e.g. [8, 12, 16]", widths);
      n = 0;
      widths.forEach((w: unknown, i) => {
        if (typeof w !== "number" || !Number.isInteger(w) || w < 1) fail(`widths[${i}]`, "a positive integer", w);
        n += w * w;
      });
      checkOptionalNumber(s, "offset", false);
      break;
    }
    case "sphere":
      n = checkPositiveInt(s, "num_columns");
      checkOptionalNumber(s, "radius", true);
      break;
    case "custom":
      checkPositions(s.positions, "geometry.");
      n = (s.positions as unknown[]).length;
      if (s.areas !== undefined) checkAreas(s.areas, n, "geometry.");
      if (s.metric !== undefined && s.metric !== "euclidean") fail("metric", '"euclidean" (the only metric for custom positions) or left out', s.metric);
      break;
    default:
      fail("kind", `one of ${KIND_LIST}`, s.kind);
  }
  checkOptionalNumber(s, "self_offset", false);
  if (n > MAX_COLUMNS) {
    throw new Error(`geometry has ${n} columns, more than the ${MAX_COLUMNS} a geometry may have; use a smaller geometry`);
  }
}

/** A copy of a validated spec holding only its known fields. */
function cleanSpec(spec: GeometrySpec): GeometrySpec {
  const so = spec.self_offset !== undefined ? { self_offset: spec.self_offset } : {};
  switch (spec.kind) {
    case "grid":
    case "torus":
      return { kind: spec.kind, height: spec.height, width: spec.width, ...so };
    case "stacked":
      return { kind: "stacked", widths: [...spec.widths], ...(spec.offset !== undefined ? { offset: spec.offset } : {}), ...so };
    case "sphere":
      return { kind: "sphere", num_columns: spec.num_columns, ...(spec.radius !== undefined ? { radius: spec.radius } : {}), ...so };
    case "custom": {
      const areas = spec.areas ? { areas: customLayout(spec.positions, spec.areas).areas } : {};
      return { kind: "custom", positions: spec.positions.map((r) => [...r]), ...areas, ...(spec.metric ? { metric: spec.metric } : {}), ...so };
    }
  }
}

/**
 * Validate `spec` and build its geometry: positions and areas. Distances come from the
 * geometry's metric (metric.ts), the dense N x N matrix only on demand.
 */
export function buildGeometry(spec: GeometrySpec): Geometry {
  validateGeometrySpec(spec);
  const layout = layoutOf(spec);
  return { spec: cleanSpec(spec), numColumns: layout.numColumns, positions: layout.positions, positionDim: layout.positionDim, areas: layout.areas };
}

function layoutOf(spec: GeometrySpec): ColumnLayout {
  switch (spec.kind) {
    case "grid":
    case "torus":
      return gridLayout(spec.height, spec.width);
    case "stacked":
      return stackedLayout(spec.widths, spec.offset ?? DEFAULT_STACK_OFFSET);
    case "sphere":
      return sphereLayout(spec.num_columns, spec.radius ?? 1);
    case "custom":
      return customLayout(spec.positions, spec.areas);
  }
}

/** The area called `name`; throws listing the available area names when there is none. */
export function areaByName(g: Geometry, name: string): Area {
  const area = g.areas.find((a) => a.name === name);
  if (!area) {
    throw new Error(`no area named "${name}" in this geometry; available: ${g.areas.map((a) => `"${a.name}"`).join(", ")}`);
  }
  return area;
}

/** One short human line, e.g. `stacked areas [8, 12, 16] (464 columns, offset 2, self offset 0)`. */
export function describeGeometry(g: Geometry): string {
  const spec = g.spec;
  const n = `${g.numColumns} column${g.numColumns === 1 ? "" : "s"}`;
  const so = `self offset ${spec.self_offset ?? 0}`;
  switch (spec.kind) {
    case "grid":
    case "torus":
      return `${spec.kind} ${spec.height}x${spec.width} (${n}, ${so})`;
    case "stacked":
      return `stacked areas [${spec.widths.join(", ")}] (${n}, offset ${spec.offset ?? DEFAULT_STACK_OFFSET}, ${so})`;
    case "sphere":
      return `sphere (${n}, radius ${spec.radius ?? 1}, ${so})`;
    case "custom":
      return `custom ${g.positionDim}-D positions (${n}, ${g.areas.length} area${g.areas.length === 1 ? "" : "s"}, ${so})`;
  }
}

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
 * Zod schema of a geometry spec (structure and field types; unknown fields rejected).
 * Cross-field checks (area contiguity, equal row lengths) are done by `validateGeometrySpec`.
 */
export const geometrySpecSchema = z.discriminatedUnion(
  "kind",
  [kindSchemas.grid, kindSchemas.torus, kindSchemas.stacked, kindSchemas.sphere, kindSchemas.custom],
  { error: (iss) => (iss.code === "invalid_union" ? `must be one of ${KIND_LIST}` : undefined) },
);

// Compile-time check: what the schema accepts is a GeometrySpec.
const _schemaMatchesSpec = (v: z.output<typeof geometrySpecSchema>): GeometrySpec => v;
void _schemaMatchesSpec;

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/**
 * Validate an untrusted JSON value (e.g. from a config file) into a GeometrySpec.
 * Throws one line naming the bad field, e.g. `geometry.widths[1] must be a positive integer, got 0`
 * or `geometry: unknown field "foo" for kind "grid"; allowed: kind, height, width, self_offset`.
 */
export function geometryFromJSON(value: unknown): GeometrySpec {
  const parsed = geometrySpecSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = `geometry${formatFieldPath(issue.path)}`;
    if (issue.code === "unrecognized_keys") {
      const keys = issue.keys.map((k) => `"${k}"`).join(", ");
      const plural = issue.keys.length > 1 ? "s" : "";
      if (issue.path.length === 0) {
        const kind = (value as { kind: GeometryKind }).kind;
        const allowed = Object.keys(kindSchemas[kind].shape).join(", ");
        throw new Error(`${where}: unknown field${plural} ${keys} for kind "${kind}"; allowed: ${allowed}`);
      }
      throw new Error(`${where}: unknown field${plural} ${keys}; allowed: ${Object.keys(areaSchema.shape).join(", ")}`);
    }
    if (issue.path.length === 0 && issue.code === "invalid_type") {
      throw new Error(`geometry spec must be an object with a "kind" field (one of ${KIND_LIST}), got ${formatValue(value)}`);
    }
    throw new Error(`${where} ${issue.message}, got ${formatValue(valueAt(value, issue.path))}`);
  }
  const spec = parsed.data as GeometrySpec;
  validateGeometrySpec(spec);
  return spec;
}
