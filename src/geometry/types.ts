/**
 * Column geometry: where the columns of the sheet sit in space, how far apart
 * they are, and which named areas (index ranges) they form.
 */

/** A named, contiguous range of columns [start, end). */
export interface Area {
  name: string;
  start: number;
  end: number;
  /** [rows, cols] when the area is laid out as a grid (needed for input/output areas and sheet maps). */
  grid?: [number, number];
}

/** JSON-serialisable description of a geometry (stored in configs and checkpoints). */
export type GeometrySpec =
  | { kind: "grid"; height: number; width: number; self_offset?: number }
  | { kind: "torus"; height: number; width: number; self_offset?: number }
  | { kind: "stacked"; widths: number[]; offset?: number; self_offset?: number }
  | { kind: "sphere"; num_columns: number; radius?: number; self_offset?: number }
  | { kind: "custom"; positions: number[][]; areas?: Area[]; metric?: "euclidean"; self_offset?: number };

/** A built geometry. Plain data; every field derives from `spec`. */
export interface Geometry {
  spec: GeometrySpec;
  numColumns: number;
  /** Coordinates per column: [numColumns, positionDim], row-major. */
  positions: Float64Array;
  positionDim: number;
  /** Named areas, in order, covering all columns. */
  areas: Area[];
  /** Pairwise distances [numColumns, numColumns], row-major, self_offset applied. */
  distances: Float32Array;
}
