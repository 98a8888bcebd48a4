/** Build a geometry from its spec: validate, lay out the columns and name the areas. */
import { customLayout } from "./custom.ts";
import { gridLayout } from "./grid.ts";
import { sphereLayout } from "./sphere.ts";
import { geometryFromJSON, type Area, type GeometrySpec } from "./spec.ts";
import { DEFAULT_STACK_OFFSET, stackedLayout } from "./stacked.ts";
import type { ColumnLayout, Geometry } from "./types.ts";

/**
 * Validate `spec` and build its geometry: positions and areas. Distances come from the
 * geometry's metric (metric.ts), the dense N x N matrix only on demand.
 */
export function buildGeometry(input: GeometrySpec): Geometry {
  const spec = geometryFromJSON(input);
  const layout = layoutOf(spec);
  return { spec, numColumns: layout.numColumns, positions: layout.positions, positionDim: layout.positionDim, areas: layout.areas };
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

