/**
 * Core data types shared by every image source.
 *
 * Images are always float32, row-major `[H, W, C]` (channels last) with values in [0, 1].
 */

/** The two splits a data set can be opened as. */
export type Split = "train" | "test";

/** Channel counts the data layer produces: grey (1) or RGB (3). */
export type Channels = 1 | 3;

/** A bare image: pixels plus their shape. */
export interface Pixels {
  /** Row-major `[height, width, channels]` values in [0, 1]. */
  image: Float32Array;
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /** 1 = grey, 3 = RGB. */
  channels: Channels;
}

/** One decoded example of a data set. */
export interface ImageExample extends Pixels {
  /** Class index in `0..numClasses-1`, or `null` for unlabelled sources. */
  label: number | null;
}

/**
 * One split of one image source, with random access.
 *
 * `get` never throws for a bad example: it resolves to `null` when the example cannot be
 * read or decoded (the caller, e.g. {@link batches}, skips and counts it). It does not log.
 */
export interface ImageDataset {
  /** Short human-readable name, e.g. `"mnist"` or `"folder:/data/pets"`. */
  name: string;
  /** Which split this is. */
  split: Split;
  /** Number of examples (`get` accepts `0..length-1`). */
  length: number;
  /** Number of classes, or `null` when the source is unlabelled. */
  numClasses: number | null;
  /** Class names indexed by label, or `null` when unknown / unlabelled. */
  classNames: string[] | null;
  /**
   * Read and decode example `index`.
   * @param index position in `0..length-1`
   * @param epoch optional epoch number; only sources that synthesise examples (the `photos`
   *   random crops) use it to draw fresh examples each epoch, all others ignore it.
   * @returns the example, or `null` if it is unreadable (skipped by the caller).
   */
  get(index: number, epoch?: number): Promise<ImageExample | null>;
  /** Where example `index` comes from, for messages (a file, a shard and key); absent: none. */
  describe?(index: number): string;
}

/** Options for {@link openDataset} that do not belong in the JSON data spec. */
export interface OpenOptions {
  /**
   * Decode encoded images (JPEG/PNG/WebP sources: folder, parquet, webdataset) downscaled so
   * that their longer side is at most this many pixels (aspect kept, never enlarged). Saves
   * memory and time for large photos when training at small resolution. Default: no limit.
   * (The `photos` source has its own `max_side` in its spec.)
   */
  maxSide?: number;
}
