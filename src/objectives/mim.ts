/**
 * Masked image modelling, as in masked autoencoders (MAE): predict the pixels
 * of masked patches; targets are normalised per patch (its pixels' mean and
 * variance), and the loss is the mean squared error over masked patches only.
 * On this scale, predicting zero scores 1.0 (up to the 1e-6 variance floor).
 */
import { numpy as np } from "../engine/jax.ts";

/** Variance floor in the per-patch normalisation (as in MAE). */
export const PATCH_NORM_EPS = 1e-6;

/** (patch - mean) / sqrt(var + eps) over each patch's pixels. Consumes `patches` [B, P, K]. */
export function normalizePatches(patches: np.Array): np.Array {
  const centred = patches.ref.sub(patches.mean(-1, { keepdims: true }));
  const variance = np.square(centred.ref).mean(-1, { keepdims: true });
  return centred.div(np.sqrt(variance.add(PATCH_NORM_EPS)));
}

/**
 * Mean over masked patches of the per-patch mean squared error.
 * Consumes pred [B, P, K], target [B, P, K] (already normalised) and mask [B, P] (1 = masked).
 */
export function maskedMse(pred: np.Array, target: np.Array, mask: np.Array): np.Array {
  const perPatch = np.square(pred.sub(target)).mean(-1); // [B, P]
  return perPatch.mul(mask.ref).sum().div(mask.sum());
}

/**
 * A random MAE mask: exactly round(ratio * P) masked patches per image, chosen
 * uniformly (a seeded shuffle per image). Returns [B * P] floats, 1 = masked.
 */
export function randomPatchMask(batch: number, numPatches: number, ratio: number, random: () => number): Float32Array {
  const masked = Math.round(ratio * numPatches);
  const out = new Float32Array(batch * numPatches);
  const order = Array.from({ length: numPatches }, (_, i) => i);
  for (let b = 0; b < batch; b++) {
    for (let i = numPatches - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let k = 0; k < masked; k++) out[b * numPatches + order[k]] = 1;
  }
  return out;
}
