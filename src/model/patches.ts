/**
 * Cutting images into patches and back. Patch (i, j) of an [H, W, C] image
 * holds pixels image[i*p + r, j*p + c, ch] at index (r*p + c)*C + ch; patches
 * are row-major over the patch grid, matching the input area's column order.
 */
import type { numpy as np } from "../engine/jax.ts";

/** images: [batch, H, W, C] -> patches: [batch, (H/p)*(W/p), p*p*C]. Consumes `images`. */
export function patchify(images: np.Array, patch: number): np.Array {
  const [b, h, w, c] = images.shape;
  const gh = h / patch;
  const gw = w / patch;
  return images
    .reshape([b, gh, patch, gw, patch, c])
    .transpose([0, 1, 3, 2, 4, 5])
    .reshape([b, gh * gw, patch * patch * c]);
}

/** patches: [batch, gh*gw, p*p*C] -> images [batch, gh*p, gw*p, C]. Consumes `patches`. */
export function unpatchify(patches: np.Array, patch: number, gridH: number, gridW: number, channels: number): np.Array {
  const b = patches.shape[0];
  return patches
    .reshape([b, gridH, gridW, patch, patch, channels])
    .transpose([0, 1, 3, 2, 4, 5])
    .reshape([b, gridH * patch, gridW * patch, channels]);
}
