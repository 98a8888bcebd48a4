/** Column geometry: positions, named areas and the distance matrix that feeds the wiring cost. */
export type { Area, ColumnLayout, Geometry, GeometryKind, GeometrySpec } from "./types.ts";
export {
  GEOMETRY_KINDS,
  MAX_COLUMNS,
  areaByName,
  buildGeometry,
  describeGeometry,
  geometryFromJSON,
  geometrySpecSchema,
  validateGeometrySpec,
} from "./build.ts";
export { euclideanDistances, gridLayout } from "./grid.ts";
export { torusDistance, torusDistances } from "./torus.ts";
export { DEFAULT_STACK_OFFSET, linspace, stackedLayout } from "./stacked.ts";
export { GOLDEN_ANGLE, fibonacciSphere, geodesicDistance, geodesicDistances, sphereLayout } from "./sphere.ts";
export {
  checkAreas,
  checkPositions,
  customLayout,
  loadCustomGeometry,
  parseCustomCSV,
  parseCustomJSON,
} from "./custom.ts";
export type { CustomGeometryData } from "./custom.ts";
// Connectivity samplers (K sources per column) and learned positions
export {
  connectionDistances,
  connectivityFromFile,
  localConnectivity,
  nearestByDistanceMatrix,
  parseConnectivity,
  smallWorldByDistanceMatrix,
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

