/**
 * Batching: deterministic order and augmentation, read-ahead, skipping of unreadable examples.
 */
import type { Channels, ImageDataset, Pixels } from "./types.ts";
import { Rng, mixSeed } from "../engine/rng.ts";
import { evalTransform, trainTransform } from "./augment.ts";
import type { TrainAugmentOptions } from "./augment.ts";

/** A batch of images, channels last. */
export interface ImageBatch {
  /** `[size, imageSize, imageSize, channels]` values in [0, 1]. */
  images: Float32Array;
  /** Labels, or `null` when the data set is unlabelled; -1 marks an example without label. */
  labels: Int32Array | null;
  /** Examples in this batch (`batchSize`, or fewer for the last batch). */
  size: number;
  /** Data set index of each example, in batch order. */
  indices: number[];
}

/** Counters updated by {@link batches} while it runs. */
export interface BatchStats {
  /** Examples skipped because they were unreadable (running total; never reset by `batches`). */
  skipped: number;
}

/** Options of {@link batches}. */
export interface BatchOptions {
  /** Examples per batch. */
  batchSize: number;
  /** Output height = width. */
  imageSize: number;
  /** Output channels (grey is converted to RGB by copying; RGB to grey with BT.601 luma). */
  channels: Channels;
  /** Shuffle the order (seeded by `seed` and `epoch`). */
  shuffle: boolean;
  /** Seed of order and augmentation. */
  seed: number;
  /** Epoch number: with the seed, fixes order, augmentation and (photos) crops. */
  epoch: number;
  /** "train": random resized crop + flip; "eval": resize shorter side + centre crop. */
  augment: "train" | "eval";
  /** Drop a last batch smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** Maximum number of examples read and decoded ahead concurrently (default min(2 x batchSize, 64)). */
  prefetch?: number;
  /** Called for each skipped (unreadable) example. */
  onSkip?: (index: number, reason: string) => void;
  /** Counters to update (`skipped`). */
  stats?: BatchStats;
  /** Overrides of the training augmentation (scale, ratio, flip probability). */
  augmentOptions?: Partial<TrainAugmentOptions>;
}

/**
 * The order in which an epoch visits `0..length-1`: identity, or a Fisher–Yates shuffle
 * seeded by (`seed`, `epoch`).
 */
export function epochOrder(length: number, shuffle: boolean, seed: number, epoch: number): number[] {
  const order = Array.from({ length }, (_, i) => i);
  return shuffle ? new Rng(mixSeed(seed, epoch, 0x5eed)).shuffle(order) : order;
}

type Loaded = { index: number; px: Pixels; label: number | null } | { index: number; px: null; reason: string };

/**
 * Iterate over one epoch of `ds` in batches.
 *
 * Deterministic given (`seed`, `epoch`): the order comes from {@link epochOrder}, and each
 * example's augmentation from a PRNG seeded by (`seed`, `epoch`, index), independent of
 * timing. Up to `prefetch` `get` calls run concurrently ahead of the consumer, so decoding
 * overlaps with training. An example whose `get` resolves to null or throws is skipped: it
 * is counted in `stats.skipped`, reported to `onSkip`, and the batch is filled with the next
 * examples instead, so batches keep `batchSize` examples (except possibly the last).
 */
export async function* batches(ds: ImageDataset, opts: BatchOptions): AsyncGenerator<ImageBatch> {
  const { batchSize: B, imageSize: S, channels: C } = opts;
  if (!(Number.isInteger(B) && B > 0)) throw new RangeError(`batchSize must be a positive integer, got ${B}`);
  if (!(Number.isInteger(S) && S > 0)) throw new RangeError(`imageSize must be a positive integer, got ${S}`);
  const prefetch = Math.max(1, opts.prefetch ?? Math.min(2 * B, 64));
  const order = epochOrder(ds.length, opts.shuffle, opts.seed, opts.epoch);
  const labelled = ds.numClasses !== null;
  const per = S * S * C;

  const load = async (index: number): Promise<Loaded> => {
    try {
      const ex = await ds.get(index, opts.epoch);
      if (ex === null) return { index, px: null, reason: "unreadable or undecodable" };
      const px =
        opts.augment === "train"
          ? trainTransform(ex, S, C, new Rng(mixSeed(opts.seed, opts.epoch, index, 0xa06)), opts.augmentOptions)
          : evalTransform(ex, S, C);
      return { index, px, label: ex.label };
    } catch (e) {
      return { index, px: null, reason: e instanceof Error ? e.message : String(e) };
    }
  };

  const queue: Promise<Loaded>[] = [];
  let next = 0;
  const fill = () => {
    while (queue.length < prefetch && next < order.length) queue.push(load(order[next++]));
  };

  let images = new Float32Array(B * per);
  let labels = labelled ? new Int32Array(B) : null;
  let indices: number[] = [];
  fill();
  while (queue.length > 0) {
    const r = await queue.shift()!;
    fill();
    if (r.px === null) {
      if (opts.stats) opts.stats.skipped++;
      opts.onSkip?.(r.index, r.reason);
      continue;
    }
    const k = indices.length;
    images.set(r.px.image, k * per);
    if (labels) labels[k] = r.label ?? -1;
    indices.push(r.index);
    if (indices.length === B) {
      yield { images, labels, size: B, indices };
      images = new Float32Array(B * per);
      labels = labelled ? new Int32Array(B) : null;
      indices = [];
    }
  }
  const n = indices.length;
  if (n > 0 && !opts.dropLast) {
    yield { images: images.slice(0, n * per), labels: labels ? labels.slice(0, n) : null, size: n, indices };
  }
}
