/**
 * A session: the model object (model.ts) compiled on the chosen engine, plus helpers to move
 * host batches to the device and to read held-out batches. Shared by every command.
 */
// the modules themselves, not data/index.ts: the viewer's page bundles this file without the data readers
import { type BatchStats, batches, type ImageBatch } from "../data/batches.ts";
import type { ImageDataset } from "../data/types.ts";
import { Rng, mixSeed } from "../engine/rng.ts";
import { numpy as np } from "../engine/jax.ts";
import { randomPatchMask } from "../objectives/mim.ts";
import type { TrainConfig } from "./config.ts";
import { type Backend, chooseBackend } from "../engine/backend.ts";
import type { SheetEngine } from "../engine/sheet-engine.ts";
import type { CompiledModel, Encoded, EncodeOptions } from "./compiled.ts";
import type { VisionParams } from "../model/vision.ts";
import { compileJax } from "./compiled-jax.ts";
import { compileNative } from "./compiled-native.ts";
import type { DeviceBatch } from "./loss.ts";
import { buildModel, type Model, type ModelOptions } from "./model.ts";

/** A model compiled on one engine: what every command works with. */
export interface Session extends Model {
  /** The engine that runs the sheet. */
  backend: Backend;
  /** The compiled gradient step, evaluation step and encoder (see compiled.ts). */
  compiled: CompiledModel;
}

/** Which engine `compile` uses. */
export interface CompileOptions {
  /** The engine (default: see chooseBackend). */
  backend?: Backend | null;
  /**
   * An engine the caller has already chosen, instead of chooseBackend (which reads
   * process.env and loads the addon): the viewer's page, training on its WebGPU engine or on jax-js.
   */
  engine?: { backend: Backend; engine: SheetEngine | null };
}

/** Options of {@link createSession}: the model's (from a checkpoint) and the engine's. */
export type SessionOptions = ModelOptions & CompileOptions;

/** The model's gradient step, evaluation step and encoder on an engine. */
export function compile(model: Model, options: CompileOptions = {}): CompiledModel {
  const { backend, engine } = options.engine ?? chooseBackend(options.backend);
  return engine && backend !== "jax" ? compileNative(model, engine, backend) : compileJax(model);
}

/** Build the model of a resolved training config and compile it: `compile(buildModel(config))`. */
export function createSession(config: TrainConfig, options: SessionOptions = {}): Session {
  const model = buildModel(config, options);
  const compiled = compile(model, options);
  return { ...model, backend: compiled.backend, compiled };
}

/** Free the session's compiled functions and buffers. */
export function disposeSession(session: Session): void {
  session.compiled.dispose();
}

/**
 * Move a host batch to the device, with the MIM mask drawn from `maskSeed`
 * (deterministic) and one-hot labels for classification.
 */
export function toDevice(session: Session, batch: ImageBatch, maskSeed: number): DeviceBatch {
  const { vision, layout, config } = session;
  const b = batch.size;
  const images = np.array(batch.images).reshape([b, vision.image_size, vision.image_size, vision.channels]);
  if (vision.task === "mim") {
    const rng = new Rng(maskSeed);
    const mask = randomPatchMask(b, layout.numPatches, config.mask_ratio, () => rng.next());
    return { images, mask: np.array(mask).reshape([b, layout.numPatches]) };
  }
  if (!batch.labels) throw new Error("classification needs a labelled data set (this one has no labels)");
  const k = vision.num_classes;
  const onehot = new Float32Array(b * k);
  batch.labels.forEach((label, i) => {
    if (label < 0 || label >= k) {
      throw new Error(`label ${label} of example ${batch.indices[i]} is outside 0..${k - 1}; set vision.num_classes`);
    }
    onehot[i * k + label] = 1;
  });
  return { images, labels: np.array(onehot).reshape([b, k]) };
}

/** Seeds for masks: a pure function of (run seed, purpose, step, micro-batch). */
export const maskSeed = (seed: number, purpose: number, step: number, micro = 0): number => mixSeed(seed, purpose, step, micro);

/** Held-out batches: the first `limit` test images in order, evaluation transform. */
export async function* heldOutBatches(session: Session, ds: ImageDataset, limit: number, stats?: BatchStats): AsyncGenerator<ImageBatch> {
  let seen = 0;
  const { vision, config } = session;
  for await (const batch of batches(ds, {
    batchSize: config.batch_size,
    imageSize: vision.image_size,
    channels: vision.channels,
    shuffle: false,
    seed: config.seed,
    epoch: 0,
    augment: "eval",
    stats,
  })) {
    if (seen >= limit) break;
    const keep = Math.min(batch.size, limit - seen);
    seen += keep;
    yield keep === batch.size ? batch : sliceBatch(batch, keep, vision.image_size ** 2 * vision.channels);
  }
}

/** The first `limit` held-out images encoded batch by batch (see CompiledModel.encode). Borrows `params`. */
export async function* encodeHeldOut(
  session: Session,
  params: VisionParams,
  ds: ImageDataset,
  limit: number,
  options: EncodeOptions = {},
): AsyncGenerator<{ batch: ImageBatch; encoded: Encoded }> {
  const { vision } = session;
  for await (const batch of heldOutBatches(session, ds, limit)) {
    const images = np.array(batch.images).reshape([batch.size, vision.image_size, vision.image_size, vision.channels]);
    yield { batch, encoded: await session.compiled.encode(params, images, options) };
  }
}

function sliceBatch(batch: ImageBatch, keep: number, pixels: number): ImageBatch {
  return {
    images: batch.images.slice(0, keep * pixels),
    labels: batch.labels ? batch.labels.slice(0, keep) : null,
    size: keep,
    indices: batch.indices.slice(0, keep),
  };
}
