/**
 * One image through the model, keeping what the viewer shows: every step's attention map and
 * column-state norms, and the readout (class probabilities, or the MIM reconstruction).
 *
 * The loop is the one of visionEncode (src/model/vision.ts), written out with the model's own
 * visionFront / blockAt / sheetStep so that each step's states can be read, under jax-js jit;
 * test/viewer.test.ts checks it against visionEncode + classify.
 */
import { jit, nn, numpy as np, tree } from "../../engine/jax.ts";
import { connectivityArray } from "../../model/sheet-connectivity.ts";
import { blockAt, sheetStep } from "../../model/sheet.ts";
import { classify, decodePatches, type VisionParams, visionFront } from "../../model/vision.ts";
import { composeReconstruction, maskImage } from "../../viz/reconstructions.ts";
import type { ViewerModel } from "./load-model.ts";

/** What one forward pass gives the page (host arrays, batch of one). */
export interface ViewerForward {
  /** Attention of every step: [depth, N, W] row-major, W = N (dense) or K (sparse: source t of row i is connectivity[i, t]). */
  attn: Float32Array;
  /** Row width W of `attn`. */
  width: number;
  /** Euclidean norm of every column's state after each step: [depth, N]. */
  norms: Float32Array;
  /** Mean |x| over each column's D features after each step (its "energy", as analyze's maps): [depth, N]. */
  energy: Float32Array;
  /** The model's input x0 [N, D] (after the front end): what `columnformer forward` takes. */
  x0: Float32Array;
  /** Classification: softmax probabilities [classes]. */
  probs?: Float32Array;
  /** MIM: the masked input and the reconstruction, both [H, W, C]. */
  masked?: Float32Array;
  reconstruction?: Float32Array;
  /** Wall time of the computation in milliseconds (including reading the results back). */
  ms: number;
}

type Core = ((params: VisionParams, images: np.Array, ...rest: np.Array[]) => np.Array[]) & { dispose(): void };

/** The jitted forward of a model, with or without a MIM mask argument (traced once each). */
const cores = new WeakMap<ViewerModel, Map<boolean, Core>>();

function core(model: ViewerModel, withMask: boolean): Core {
  let byMask = cores.get(model);
  if (!byMask) {
    byMask = new Map();
    cores.set(model, byMask);
  }
  let f = byMask.get(withMask);
  if (f) return f;
  const { sheet, vision, layout } = model;
  f = jit((p: VisionParams, images: np.Array, ...rest: np.Array[]): np.Array[] => {
    const mask = withMask ? rest[0] : null;
    const conn = model.connectivity ? rest[withMask ? 1 : 0] : undefined;
    const { sheet: sheetParams, decoder, head, positions, ...front } = p;
    positions?.dispose();
    const { x0, drive, patches } = visionFront(front, images, mask, sheet, vision, layout);
    patches.dispose();
    const input = x0.ref;
    let x = x0;
    const maps: np.Array[] = [];
    const norms: np.Array[] = [];
    const energy: np.Array[] = [];
    for (let step = 0; step < sheet.depth; step++) {
      if (step > 0 && vision.inject === "every") x = x.add(drive.ref);
      const r = sheetStep(blockAt(sheetParams, step, sheet), x, sheet, conn?.ref);
      x = r.x;
      maps.push(r.attn);
      norms.push(np.sqrt(np.square(x.ref).sum(-1))); // [1, N]
      energy.push(np.abs(x.ref).mean(-1)); // [1, N]
    }
    drive.dispose();
    conn?.dispose();
    tree.dispose(sheetParams);
    const out = x.slice([], [layout.outputArea.start, layout.outputArea.end]);
    let readout: np.Array;
    if (vision.task === "classify") {
      if (decoder) tree.dispose(decoder);
      readout = nn.softmax(classify(head!, out), -1);
    } else {
      if (head) tree.dispose(head);
      readout = decodePatches(decoder!, out);
    }
    return [input, np.stack(maps, 1), np.concatenate(norms, 0), np.concatenate(energy, 0), readout];
  }) as unknown as Core;
  byMask.set(withMask, f);
  return f;
}

/**
 * Run the model on one image [H, W, C] in [0, 1]. `mask` (MIM only): one 0/1 flag per patch,
 * 1 = masked. Borrows the model's parameters. The computation is jitted (traced on first use).
 */
export async function viewerForward(model: ViewerModel, image: Float32Array, mask: Float32Array | null): Promise<ViewerForward> {
  const t0 = performance.now();
  const { sheet, vision, layout } = model;
  const size = vision.image_size;
  if (image.length !== size * size * vision.channels) throw new Error(`the image has ${image.length} values, the model takes ${size}x${size}x${vision.channels}`);
  const useMask = vision.task === "mim" && mask !== null;
  const args: np.Array[] = [];
  if (useMask) args.push(np.array(mask!).reshape([1, layout.numPatches]));
  if (model.connectivity) args.push(connectivityArray(model.connectivity));
  const [x0, attnArr, normArr, energyArr, readout] = core(model, useMask)(tree.ref(model.params), np.array(image).reshape([1, size, size, vision.channels]), ...args);
  const x0Host = (await x0.data()) as Float32Array;
  const attn = (await attnArr.data()) as Float32Array;
  const norms = (await normArr.data()) as Float32Array;
  const energy = (await energyArr.data()) as Float32Array;
  const values = (await readout.data()) as Float32Array;
  const result: ViewerForward = { attn, width: attn.length / (sheet.depth * sheet.num_columns), norms, energy, x0: x0Host, ms: 0 };
  if (vision.task === "classify") result.probs = values;
  else {
    const flags = useMask ? Array.from(mask!, (v) => v > 0.5) : new Array<boolean>(layout.numPatches).fill(true);
    result.masked = maskImage(image, size, size, vision.channels, vision.patch_size, flags);
    result.reconstruction = composeReconstruction(image, values, flags, size, size, vision.channels, vision.patch_size, true);
  }
  result.ms = performance.now() - t0;
  return result;
}

/** Free the jitted functions of a model (its parameters stay). */
export function disposeViewerForward(model: ViewerModel): void {
  for (const f of cores.get(model)?.values() ?? []) f.dispose();
  cores.delete(model);
}

/** A reproducible MIM mask: `round(ratio * P)` patches chosen by a seeded shuffle (mulberry32). */
export function seededPatchMask(numPatches: number, ratio: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = Array.from({ length: numPatches }, (_, i) => i);
  for (let i = numPatches - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const mask = new Float32Array(numPatches);
  for (const i of order.slice(0, Math.round(ratio * numPatches))) mask[i] = 1;
  return mask;
}
