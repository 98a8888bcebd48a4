/**
 * Run a trained vision model on held-out images and collect what the
 * analysis needs: the attention map of every recurrent step averaged over
 * images ([depth, N, N]; a sparse sheet's [depth, N, K] maps scattered into
 * dense ones, fine for N up to a few thousand), every column's final state per image
 * ([images, N, D]) and the labels.
 */
import type { ImageDataset } from "../data/index.ts";
import { numpy as np } from "../engine/jax.ts";
import type { VisionParams } from "../model/vision.ts";
import { scatterAttention } from "../model/sheet-connectivity.ts";
import { concatFloat32 } from "../train/evaluate.ts";
import { heldOutBatches, type Session } from "../train/session.ts";

/** Activity of the sheet on a set of images. */
export interface SheetActivity {
  images: number;
  /** Mean attention per step over images: [depth, N, N]. */
  attention: Float32Array;
  /** Final state of every column: [images, N, D]. */
  states: Float32Array;
  /** [images] (-1 where unlabelled), or null for an unlabelled data set. */
  labels: Int32Array | null;
}

/** Collect attention and final states on the first `limit` held-out images. Borrows `params`. */
export async function collectActivity(
  session: Session,
  params: VisionParams,
  ds: ImageDataset,
  limit: number,
  onProgress?: (done: number) => void,
): Promise<SheetActivity> {
  const { sheet, vision } = session;
  const n = sheet.num_columns;
  const attention = new Float64Array(sheet.depth * n * (session.connectivity?.k ?? n));
  const chunks: Float32Array[] = [];
  const labels: number[] = [];
  let images = 0;
  let labelled = true;
  for await (const host of heldOutBatches(session, ds, limit)) {
    const x = np.array(host.images).reshape([host.size, vision.image_size, vision.image_size, vision.channels]);
    // every column's final state [B, N, D]; attention summed over images [depth, N, N] ([depth, N, K] sparse)
    const { states, attention: a } = await session.compiled.encode(params, x, { columns: "all", attention: true });
    for (let i = 0; i < a!.length; i++) attention[i] += a![i];
    chunks.push(states);
    if (host.labels) labels.push(...host.labels);
    else labelled = false;
    images += host.size;
    onProgress?.(images);
  }
  if (images === 0) throw new Error(`no readable held-out images in ${ds.name}`);
  return {
    images,
    // a sparse sheet's [depth, N, K] maps scattered into dense [depth, N, N] ones (zero where unconnected)
    attention: session.connectivity ? scatterAttention(Float32Array.from(attention, (v) => v / images), session.connectivity) : Float32Array.from(attention, (v) => v / images),
    states: concatFloat32(chunks),
    labels: labelled ? Int32Array.from(labels) : null,
  };
}
