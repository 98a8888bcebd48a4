/**
 * One run in the page: load its checkpoint into jax-js, lay out the sheet, and keep every
 * panel linked to one selection (input image, step, column, colouring). Each new input reruns
 * the model in the page; steps, columns and colourings only redraw.
 */
import { viewerForward, seededPatchMask, type ViewerForward } from "../compute/forward.ts";
import { modelFromBytes, type ViewerModel } from "../compute/load-model.ts";
import type { RunManifest, SampleSet } from "../compute/manifest.ts";
import { populationStats, type PopulationStats } from "../compute/population.ts";
import { QUANTITIES, quantityValues, topK, type Quantity } from "../compute/quantities.ts";
import { sheetDrawing } from "../compute/sheet-layout.ts";
import { columnDistance, geometryMetric } from "../../geometry/metric.ts";
import { analysisPanel } from "./analysis-panel.ts";
import { ColorBar } from "./colorbar.ts";
import { ColumnPanel } from "./column-panel.ts";
import { curvesPanel } from "./curves.ts";
import { el, panel, setStatus, showError } from "./dom.ts";
import { fallBackToWasm, type BrowserDevice, webgpuNote } from "./engine.ts";
import { InputPanel } from "./input-panel.ts";
import { ReadoutPanel } from "./readout-panel.ts";
import { SheetView } from "./sheet-view.ts";
import { type TrainHook, trainPanel } from "./train-panel.ts";
import { readViewState, writeViewState, type ViewState } from "./url-state.ts";

/** What the page exposes as `window.columnformerViewer` (for scripts and the end-to-end test). */
export interface ViewerHook {
  ready: boolean;
  /** Forward passes finished so far. */
  forwards: number;
  device: string;
  state(): ViewState;
  /** The current input image [H, W, C], the model's input states x0 [N, D], and the last forward's numbers. */
  input(): number[];
  x0(): number[];
  probs(): number[] | null;
  /** MIM: the patch mask of the last forward (1 = masked) and the reconstruction [H, W, C]; else null. */
  mask(): number[] | null;
  reconstruction(): number[] | null;
  /** The selected column's dense attention row at the current step, or null. */
  attentionRow(): number[] | null;
  lastForwardMs(): number;
  columnCenter(i: number): { x: number; y: number };
  numColumns: number;
  depth: number;
  /** The Train panel's progress (train-panel.ts). */
  train: TrainHook;
}

async function fetchBytes(url: string, what: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not load the ${what} (${url}: HTTP ${res.status})`);
  return new Uint8Array(await res.arrayBuffer());
}

export async function runView(app: HTMLElement, m: RunManifest, base: string, device: BrowserDevice, hook: ViewerHook): Promise<void> {
  document.getElementById("run-name")!.textContent = m.name;
  const extras = [curvesPanel(m.log), analysisPanel(m, base)].filter((p): p is HTMLElement => p !== null);
  if (m.problem || !m.checkpoint) {
    showError(`cannot run the model: ${m.problem ?? "no checkpoint"}`);
    app.append(...extras);
    setStatus("no model");
    return;
  }
  setStatus("loading the checkpoint…");
  let model: ViewerModel;
  try {
    model = modelFromBytes(await fetchBytes(base + m.checkpoint, "checkpoint"), m.checkpointPath ?? m.checkpoint);
  } catch (e) {
    showError(`cannot load the checkpoint: ${(e as Error).message}`);
    app.append(...extras);
    setStatus("no model");
    return;
  }
  let samples: SampleSet | null = null;
  if (m.samples) {
    const res = await fetch(base + m.samples);
    if (res.ok) samples = (await res.json()) as SampleSet;
  }
  const { sheet, vision, geometry } = model;
  const n = sheet.num_columns;
  const depth = sheet.depth;
  const conn = model.connectivity ? model.connectivity.indices : null;
  const areaOf = new Int32Array(n);
  geometry.areas.forEach((a, k) => {
    areaOf.fill(k, a.start, a.end);
  });
  const areaName = (i: number): string => geometry.areas[areaOf[i]].name;
  const role = (i: number): string => {
    const a = geometry.areas[areaOf[i]];
    const tags = [a === model.layout.inputArea ? "input" : "", a === model.layout.outputArea ? "output" : ""].filter(Boolean);
    return tags.length ? ` (${tags.join(", ")} area)` : "";
  };
  const describe = (i: number): string => {
    const a = geometry.areas[areaOf[i]];
    const local = i - a.start;
    const where = a.grid ? `row ${Math.floor(local / a.grid[1])}, col ${local % a.grid[1]}` : `#${local}`;
    return `column ${i} · ${a.name}${role(i)} ${where}`;
  };

  const state = readViewState();
  state.step = Math.min(state.step, depth - 1);
  if (state.col !== null && state.col >= n) state.col = null;
  let forward: ViewerForward | null = null;
  let input: Float32Array = new Float32Array(vision.image_size * vision.image_size * vision.channels);
  let dev = device;

  // --- layout
  const drawing = sheetDrawing(geometry, model.learnedPositions);
  const select = (i: number | null): void => {
    state.col = state.col === i ? null : i;
    if (state.col !== null && (state.q === "norm" || state.q === "area")) state.q = "incoming";
    if (state.col === null && (state.q === "incoming" || state.q === "outgoing")) state.q = "norm";
    redraw();
  };
  const sheetView = new SheetView(drawing, select);
  const colorBar = new ColorBar();
  const quantity = el("select", { id: "quantity", title: "colour the columns by (c)" }, ...QUANTITIES.map((q) => el("option", { value: q.id }, q.label)));
  const slider = el("input", { id: "step", type: "range", min: "1", max: String(depth), value: String(state.step + 1), title: "recurrent step (← →)" });
  const stepLabel = el("span", { id: "step-label" });
  const play = el("button", { id: "play", title: "play the steps (space)" }, "▶");
  const timing = el("span", { class: "muted", id: "timing" });
  const center = panel(`Sheet: ${n} columns, ${geometry.spec.kind}${geometry.areas.length > 1 ? `, ${geometry.areas.length} areas` : ""}, depth ${depth}`);
  center.body.append(el("div", { class: "controls" }, el("label", {}, "colour ", quantity), el("label", {}, "step ", slider), stepLabel, play), sheetView.root, el("div", { class: "controls" }, colorBar.root, timing));
  const metric = geometryMetric(geometry);
  const columnPanel = new ColumnPanel({ n, depth, connectivity: conn, distance: (i, j) => columnDistance(metric, i, j), areaName, describe, onSelect: (i) => select(i) });
  const readout = new ReadoutPanel(vision.task, vision.image_size, vision.channels, samples?.classNames ?? null);
  const inputPanel = new InputPanel(samples, m.samplesNote, vision.image_size, vision.channels, (image, source) => {
    input = image;
    state.img = source;
    current = rerun();
  });
  const left = el("div", {}, inputPanel.root, readout.root);
  left.style.display = "grid";
  left.style.gap = "12px";
  left.style.alignContent = "start";
  hook.train = { status: "idle", device: "", note: null, losses: [], stepsPerSecond: NaN };
  const train = trainPanel(samples, vision.task, vision.task === "classify" ? vision.num_classes : 0, device, hook.train);
  app.append(left, center.root, columnPanel.root, train, ...extras);

  function redraw(): void {
    quantity.value = state.q;
    slider.value = String(state.step + 1);
    stepLabel.textContent = `${state.step + 1} / ${depth}`;
    writeViewState(state);
    if (!forward) return;
    const info = QUANTITIES.find((q) => q.id === state.q)!;
    if (info.needsPopulation && !population) void computePopulation();
    const values = quantityValues(state.q, forward, n, state.step, state.col, conn, areaOf, population);
    let lo = Infinity;
    let hi = -Infinity;
    if (values) {
      for (const v of values) {
        if (!Number.isNaN(v)) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
    }
    if (state.q === "incoming" || state.q === "outgoing") lo = 0;
    const why = info.needsColumn ? "click a column" : samples ? `computing over ${samples.images.length} held-out images…` : "needs held-out images";
    const label = values && info.needsPopulation && population ? `${info.label} (${population.images} images)` : info.label;
    const classes = vision.task === "classify" ? vision.num_classes : 0;
    const categories = state.q === "area" ? geometry.areas.map((a) => a.name) : Array.from({ length: Math.max(classes, hi + 1 || 0) }, (_, c) => samples?.classNames?.[c] ?? String(c));
    colorBar.update(lo, hi, values ? label : `${label}: ${why}`, info.categorical, categories);
    const row = state.col !== null ? quantityValues("incoming", forward, n, state.step, state.col, conn, areaOf)! : null;
    const top = row ? topK(row, 6) : [];
    const wmax = top.length ? top[0][1] || 1 : 1;
    sheetView.update({
      values,
      lo,
      hi,
      categorical: info.categorical,
      selected: state.col,
      sources: top.filter(([j]) => j !== state.col).map(([j, w]) => [j, w / wmax]),
      describe,
    });
    columnPanel.update(forward, state.col, state.step);
  }

  // column statistics over the held-out images (preferred class, selectivity), computed on first use
  let population: PopulationStats | null = null;
  let populating = false;
  async function computePopulation(): Promise<void> {
    if (populating || population || !samples) return;
    populating = true;
    const energies: Float32Array[] = [];
    for (let k = 0; k < samples.images.length; k++) {
      const mask = vision.task === "mim" ? seededPatchMask(model.layout.numPatches, model.maskRatio, state.seed) : null;
      energies.push((await viewerForward(model, Float32Array.from(samples.images[k]), mask)).energy);
      if (k % 8 === 7) setStatus(`column statistics: ${k + 1} / ${samples.images.length} images`);
    }
    const classes = Math.max(vision.task === "classify" ? vision.num_classes : 0, ...samples.labels.map((l) => (l ?? -1) + 1));
    population = populationStats(energies, samples.labels, classes, depth, n);
    populating = false;
    setStatus(`column statistics over ${energies.length} held-out images`);
    redraw();
  }

  let current: Promise<void> = Promise.resolve();
  let lastMask: Float32Array | null = null;
  let running: Promise<void> | null = null;
  let pending = false;
  async function rerun(): Promise<void> {
    if (running) {
      pending = true;
      return running;
    }
    running = (async () => {
      do {
        pending = false;
        const mask = vision.task === "mim" ? seededPatchMask(model.layout.numPatches, model.maskRatio, state.seed) : null;
        const image = input;
        lastMask = mask;
        try {
          forward = await viewerForward(model, image, mask);
        } catch (e) {
          if (dev === "webgpu") {
            console.warn(`WebGPU forward failed (${(e as Error).message}); retrying on WebAssembly`);
            dev = await fallBackToWasm((e as Error).message);
            hook.device = dev;
            forward = await viewerForward(model, image, mask);
          } else {
            showError(`the forward pass failed: ${(e as Error).message}`);
            return;
          }
        }
        hook.forwards++;
        const why = webgpuNote();
        timing.textContent = `forward ${forward.ms.toFixed(0)} ms on ${dev}${why ? ` (not webgpu: ${why})` : ""}`;
        setStatus(`step ${model.step} checkpoint · ${dev} · forward ${forward.ms.toFixed(0)} ms`);
        readout.update(image, forward, typeof state.img === "number" ? inputPanel.label(state.img) : null);
        redraw();
      } while (pending);
    })();
    await running;
    running = null;
  }

  // --- controls
  quantity.addEventListener("change", () => {
    state.q = quantity.value as Quantity;
    redraw();
  });
  slider.addEventListener("input", () => {
    state.step = Number(slider.value) - 1;
    redraw();
  });
  let timer: number | null = null;
  const togglePlay = (): void => {
    if (timer !== null) {
      clearInterval(timer);
      timer = null;
      play.textContent = "▶";
      return;
    }
    play.textContent = "⏸";
    timer = window.setInterval(() => {
      state.step = (state.step + 1) % depth;
      redraw();
    }, 700);
  };
  play.addEventListener("click", togglePlay);
  window.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement && e.target.type !== "range") return;
    if (e.target instanceof HTMLButtonElement && (e.key === " " || e.key === "Enter")) return; // the button's own click
    if (e.target instanceof HTMLSelectElement) return;
    const k = e.key;
    if (k === "ArrowRight" || k === "ArrowLeft") {
      state.step = (state.step + (k === "ArrowRight" ? 1 : depth - 1)) % depth;
      redraw();
    } else if (k === " ") togglePlay();
    else if (k === "Escape") select(null);
    else if (k === "c") {
      const ids = QUANTITIES.filter((q) => !q.needsColumn || state.col !== null).map((q) => q.id);
      state.q = ids[(ids.indexOf(state.q) + 1) % ids.length];
      redraw();
    } else if ((k === "[" || k === "]") && inputPanel.count > 0) {
      const cur = typeof state.img === "number" ? state.img : 0;
      inputPanel.pick((cur + (k === "]" ? 1 : inputPanel.count - 1)) % inputPanel.count);
    } else if (k === "d") inputPanel.drawCanvas.scrollIntoView();
    else if (k === "m" && vision.task === "mim") {
      state.seed++;
      void rerun();
    } else return;
    e.preventDefault();
  });

  Object.assign(hook, {
    state: () => ({ ...state }),
    input: () => Array.from(input),
    x0: () => (forward ? Array.from(forward.x0) : []),
    probs: () => (forward?.probs ? Array.from(forward.probs) : null),
    mask: () => (lastMask ? Array.from(lastMask) : null),
    reconstruction: () => (forward?.reconstruction ? Array.from(forward.reconstruction) : null),
    attentionRow: () => (forward && state.col !== null ? Array.from(quantityValues("incoming", forward, n, state.step, state.col, conn, areaOf)!) : null),
    lastForwardMs: () => forward?.ms ?? NaN,
    columnCenter: (i: number) => sheetView.columnCenter(i),
    numColumns: n,
    depth,
  });
  if (state.img === "draw" || inputPanel.count === 0) inputPanel.useDrawing();
  else inputPanel.pick(Math.min(state.img, inputPanel.count - 1));
  await current;
  hook.ready = true;
}
