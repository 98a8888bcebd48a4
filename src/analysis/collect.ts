/**
 * Run a trained vision model on held-out images and collect what the
 * analysis needs: the attention map of every recurrent step averaged over
 * images ([depth, N, N]; a sparse sheet's [depth, N, K] maps scattered into
 * dense ones, fine for N up to a few thousand), every column's final state per image
 * ([images, N, D]) and the labels.
 */
import type { ImageDataset } from "../data/index.ts";
import type { VisionParams } from "../model/vision.ts";
import { scatterAttention } from "../model/sheet-connectivity.ts";
import { concatFloat32 } from "../train/evaluate.ts";
import { encodeHeldOut, type Session } from "../train/session.ts";

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
  const attention = new AttentionMean(session);
  const chunks: Float32Array[] = [];
  const labels: number[] = [];
  let labelled = true;
  // every column's final state [B, N, D]; attention summed over images [depth, N, N] ([depth, N, K] sparse)
  for await (const { batch, encoded } of encodeHeldOut(session, params, ds, limit, { columns: "all", attention: true })) {
    attention.add(encoded.attention!, batch.size);
    chunks.push(encoded.states);
    if (batch.labels) labels.push(...batch.labels);
    else labelled = false;
    onProgress?.(attention.images);
  }
  if (attention.images === 0) throw new Error(`no readable held-out images in ${ds.name}`);
  return { images: attention.images, attention: attention.mean(), states: concatFloat32(chunks), labels: labelled ? Int32Array.from(labels) : null };
}

/**
 * Attention of every recurrent step averaged over the first `limit` held-out images (no mask):
 * [depth, N, N] row-major (a sparse sheet's [depth, N, K] maps are scattered into dense ones,
 * zero where there is no connection). Borrows `params`.
 */
export async function meanAttentionMaps(session: Session, params: VisionParams, ds: ImageDataset, limit: number): Promise<Float32Array> {
  const attention = new AttentionMean(session);
  for await (const { batch, encoded } of encodeHeldOut(session, params, ds, limit, { attention: true })) attention.add(encoded.attention!, batch.size);
  if (attention.images === 0) throw new Error(`no readable held-out images in ${ds.name} to measure attention on`);
  return attention.mean();
}

/** A running mean over images of batch-summed attention maps [depth, N, N | K]. */
class AttentionMean {
  private readonly sums: Float64Array;
  images = 0;
  constructor(private readonly session: Session) {
    this.sums = new Float64Array(session.sheet.depth * session.sheet.num_columns * (session.connectivity?.k ?? session.sheet.num_columns));
  }
  /** Add the maps of a batch of `images` images (summed over them). */
  add(maps: Float32Array, images: number): void {
    for (let i = 0; i < maps.length; i++) this.sums[i] += maps[i];
    this.images += images;
  }
  /** The mean map [depth, N, N] (a sparse sheet's scattered into dense ones). */
  mean(): Float32Array {
    const mean = Float32Array.from(this.sums, (v) => v / this.images);
    return this.session.connectivity ? scatterAttention(mean, this.session.connectivity) : mean;
  }
}
