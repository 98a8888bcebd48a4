/**
 * Column geometry: where the columns of the sheet sit in space and which named areas
 * (index ranges) they form. How far apart they are: metric.ts.
 */

/** A named, contiguous range of columns [start, end). */
export interface Area {
  name: string;
  start: number;
  end: number;
  /** [rows, cols] when the area is laid out as a grid (needed for input/output areas and sheet maps). */
  grid?: [number, number];
}

/**
 * JSON-serialisable description of a geometry (stored in configs and checkpoints).
 *
 * - `grid`: H x W unit-spaced grid centred on the origin, Euclidean distance.
 * - `torus`: the same grid with wrap-around distance on both axes.
 * - `stacked`: areas of w x w grids at linspace(-w/2, w/2, w), area i at z = i * offset (default 2).
 * - `sphere`: `num_columns` Fibonacci-lattice points on a sphere (radius default 1), geodesic distance.
 * - `custom`: explicit positions (N x k, k in 1..3) and optional areas, Euclidean distance.
 *
 * `self_offset` s >= 0 turns every distance d into sqrt(d^2 + s^2), diagonal included,
 * so that self-connections also cost.
 */
export type GeometrySpec =
  | { kind: "grid"; height: number; width: number; self_offset?: number }
  | { kind: "torus"; height: number; width: number; self_offset?: number }
  | { kind: "stacked"; widths: number[]; offset?: number; self_offset?: number }
  | { kind: "sphere"; num_columns: number; radius?: number; self_offset?: number }
  | { kind: "custom"; positions: number[][]; areas?: Area[]; metric?: "euclidean"; self_offset?: number };

/** The `kind` tag of a geometry spec. */
export type GeometryKind = GeometrySpec["kind"];

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
