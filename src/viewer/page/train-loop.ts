/**
 * Training a small sheet in the page through the project's own training seam (createSession ->
 * compiled.trainState -> accumulate / update, as src/train/trainer.ts does): the tiny preset's
 * sheet with the run's task, on the page's held-out images (SampleSet), on the device that
 * train-device.ts chose. One `step()` is one optimiser step of one batch; the caller yields to
 * the event loop between steps.
 */
import { Rng } from "../../engine/rng.ts";
import { canonicalParamOrder } from "../../engine/param-tree.ts";
import { initVision, type VisionConfig } from "../../model/vision.ts";
import { adamwConfig, adamwInit, defaultNoDecay } from "../../optim/adamw.ts";
import { cosineSchedule, type Schedule } from "../../optim/schedule.ts";
import { parseTrainConfig, type TrainConfig } from "../../train/config.ts";
import { PRESETS } from "../../train/presets.ts";
import { createSession, disposeSession, maskSeed, type Session, toDevice } from "../../train/session.ts";
import type { TrainState } from "../../train/train-state.ts";
import type { SampleSet } from "../compute/manifest.ts";
import type { TrainDevice } from "./train-device.ts";

/** Seed purpose of the page's MIM masks (any constant: the page's runs are not compared with the CLI's). */
const PAGE_MASK = 11;

/** The config the page trains: the tiny preset's sheet (3 stacked 7x7 areas) at the samples' image size. */
export function pageTrainConfig(samples: SampleSet, task: VisionConfig["task"], numClasses: number, steps: number, batch: number): TrainConfig {
  const tiny = PRESETS.tiny;
  if (samples.image_size % 7 !== 0) throw new Error(`training in the page uses the tiny preset's 7x7 patch grid: the images are ${samples.image_size} px, not a multiple of 7`);
  const classify = task === "classify" && samples.labels.every((l) => l !== null && l < numClasses);
  return parseTrainConfig({
    ...tiny,
    vision: {
      ...tiny.vision,
      image_size: samples.image_size,
      patch_size: samples.image_size / 7,
      channels: samples.channels,
      ...(classify ? { task: "classify", num_classes: numClasses } : { task: "mim" }),
    },
    batch_size: batch,
    steps,
  });
}

export interface PageStep {
  /** 1-based optimiser step. */
  step: number;
  loss: number;
  ms: number;
}

/** A fresh sheet and its optimiser state on one device; `dispose()` frees both. */
export class PageTrainer {
  private constructor(
    private readonly session: Session,
    private readonly state: TrainState,
    private readonly schedule: Schedule,
    private readonly samples: SampleSet,
    private readonly rng: Rng,
    private order: number[],
    private done = 0,
  ) {}

  static async create(config: TrainConfig, samples: SampleSet, device: TrainDevice): Promise<PageTrainer> {
    const session = createSession(config, { engine: { backend: device.backend, engine: device.engine } });
    const params = canonicalParamOrder(initVision(session.sheet, session.vision, session.geometry, config.seed, session.connectivity));
    const state = await session.compiled.trainState(params, adamwInit(params), {
      adamw: adamwConfig({ ...config.optim, lr: config.optim.lr }),
      clipNorm: config.optim.clip_norm,
      noDecay: defaultNoDecay,
      lrScale: () => 1,
    });
    const schedule = cosineSchedule({
      peak_lr: config.optim.lr,
      warmup_steps: Math.max(1, Math.round(config.optim.warmup_fraction * config.steps)),
      total_steps: config.steps,
      final_lr_fraction: config.optim.final_lr_fraction,
    });
    return new PageTrainer(session, state, schedule, samples, new Rng(config.seed), [], 0);
  }

  /** Optimiser steps taken. */
  get steps(): number {
    return this.done;
  }

  /** The next batch's indices: a fresh shuffle of the samples for every epoch. */
  private nextIndices(size: number): number[] {
    const out: number[] = [];
    while (out.length < size) {
      if (this.order.length === 0) {
        this.order = Array.from({ length: this.samples.images.length }, (_, i) => i);
        for (let i = this.order.length - 1; i > 0; i--) {
          const j = this.rng.int(i + 1);
          [this.order[i], this.order[j]] = [this.order[j], this.order[i]];
        }
      }
      out.push(this.order.pop()!);
    }
    return out;
  }

  /** One optimiser step on one batch; throws when the loss is not finite. */
  async step(): Promise<PageStep> {
    const t0 = performance.now();
    const { config } = this.session;
    const indices = this.nextIndices(config.batch_size);
    const pixels = this.samples.image_size ** 2 * this.samples.channels;
    const images = new Float32Array(indices.length * pixels);
    indices.forEach((k, i) => {
      images.set(this.samples.images[k], i * pixels);
    });
    const labels = Int32Array.from(indices, (k) => this.samples.labels[k] ?? -1);
    const batch = { images, labels: config.vision.task === "classify" ? labels : null, size: indices.length, indices };
    await this.state.accumulate(toDevice(this.session, batch, maskSeed(config.seed, PAGE_MASK, this.done)), this.done);
    await this.state.update(this.schedule(Math.min(this.done, config.steps - 1)));
    const { metrics } = await this.state.read(); // the page draws every step's loss
    this.done++;
    if (!Number.isFinite(metrics.loss)) throw new Error(`the training loss is ${metrics.loss} at step ${this.done}`);
    return { step: this.done, loss: metrics.loss, ms: performance.now() - t0 };
  }

  dispose(): void {
    this.state.dispose();
    disposeSession(this.session);
  }
}
