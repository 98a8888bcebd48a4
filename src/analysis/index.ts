/** `columnformer/analysis`: probes, lesions, connectivity, graph, topography and selectivity metrics (with their references), reports. */
export { linearProbe, type ProbeOptions, type ProbeResult } from "./linear-probe.ts";
export { collectActivity, meanAttentionMaps, type SheetActivity } from "./collect.ts";
export { analyzeActivity, DEFAULT_ANALYSIS_OPTIONS, type AnalysisOptions, type AnalysisResult } from "./analyze.ts";
export * from "./connectivity.ts";
export * from "./graph.ts";
export * from "./topography.ts";
export { weightSimilarityVsDistance, type ColumnWeights, type WeightSimilarityCurve } from "./weight-similarity.ts";
export { writeReport } from "./report.ts";
export * from "./smoothness.ts";
export * from "./moran.ts";
export * from "./selectivity.ts";
export * from "./population.ts";
export * from "./orientation.ts";
export { fieldTopography, DEFAULT_FIELD_OPTIONS, FIELD_REFERENCES, type FieldOptions, type FieldResult, type AreaField, type GratingActivity } from "./field.ts";
export * from "./lesion.ts";

