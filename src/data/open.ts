/**
 * `openDataset`: from a {@link DataSpec} and a split to an {@link ImageDataset}.
 */
import type { ImageDataset, OpenOptions, Split } from "./types.ts";
import type { DataSpec } from "./spec.ts";
import { openCifar10 } from "./cifar.ts";
import { openFolder } from "./folder.ts";
import { openFashionMnist, openIdxFolder, openMnist } from "./idx.ts";
import { openParquet } from "./parquet.ts";
import { openPhotos } from "./photos.ts";
import { openWebdataset } from "./webdataset.ts";

/**
 * Open one split of the data set described by `spec`.
 * @param spec which data (validate untrusted input first with `parseDataSpec`)
 * @param split "train" or "test"
 * @param options decoding options (e.g. `maxSide` for large photos)
 * @throws DataError (one line: what is missing and how to obtain it) when it cannot be opened
 */
export async function openDataset(spec: DataSpec, split: Split, options: OpenOptions = {}): Promise<ImageDataset> {
  switch (spec.kind) {
    case "mnist":
      return openMnist(split);
    case "fashion-mnist":
      return openFashionMnist(split, spec.path);
    case "idx":
      return openIdxFolder(spec.path, split, {
        name: `idx:${spec.path}`,
        missingHint: "pass a folder with MNIST-format files train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]",
      });
    case "folder":
      return openFolder(spec.path, split, options);
    case "cifar10":
      return openCifar10(spec.path, split);
    case "parquet":
      return openParquet(spec, split, options);
    case "webdataset":
      return openWebdataset(spec.path, split, options);
    case "photos":
      return openPhotos(spec, split);
  }
}
