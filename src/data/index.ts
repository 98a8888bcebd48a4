/**
 * The data layer: image sources, augmentations and batching.
 */
export type { Channels, ImageDataset, ImageExample, OpenOptions, Pixels, Split } from "./types.ts";
export { DataError } from "./errors.ts";
export {
  dataSpecSchema,
  defaultDataSpec,
  parseDataSpec,
} from "./spec.ts";
export type {
  Cifar10Spec,
  DataSpec,
  FashionMnistSpec,
  FolderSpec,
  IdxSpec,
  MnistSpec,
  ParquetSpec,
  PhotosSpec,
  WebdatasetSpec,
} from "./spec.ts";
export { openDataset } from "./open.ts";
export { Rng, mixSeed } from "../engine/rng.ts";
export {
  centerCrop,
  convertChannels,
  crop,
  defaultTrainAugment,
  evalTransform,
  flipHorizontal,
  randomResizedCrop,
  resize,
  resizedCrop,
  resizeShorterSide,
  sampleResizedCropBox,
  toGrey,
  toRGB,
  trainTransform,
} from "./augment.ts";
export type { CropBox, TrainAugmentOptions } from "./augment.ts";
export { batches, epochOrder } from "./batches.ts";
export type { BatchOptions, BatchStats, ImageBatch } from "./batches.ts";
export { bytesToPixels, decodeImage, decodeImageBytes, IMAGE_EXTENSIONS, isImageFile } from "./decode.ts";
export type { BytePixels, DecodeOptions } from "./decode.ts";
export { FASHION_MNIST_DEFAULT_PATH, openFashionMnist, openIdxFolder, openMnist, parseIdx } from "./idx.ts";
export type { IdxArray, IdxFolderOptions } from "./idx.ts";
export { CIFAR10_RECORD_BYTES, openCifar10 } from "./cifar.ts";
export { openFolder } from "./folder.ts";
export { openParquet, PARQUET_ROWGROUP_CACHE_BYTES } from "./parquet.ts";
export { openWebdataset, webdatasetKey } from "./webdataset.ts";
export { indexTar } from "./tar.ts";
export type { TarMember } from "./tar.ts";
export { DEFAULT_CROPS_PER_EPOCH, DEFAULT_PHOTO_MAX_SIDE, openPhotos } from "./photos.ts";
export { HOLDOUT_EVERY, holdoutPositions, isHoldout, selectSplitFiles, splitOfPath } from "./splits.ts";
export type { SplitFiles } from "./splits.ts";
export * from "./gratings.ts";
