/**
 * Builders of tiny data-set fixtures in every supported format, written into temporary
 * folders by the data tests. Nothing here touches the network.
 */
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as nodePath from "node:path";
import { gzipSync } from "node:zlib";
import sharp from "sharp";
import * as tar from "tar-stream";
import { parquetWriteBuffer } from "hyparquet-writer";
import { seededValues } from "./naive-sheet.ts";

/** A fixture image as written: 8-bit `[H, W, C]` pixels. */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3;
}

/** A fresh temporary folder. */
export async function tmpDir(prefix = "cf-data-"): Promise<string> {
  return fs.mkdtemp(nodePath.join(os.tmpdir(), prefix));
}

/** A deterministic, non-smooth test pattern (distinct values per pixel, channel and seed). */
export function patternImage(height: number, width: number, channels: 1 | 3, seed: number): RawImage {
  const data = new Uint8Array(height * width * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        data[(y * width + x) * channels + c] = (x * 37 + y * 11 + c * 70 + seed * 53 + x * y * 3) % 256;
      }
    }
  }
  return { data, height, width, channels };
}

/** A smooth gradient (survives JPEG compression with small error). */
export function gradientImage(height: number, width: number, seed: number): RawImage {
  const data = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.round((255 * x) / Math.max(1, width - 1));
      data[i + 1] = Math.round((255 * y) / Math.max(1, height - 1));
      data[i + 2] = (seed * 40) % 256;
    }
  }
  return { data, height, width, channels: 3 };
}

/** Encode a raw image as PNG bytes (lossless; grey images as 8-bit grey PNG). */
export async function pngBytes(img: RawImage): Promise<Uint8Array> {
  let p = sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: img.channels } });
  if (img.channels === 1) p = p.toColourspace("b-w");
  const b = await p.png().toBuffer();
  return new Uint8Array(b);
}

/** Encode a raw RGB image as JPEG bytes (quality 95, no chroma subsampling). */
export async function jpegBytes(img: RawImage): Promise<Uint8Array> {
  const b = await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: img.channels } })
    .jpeg({ quality: 95, chromaSubsampling: "4:4:4" })
    .toBuffer();
  return new Uint8Array(b);
}

/** Bytes that no image decoder accepts. */
export const CORRUPT_BYTES = new TextEncoder().encode("this is not an image, just text pretending to be one\n");

/** An IDX file with a hand-written header: magic 0x00000800 | ndims, big-endian uint32 dims, data. */
export function idxBytes(dims: number[], data: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const v = new DataView(header.buffer);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => {
    v.setUint32(4 + 4 * i, d, false);
  });
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

/** Contents of a tiny IDX split. */
export interface IdxSplit {
  images: RawImage[]; // all grey, same size
  labels: number[];
}

/**
 * Write an MNIST-format folder: train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each gzipped with `.gz` if `gzip`).
 */
export async function writeIdxFolder(dir: string, train: IdxSplit, test: IdxSplit, gzip: boolean): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const put = async (name: string, bytes: Uint8Array) =>
    fs.writeFile(nodePath.join(dir, gzip ? `${name}.gz` : name), gzip ? gzipSync(bytes) : bytes);
  for (const [prefix, s] of [["train", train], ["t10k", test]] as const) {
    const { height: h, width: w } = s.images[0];
    const all = new Uint8Array(s.images.length * h * w);
    s.images.forEach((im, i) => {
      all.set(im.data, i * h * w);
    });
    await put(`${prefix}-images-idx3-ubyte`, idxBytes([s.images.length, h, w], all));
    await put(`${prefix}-labels-idx1-ubyte`, idxBytes([s.labels.length], Uint8Array.from(s.labels)));
  }
}

/** One CIFAR-10 record: label byte then R, G, B planes of the 32x32 RGB image. */
export function cifarRecord(img: RawImage, label: number): Uint8Array {
  const rec = new Uint8Array(3073);
  rec[0] = label;
  for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) rec[1 + c * 1024 + p] = img.data[p * 3 + c];
  return rec;
}

/** Write CIFAR-10 binary batches: `data_batch_<i+1>.bin` per train batch, `test_batch.bin`, `batches.meta.txt`. */
export async function writeCifar10(
  dir: string,
  trainBatches: { img: RawImage; label: number }[][],
  test: { img: RawImage; label: number }[],
  classNames: string[],
): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const cat = (rs: { img: RawImage; label: number }[]) => Buffer.concat(rs.map((r) => cifarRecord(r.img, r.label)));
  for (let i = 0; i < trainBatches.length; i++) await fs.writeFile(nodePath.join(dir, `data_batch_${i + 1}.bin`), cat(trainBatches[i]));
  await fs.writeFile(nodePath.join(dir, "test_batch.bin"), cat(test));
  await fs.writeFile(nodePath.join(dir, "batches.meta.txt"), `${classNames.join("\n")}\n\n`);
}

/** Write `bytes` to `file`, creating folders. */
export async function writeFileDeep(file: string, bytes: Uint8Array): Promise<void> {
  await fs.mkdir(nodePath.dirname(file), { recursive: true });
  await fs.writeFile(file, bytes);
}

/** One row of a parquet fixture. */
export interface ParquetRowFixture {
  bytes: Uint8Array;
  label: number;
}

/** Options of {@link writeParquet}. */
export interface ParquetFixtureOptions {
  /** Image column as a Hugging Face struct {bytes, path} (default) or raw bytes. */
  struct?: boolean;
  imageColumn?: string;
  labelColumn?: string;
  /** Write the page offset index (default true). */
  offsetIndex?: boolean;
  rowGroupSize?: number;
  /** Target page size in bytes (small values give one page per row, hence an offset index). */
  pageSize?: number;
  /** Class names stored in the `huggingface` key-value metadata. */
  hfClassNames?: string[];
}

/** Write a parquet file with an image column and an INT64 label column (via hyparquet-writer). */
export async function writeParquet(file: string, rows: ParquetRowFixture[], o: ParquetFixtureOptions = {}): Promise<void> {
  const imageColumn = o.imageColumn ?? "image";
  const labelColumn = o.labelColumn ?? "label";
  const struct = o.struct ?? true;
  const offsetIndex = o.offsetIndex ?? true;
  const schema = struct
    ? [
        { name: "root", num_children: 2 },
        { name: imageColumn, repetition_type: "OPTIONAL" as const, num_children: 2 },
        { name: "bytes", type: "BYTE_ARRAY" as const, repetition_type: "OPTIONAL" as const },
        { name: "path", type: "BYTE_ARRAY" as const, converted_type: "UTF8" as const, repetition_type: "OPTIONAL" as const },
        { name: labelColumn, type: "INT64" as const, repetition_type: "OPTIONAL" as const },
      ]
    : [
        { name: "root", num_children: 2 },
        { name: imageColumn, type: "BYTE_ARRAY" as const, repetition_type: "OPTIONAL" as const },
        { name: labelColumn, type: "INT64" as const, repetition_type: "OPTIONAL" as const },
      ];
  const images = struct ? rows.map((r, i) => ({ bytes: r.bytes, path: `img${i}.png` })) : rows.map((r) => r.bytes);
  const kvMetadata = o.hfClassNames
    ? [
        {
          key: "huggingface",
          value: JSON.stringify({ info: { features: { [labelColumn]: { names: o.hfClassNames, _type: "ClassLabel" } } } }),
        },
      ]
    : undefined;
  const buf = parquetWriteBuffer({
    columnData: [
      { name: imageColumn, data: images, offsetIndex },
      { name: labelColumn, data: rows.map((r) => BigInt(r.label)), offsetIndex },
    ],
    schema,
    rowGroupSize: o.rowGroupSize ?? 1000,
    pageSize: o.pageSize,
    kvMetadata,
  });
  await writeFileDeep(file, new Uint8Array(buf));
}

/** Write a tar archive with tar-stream (members in the given order). */
export async function writeTar(file: string, members: { name: string; bytes: Uint8Array | string }[]): Promise<void> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", () => resolve());
    pack.on("error", reject);
  });
  for (const m of members) {
    const body = typeof m.bytes === "string" ? Buffer.from(m.bytes, "utf8") : Buffer.from(m.bytes);
    await new Promise<void>((resolve, reject) => pack.entry({ name: m.name, size: body.length }, body, (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  await writeFileDeep(file, Buffer.concat(chunks));
}

/** Largest absolute difference between floats in [0, 1] and bytes, in 0..255 units. */
export function maxAbsDiff255(a: Float32Array, expected: Uint8Array): number {
  if (a.length !== expected.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] * 255 - expected[i]));
  return m;
}

/** Mean absolute difference between floats in [0, 1] and bytes, in 0..255 units. */
export function meanAbsDiff255(a: Float32Array, expected: Uint8Array): number {
  if (a.length !== expected.length) return Infinity;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] * 255 - expected[i]);
  return s / a.length;
}

/** Side of {@link easyImage}'s images. */
export const EASY_SIZE = 8;

/**
 * An 8x8 grey image of an easy 2-class problem for training tests. Class 0: bright
 * left columns 0..2, class 1: bright right columns 5..7; plus a vertical gradient
 * (so every 4x4 patch has predictable structure for MIM) and noise.
 */
export function easyImage(label: number, seed: number): RawImage {
  const size = EASY_SIZE;
  const noise = seededValues(1000 + seed, size * size);
  const data = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const bright = label === 0 ? x <= 2 : x >= 5;
      const v = (bright ? 0.65 : 0.1) + (0.3 * y) / (size - 1) + 0.04 * noise[y * size + x];
      data[y * size + x] = Math.max(0, Math.min(255, Math.round(255 * v)));
    }
  }
  return { data, height: size, width: size, channels: 1 };
}

/**
 * An 8x8 grey image of a 2-class problem for analysis tests: class 0 bright (0.8) in the left
 * half of every row, class 1 in the right half, the rest dark (0.1), plus noise of 0.1.
 */
export function halvesImage(label: number, seed: number): RawImage {
  const noise = seededValues(seed, 64);
  const data = Uint8Array.from(noise, (v, i) => Math.round(255 * Math.min(1, Math.max(0, (label === 0 ? i % 8 < 4 : i % 8 >= 4) ? 0.8 + 0.1 * v : 0.1 + 0.1 * v))));
  return { data, height: 8, width: 8, channels: 1 };
}

/** A new IDX folder of {@link halvesImage}s: 32 training and 40 test images, labels alternating 0, 1. */
export async function halvesIdxFolder(prefix: string): Promise<string> {
  const dir = await tmpDir(prefix);
  const split = (n: number, offset: number) => {
    const labels = Array.from({ length: n }, (_, i) => i % 2);
    return { images: labels.map((l, i) => halvesImage(l, offset + i)), labels };
  };
  await writeIdxFolder(dir, split(32, 0), split(40, 100), false);
  return dir;
}
