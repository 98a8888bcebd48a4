/**
 * Natural photos cut into seeded random square crops (unlabelled), for masked image modelling.
 */
import * as nodePath from "node:path";
import type { ImageDataset, Split } from "./types.ts";
import type { PhotosSpec } from "./spec.ts";
import { DataError } from "./errors.ts";
import { decodeImageBytes, isImageFile } from "./decode.ts";
import type { BytePixels } from "./decode.ts";
import { listFilesRecursive, pathKind } from "./files.ts";
import { Rng, mixSeed } from "../engine/rng.ts";
import { HOLDOUT_EVERY, isHoldout } from "./splits.ts";

/** Default crops per epoch of the train split. */
export const DEFAULT_CROPS_PER_EPOCH = 10000;
/** Default longer side photos are downscaled to once, on first use. */
export const DEFAULT_PHOTO_MAX_SIDE = 512;

/**
 * Open a set of photos as random square crops of `crop_size`.
 *
 * Photos: every image file listed in `path`, and every image file under each listed folder
 * (recursively, sorted). Each photo is decoded once, on first use, downscaled so its longer
 * side is at most `max_side` (default 512) but its shorter side at least `crop_size`, and
 * kept in memory as 8-bit pixels.
 *
 * Example `i` is a crop of photo `i % photos` at a position drawn from a PRNG seeded by
 * (`seed`, epoch, `i`) for train, so every epoch sees fresh crops (pass the epoch to `get`),
 * and by (`seed`, `i`) alone for test, so the test crops are fixed.
 * Lengths: train = `crops_per_epoch` (default 10000), test = a tenth of it (rounded up).
 * Split: with 10 or more photos, every 10th photo (positions 9, 19, ... in the sorted list)
 * is used only by the test split; with fewer, both splits crop all photos (with different
 * seeds). An unreadable photo makes `get` return null for its crops.
 * @throws DataError when a path is missing or holds no images
 */
export async function openPhotos(spec: PhotosSpec, split: Split): Promise<ImageDataset> {
  const paths = Array.isArray(spec.path) ? spec.path : [spec.path];
  const files: string[] = [];
  for (const p of paths) {
    const k = await pathKind(p);
    if (k === null) throw new DataError(`photos: ${p} not found; pass photo files or folders of photos (see DATA.md for photos that can be installed here)`);
    if (k === "file") files.push(p);
    else files.push(...(await listFilesRecursive(p, isImageFile)).map((f) => nodePath.join(p, f)));
  }
  if (files.length === 0) throw new DataError(`photos: no image files (.jpg/.jpeg/.png/.webp/.tif/.gif/.avif) under ${paths.join(", ")}`);
  const photos = files.length >= HOLDOUT_EVERY ? files.filter((_, i) => isHoldout(i) === (split === "test")) : files;
  const perEpoch = spec.crops_per_epoch ?? DEFAULT_CROPS_PER_EPOCH;
  const length = split === "train" ? perEpoch : Math.ceil(perEpoch / HOLDOUT_EVERY);
  const size = spec.crop_size;
  const seed = spec.seed ?? 0;
  const maxSide = Math.max(spec.max_side ?? DEFAULT_PHOTO_MAX_SIDE, size);
  const cache = new Map<number, Promise<BytePixels | null>>();
  const photo = (i: number): Promise<BytePixels | null> => {
    let p = cache.get(i);
    if (!p) {
      p = decodeImageBytes(photos[i], { maxSide, minSide: size });
      cache.set(i, p);
    }
    return p;
  };
  return {
    name: `photos:${paths.join(",")}`,
    split,
    length,
    numClasses: null,
    classNames: null,
    async get(index: number, epoch = 0) {
      if (!Number.isInteger(index) || index < 0 || index >= length) return null;
      const px = await photo(index % photos.length);
      if (px === null || px.height < size || px.width < size) return null;
      const rng = new Rng(split === "train" ? mixSeed(seed, 1, epoch, index) : mixSeed(seed, 2, index));
      const top = rng.int(px.height - size + 1);
      const left = rng.int(px.width - size + 1);
      const c = px.channels;
      const out = new Float32Array(size * size * c);
      for (let y = 0; y < size; y++) {
        const s = ((top + y) * px.width + left) * c;
        for (let i = 0; i < size * c; i++) out[y * size * c + i] = px.data[s + i] / 255;
      }
      return { image: out, height: size, width: size, channels: c, label: null };
    },
  };
}
