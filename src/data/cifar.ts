/**
 * CIFAR-10, binary version (`cifar-10-batches-bin`).
 */
import { promises as fs } from "node:fs";
import * as nodePath from "node:path";
import type { ImageDataset, Split } from "./types.ts";
import { DataError } from "./errors.ts";
import { compareNames, pathKind } from "./files.ts";

/** Bytes per CIFAR-10 record: 1 label byte + 3 x 32 x 32 pixel bytes (channel-major). */
export const CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32;

const CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
const HINT = "download the binary version (cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html) and extract it";

/**
 * Open CIFAR-10 binary batches: `data_batch_1.bin..data_batch_5.bin` (train) and
 * `test_batch.bin` (test) in `path` or in `path/cifar-10-batches-bin`; class names from
 * `batches.meta.txt` when present. Records are 1 label byte + 3072 bytes (R, G, B planes of
 * 32x32). The split's batches are held in memory (150 MB for train).
 * @throws DataError when the batch files are missing or truncated
 */
export async function openCifar10(path: string, split: Split): Promise<ImageDataset> {
  let dir = path;
  if ((await pathKind(nodePath.join(path, "cifar-10-batches-bin"))) === "dir") dir = nodePath.join(path, "cifar-10-batches-bin");
  if ((await pathKind(dir)) !== "dir") throw new DataError(`cifar10: folder ${path} not found; ${HINT}`);
  const names = await fs.readdir(dir);
  const wanted = split === "train" ? names.filter((n) => /^data_batch_\d+\.bin$/.test(n)) : names.filter((n) => n === "test_batch.bin");
  wanted.sort((a, b) => (split === "train" ? Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]) : compareNames(a, b)));
  if (wanted.length === 0) {
    throw new DataError(`cifar10: no ${split === "train" ? "data_batch_1.bin..data_batch_5.bin" : "test_batch.bin"} in ${dir}; ${HINT}`);
  }
  const parts: Uint8Array[] = [];
  for (const n of wanted) {
    const b = new Uint8Array(await fs.readFile(nodePath.join(dir, n)));
    if (b.length % CIFAR10_RECORD_BYTES !== 0) {
      throw new DataError(`cifar10: ${nodePath.join(dir, n)} is ${b.length} bytes, not a multiple of ${CIFAR10_RECORD_BYTES} (truncated or not the binary version); ${HINT}`);
    }
    parts.push(b);
  }
  const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  const n = data.length / CIFAR10_RECORD_BYTES;
  let classNames = CIFAR10_CLASSES;
  try {
    const meta = (await fs.readFile(nodePath.join(dir, "batches.meta.txt"), "utf8")).split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
    if (meta.length > 0) classNames = meta;
  } catch {
    // keep the standard names
  }
  const plane = 32 * 32;
  return {
    name: "cifar10",
    split,
    length: n,
    numClasses: classNames.length,
    classNames,
    async get(index: number) {
      if (!Number.isInteger(index) || index < 0 || index >= n) return null;
      const off = index * CIFAR10_RECORD_BYTES;
      const out = new Float32Array(plane * 3);
      for (let p = 0; p < plane; p++) {
        out[3 * p] = data[off + 1 + p] / 255;
        out[3 * p + 1] = data[off + 1 + plane + p] / 255;
        out[3 * p + 2] = data[off + 1 + 2 * plane + p] / 255;
      }
      return { image: out, height: 32, width: 32, channels: 3, label: data[off] };
    },
  };
}
