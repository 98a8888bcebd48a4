/**
 * Image folders: an ImageFolder tree (one sub-folder per class) or a flat folder of images.
 */
import * as nodePath from "node:path";
import type { ImageDataset, OpenOptions, Split } from "./types.ts";
import { DataError } from "./errors.ts";
import { decodeImage, isImageFile } from "./decode.ts";
import { listFilesRecursive, listSubdirs, pathKind } from "./files.ts";
import { isHoldout } from "./splits.ts";

const TEST_DIRS = ["test", "val", "validation"];
const RESERVED = new Set(["train", ...TEST_DIRS]);

interface Entry {
  file: string;
  label: number | null;
}

/** Class folders of `root` (sorted by name) that hold at least one image, with their images. */
async function scanClasses(root: string, skipReserved: boolean): Promise<{ name: string; files: string[] }[]> {
  const out: { name: string; files: string[] }[] = [];
  for (const d of await listSubdirs(root)) {
    if (skipReserved && RESERVED.has(d.toLowerCase())) continue;
    const files = await listFilesRecursive(nodePath.join(root, d), isImageFile);
    if (files.length > 0) out.push({ name: d, files: files.map((f) => nodePath.join(root, d, f)) });
  }
  return out;
}

async function flatImages(root: string): Promise<string[]> {
  return (await listFilesRecursive(root, isImageFile)).filter((f) => !f.includes("/")).map((f) => nodePath.join(root, f));
}

/**
 * Open an image folder (JPEG/PNG/WebP/TIFF/GIF/AVIF files, decoded lazily by sharp).
 *
 * Layout: sub-folders of the train root = classes, sorted by name (label = position; files
 * in nested folders of a class count too). With no sub-folder holding images, the folder is
 * flat and unlabelled (e.g. COCO's train2017).
 *
 * Split rule: if `path/test`, else `path/val`, else `path/validation` exists, it is the test
 * split; the train split is then `path/train` if it exists, else `path` itself (without the
 * train/test/val folders). Otherwise both splits read `path`: in each class's name-sorted
 * file list (or the flat list) the files at positions 9, 19, 29, ... (every 10th) are the
 * test split and the rest train. Unreadable images are listed and make `get` return null.
 * @throws DataError when the folder is missing or holds no images
 */
export async function openFolder(path: string, split: Split, options: OpenOptions = {}): Promise<ImageDataset> {
  const name = `folder:${path}`;
  if ((await pathKind(path)) !== "dir") throw new DataError(`folder: ${path} not found or not a folder; pass a folder of class sub-folders of images (or a flat folder of images)`);
  let testDir: string | null = null;
  for (const t of TEST_DIRS) {
    if ((await pathKind(nodePath.join(path, t))) === "dir") {
      testDir = nodePath.join(path, t);
      break;
    }
  }
  const hasTrainDir = (await pathKind(nodePath.join(path, "train"))) === "dir";
  const trainRoot = hasTrainDir ? nodePath.join(path, "train") : path;
  const skipReserved = !hasTrainDir;
  const holdout = testDir === null;

  const trainClasses = await scanClasses(trainRoot, skipReserved);
  const classNames = trainClasses.length > 0 ? trainClasses.map((c) => c.name) : null;
  const entries: Entry[] = [];
  const keep = (i: number): boolean => !holdout || isHoldout(i) === (split === "test");

  if (split === "test" && testDir !== null) {
    const testClasses = await scanClasses(testDir, false);
    if (testClasses.length > 0) {
      for (const c of testClasses) {
        const label = classNames ? classNames.indexOf(c.name) : -1;
        if (label < 0) {
          throw new DataError(`folder: class folder "${c.name}" of ${testDir} has no counterpart among the train classes of ${trainRoot}`);
        }
        for (const f of c.files) entries.push({ file: f, label });
      }
    } else {
      for (const f of await flatImages(testDir)) entries.push({ file: f, label: null });
    }
  } else if (classNames !== null) {
    trainClasses.forEach((c, label) => {
      c.files.forEach((f, i) => {
        if (keep(i)) entries.push({ file: f, label });
      });
    });
  } else {
    (await flatImages(trainRoot)).forEach((f, i) => {
      if (keep(i)) entries.push({ file: f, label: null });
    });
  }
  if (entries.length === 0) {
    throw new DataError(`folder: no ${split} images (.jpg/.jpeg/.png/.webp/.tif/.gif/.avif) found under ${split === "test" && testDir ? testDir : trainRoot}`);
  }
  const labelled = entries[0].label !== null;
  return {
    name,
    split,
    length: entries.length,
    numClasses: labelled && classNames ? classNames.length : null,
    classNames: labelled ? classNames : null,
    describe: (index: number) => entries[index]?.file ?? `example ${index}`,
    async get(index: number) {
      const e = entries[index];
      if (e === undefined) return null;
      const px = await decodeImage(e.file, { maxSide: options.maxSide });
      return px && { ...px, label: e.label };
    },
  };
}
