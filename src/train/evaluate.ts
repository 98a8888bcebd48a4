/**
 * Held-out evaluation: MIM loss (normalised-pixel MSE on masked patches, with
 * masks fixed by seed so every evaluation sees the same ones), classification
 * accuracy, and the wiring cost; plus the MIM reconstruction figure and
 * feature extraction for probes.
 */
import type { BatchStats, ImageBatch, ImageDataset } from "../data/index.ts";
import type { VisionParams } from "../model/vision.ts";
import { composeReconstruction, maskImage, writeReconstructionPng } from "../viz/reconstructions.ts";
import { encodeHeldOut, heldOutBatches, maskSeed, type Session, toDevice } from "./session.ts";

/** Held-out metrics. */
export interface EvalResult {
  images: number;
  /** MIM: mean normalised MSE on masked patches (predicting zero scores 1.0). */
  mim_loss?: number;
  /** Classification: top-1 accuracy. */
  accuracy?: number;
  classification_loss?: number;
  /** Wiring cost of the attention on these images (the configured form, lambda 1). */
  wiring_cost?: number;
  /** Mean |x| of the column states over steps. */
  activation_l1?: number;
  /** Mean Hoyer sparsity of the column states over steps (0 dense, 1 one-hot). */
  activation_hoyer?: number;
}

const EVAL_MASK = 2;

/** The task metric of an evaluation as one phrase: `MIM loss 0.2891` or `accuracy 97.02%`. */
export function describeEval(r: Pick<EvalResult, "mim_loss" | "accuracy">): string {
  return r.mim_loss !== undefined ? `MIM loss ${r.mim_loss.toFixed(4)}` : `accuracy ${(100 * (r.accuracy ?? NaN)).toFixed(2)}%`;
}

/** Evaluate on the first `limit` held-out images. Borrows `params`. */
export async function evaluate(
  session: Session,
  params: VisionParams,
  ds: ImageDataset,
  limit: number,
  stats?: BatchStats,
): Promise<EvalResult> {
  let images = 0;
  let task = 0;
  let wiring = 0;
  let l1 = 0;
  let hoyer = 0;
  let correct = 0;
  let index = 0;
  for await (const host of heldOutBatches(session, ds, limit, stats)) {
    const batch = toDevice(session, host, maskSeed(session.config.seed, EVAL_MASK, index++));
    const m = await session.compiled.evalStep(params, batch, session.config.steps - 1);
    // every batch masks the same fraction of patches, so weighting by images is exact
    task += m.task * host.size;
    wiring += m.wiring * host.size;
    l1 += m.activation_l1 * host.size;
    hoyer += m.activation_hoyer * host.size;
    correct += m.correct;
    images += host.size;
  }
  if (images === 0) throw new Error(`no readable held-out images in ${ds.name} (${ds.split} split)`);
  const result: EvalResult = { images, wiring_cost: wiring / images, activation_l1: l1 / images, activation_hoyer: hoyer / images };
  if (session.vision.task === "mim") result.mim_loss = task / images;
  else Object.assign(result, { accuracy: correct / images, classification_loss: task / images });
  return result;
}

/** Write original | masked | reconstruction rows for the first `count` held-out images. Borrows `params`. */
export async function writeReconstructions(
  session: Session,
  params: VisionParams,
  ds: ImageDataset,
  path: string,
  count = 8,
): Promise<void> {
  const { vision, layout } = session;
  const size = vision.image_size;
  const rows = [];
  for await (const host of heldOutBatches(session, ds, count)) {
    const batch = toDevice(session, host, maskSeed(session.config.seed, EVAL_MASK, 0));
    if (!batch.mask) throw new Error("writeReconstructions: the session's task is not MIM");
    const mask = (await batch.mask.ref.data()) as Float32Array;
    const pred = await session.compiled.predictPatches(params, batch.images, batch.mask);
    const pixels = size * size * vision.channels;
    const per = layout.numPatches * layout.patchDim;
    for (let i = 0; i < host.size; i++) {
      const original = host.images.subarray(i * pixels, (i + 1) * pixels);
      const masked = Array.from(mask.subarray(i * layout.numPatches, (i + 1) * layout.numPatches), (m) => m > 0.5);
      rows.push({
        original,
        masked: maskImage(original, size, size, vision.channels, vision.patch_size, masked),
        reconstruction: composeReconstruction(original, pred.subarray(i * per, (i + 1) * per), masked, size, size, vision.channels, vision.patch_size, true),
      });
    }
  }
  await writeReconstructionPng(path, rows, size, size, vision.channels, { scale: Math.max(1, Math.round(96 / size)) });
}

/**
 * Features of the first `limit` images of a split: the final states of the
 * output area, flattened ([n, P_out * D]) or averaged over columns ([n, D]),
 * or the raw pixels ([n, H * W * C], the baseline of a probe).
 */
export async function extractFeatures(
  session: Session,
  params: VisionParams,
  ds: ImageDataset,
  limit: number,
  pooling: "flat" | "avg" | "pixels",
): Promise<{ features: Float32Array; labels: Int32Array; dim: number }> {
  const chunks: Float32Array[] = [];
  const labels: number[] = [];
  let dim = 0;
  const add = (batch: ImageBatch, features: Float32Array) => {
    if (!batch.labels) throw new Error(`${ds.name} has no labels: a probe needs a labelled data set`);
    labels.push(...batch.labels);
    dim = features.length / batch.size;
    chunks.push(features);
  };
  if (pooling === "pixels") {
    for await (const batch of heldOutBatches(session, ds, limit)) add(batch, batch.images);
  } else {
    const columns = session.layout.outputArea.end - session.layout.outputArea.start;
    // states [B, P_out, D]
    for await (const { batch, encoded } of encodeHeldOut(session, params, ds, limit)) {
      add(batch, pooling === "avg" ? meanOverColumns(encoded.states, batch.size, columns, session.sheet.dim) : encoded.states);
    }
  }
  return { features: concatFloat32(chunks), labels: Int32Array.from(labels), dim };
}

/** Mean over the columns of states [B, P, D] -> [B, D]. */
function meanOverColumns(states: Float32Array, b: number, p: number, d: number): Float32Array {
  const out = new Float32Array(b * d);
  for (let i = 0; i < b; i++) {
    for (let c = 0; c < p; c++) for (let f = 0; f < d; f++) out[i * d + f] += states[(i * p + c) * d + f];
    for (let f = 0; f < d; f++) out[i * d + f] /= p;
  }
  return out;
}

/** Concatenate float chunks (e.g. per-batch results) into one array. */
export function concatFloat32(chunks: Float32Array[]): Float32Array {
  const out = new Float32Array(chunks.reduce((s, c) => s + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
