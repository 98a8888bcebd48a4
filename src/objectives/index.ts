/** `columnformer/objectives`: wiring cost (L1, cross-entropy, communicability), MIM, classification, feature consistency, spatial correlation, topo blur. */
export {
  crossEntropyWiringWeights,
  l1WiringWeights,
  sparseWiringWeights,
  wiringCost,
  wiringCostFromDistances,
  wiringWeights,
  type WiringCostSpec,
} from "./wiring-cost.ts";
export { featureConsistency, nearestNeighbourGraph, untiedWeights } from "./feature-consistency.ts";
export { communicability, communicabilityWiringCost, expm } from "./communicability.ts";
export { drawNeighbourhoods, type NeighbourhoodSpec, selectionMatrix, spatialCorrelation } from "./spatial-correlation.ts";
export { blurMatrix, type BlurSpec, topoBlur } from "./topo-blur.ts";

export { maskedMse, normalizePatches, randomPatchMask } from "./mim.ts";
export { correctCount, crossEntropy } from "./classification.ts";
