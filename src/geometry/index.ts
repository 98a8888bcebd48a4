/** Column geometry: positions, named areas, the metric that feeds the wiring cost, connectivity samplers. */
export type { Area, ColumnLayout, Geometry, GeometryKind, GeometrySpec } from "./types.ts";
export { areaByName, buildGeometry, describeGeometry } from "./build.ts";
export { GEOMETRY_KINDS, MAX_COLUMNS, checkAreas, checkPositions, geometryFromJSON, geometrySpecSchema, validateGeometrySpec } from "./spec.ts";
export { gridLayout } from "./grid.ts";
export { torusDistance } from "./torus.ts";
export { DEFAULT_STACK_OFFSET, linspace, stackedLayout } from "./stacked.ts";
export { GOLDEN_ANGLE, fibonacciSphere, geodesicDistance, sphereLayout } from "./sphere.ts";
export {
  customLayout,
  loadCustomGeometry,
  parseCustomCSV,
  parseCustomJSON,
} from "./custom.ts";
export type { CustomGeometryData } from "./custom.ts";
export {
  MAX_DENSE_COLUMNS,
  columnDistance,
  distanceMatrix,
  distanceRow,
  euclideanMetric,
  geometryMetric,
  type ColumnMetric,
  type Positions,
} from "./metric.ts";
// Connectivity samplers (K sources per column) and learned positions
export {
  connectionDistances,
  connectivityFromFile,
  localConnectivity,
  parseConnectivity,
  smallWorldConnectivity,
  validateConnectivity,
  type Connectivity,
} from "./connectivity.ts";
export {
  constrainPositions,
  medianSpacing,
  positionDistances,
  positionSpace,
  repulsion,
  withLearnedPositions,
  type PositionSpace,
} from "./learned.ts";

