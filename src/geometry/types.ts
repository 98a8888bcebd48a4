/**
 * Column geometry: where the columns of the sheet sit in space and which named areas
 * (index ranges) they form. How far apart they are: metric.ts.
 */

import type { Area, GeometrySpec } from "./spec.ts";

export type { Area, GeometryKind, GeometrySpec } from "./spec.ts";

/** A built geometry. Plain data; every field derives from `spec`. */
export interface Geometry {
  spec: GeometrySpec;
  numColumns: number;
  /** Coordinates per column: [numColumns, positionDim], row-major. */
  positions: Float64Array;
  positionDim: number;
  /** Named areas, in order, covering all columns. */
  areas: Area[];
}

/** Where the columns sit, before distances: the output of one layout function. */
export interface ColumnLayout {
  numColumns: number;
  /** [numColumns, positionDim], row-major. */
  positions: Float64Array;
  positionDim: number;
  areas: Area[];
}
