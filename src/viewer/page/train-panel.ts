/**
 * The Train panel: trains a fresh tiny sheet in the page (train-loop.ts) on the held-out images
 * for a chosen number of steps, on the device train-device.ts picks, and draws the live loss
 * (curves.ts's chart), steps/s and the device. Steps run one at a time with a yield to the event
 * loop between them, so the page stays responsive; Stop ends the run after the current step.
 */
import type { SampleSet } from "../compute/manifest.ts";
import type { VisionConfig } from "../../model/vision.ts";
import { chart } from "./curves.ts";
import { el, fmt, panel } from "./dom.ts";
import type { BrowserDevice } from "./engine.ts";
import { chooseTrainDevice, type TrainDevice } from "./train-device.ts";
import { PageTrainer, pageTrainConfig } from "./train-loop.ts";

/** What the panel exposes on the page's hook (for scripts and the end-to-end test). */
export interface TrainHook {
  /** "idle", "starting", "training", "done", "stopped" or "error: ...". */
  status: string;
  device: string;
  /** Why WebGPU is not training (one line), or null. */
  note: string | null;
  losses: number[];
  stepsPerSecond: number;
}

const BATCH = 8;
/** A yield that lets the page paint and handle input (a macrotask, not a microtask). */
const yieldToPage = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

/** Build the panel; `hook` is updated as training runs. */
export function trainPanel(samples: SampleSet | null, task: VisionConfig["task"], numClasses: number, jax: BrowserDevice, hook: TrainHook): HTMLElement {
  const { root, body } = panel("Train a small sheet in the page");
  const steps = el("input", { id: "train-steps", type: "number", min: "1", max: "5000", value: "30", title: "optimiser steps" });
  const button = el("button", { id: "train" }, "Train");
  const what = el("div", { class: "muted" }, "a fresh sheet of the tiny preset (not the run's), trained on the held-out images");
  const device = el("div", { id: "train-device", class: "muted" });
  const rate = el("span", { id: "train-rate", class: "muted" });
  const plot = el("div", { id: "train-curve" });
  body.append(what, el("div", { class: "controls" }, el("label", {}, "steps ", steps), button, rate), device, plot);
  if (!samples || samples.images.length === 0) {
    button.disabled = true;
    device.textContent = "needs held-out images (the run's data set could not be read)";
    return root;
  }
  let chosen: Promise<TrainDevice> | null = null;
  let stop = false;
  let running = false;
  const draw = (objective: string): void => {
    plot.replaceChildren(chart(`training loss (${objective} + penalties)`, [{ key: "loss", xs: hook.losses.map((_, i) => i + 1), ys: hook.losses }]));
  };
  const run = async (): Promise<void> => {
    running = true;
    stop = false;
    button.textContent = "Stop";
    hook.status = "starting";
    hook.losses = [];
    plot.replaceChildren();
    let trainer: PageTrainer | null = null;
    try {
      chosen ??= chooseTrainDevice(new URLSearchParams(location.search).get("backend"), jax);
      const d = await chosen;
      hook.device = d.label;
      hook.note = d.note;
      device.textContent = d.note ? `device: ${d.label} — ${d.note}` : `device: ${d.label}`;
      const total = Math.max(1, Math.min(5000, Math.round(Number(steps.value)) || 30));
      const config = pageTrainConfig(samples, task, numClasses, total, BATCH);
      const objective = config.vision.task === "classify" ? "cross-entropy" : "MIM";
      what.textContent = `a fresh sheet of the tiny preset (not the run's): ${config.vision.task}, ${samples.images.length} held-out images, batch ${BATCH}`;
      trainer = await PageTrainer.create(config, samples, d);
      hook.status = "training";
      const t0 = performance.now();
      let firstMs = 0;
      while (!stop && trainer.steps < total) {
        const s = await trainer.step();
        hook.losses.push(s.loss);
        // steps/s after the first step (which compiles the kernels)
        if (s.step > 1) hook.stepsPerSecond = (s.step - 1) / ((performance.now() - t0 - firstMs) / 1000);
        else firstMs = performance.now() - t0;
        rate.textContent = `step ${s.step} / ${total} · loss ${fmt(s.loss)} · ${s.step > 1 ? `${fmt(hook.stepsPerSecond)} steps/s` : `first step ${fmt(s.ms)} ms`}`;
        draw(objective);
        await yieldToPage();
      }
      hook.status = stop ? "stopped" : "done";
    } catch (e) {
      hook.status = `error: ${(e as Error).message}`;
      rate.textContent = hook.status;
    } finally {
      trainer?.dispose();
      running = false;
      button.textContent = "Train";
    }
  };
  button.addEventListener("click", () => {
    if (running) stop = true;
    else void run();
  });
  return root;
}
