/**
 * The input panel: held-out images to pick, and a canvas to draw a digit with the mouse
 * (white ink on black, as MNIST). The drawing is averaged down to the model's image size.
 */
import type { SampleSet } from "../compute/manifest.ts";
import { drawImage, el, panel } from "./dom.ts";

const DRAW_PX = 196;

export class InputPanel {
  readonly root: HTMLElement;
  readonly drawCanvas = el("canvas", { class: "draw", width: String(DRAW_PX), height: String(DRAW_PX), title: "draw with the mouse" });
  private readonly thumbs: HTMLCanvasElement[] = [];
  private drawn = false;

  constructor(
    private readonly samples: SampleSet | null,
    note: string | null,
    private readonly size: number,
    private readonly channels: 1 | 3,
    private readonly onInput: (image: Float32Array, source: number | "draw") => void,
  ) {
    const { root, body } = panel("Input");
    this.root = root;
    if (samples) {
      const grid = el("div", { class: "samples" });
      samples.images.forEach((img, i) => {
        const c = el("canvas", { title: `held-out image ${i}${samples.labels[i] !== null ? `, label ${samples.classNames?.[samples.labels[i]!] ?? samples.labels[i]}` : ""}` });
        drawImage(c, img, samples.image_size, samples.channels);
        c.addEventListener("click", () => this.pick(i));
        this.thumbs.push(c);
        grid.append(c);
      });
      body.append(el("div", { class: "muted" }, `${samples.images.length} images from ${samples.source}`), grid);
    } else {
      body.append(el("p", { class: "muted" }, note ?? "no held-out images"));
    }
    const clear = el("button", {}, "clear");
    clear.addEventListener("click", () => this.clearDrawing());
    body.append(el("p", { class: "muted" }, "or draw (d):"), this.drawCanvas, el("div", {}, clear));
    this.clearDrawing(false);
    this.installDrawing();
  }

  get count(): number {
    return this.samples?.images.length ?? 0;
  }

  /** Use held-out image i. */
  pick(i: number): void {
    if (!this.samples || i < 0 || i >= this.samples.images.length) return;
    this.thumbs.forEach((t, k) => {
      t.classList.toggle("on", k === i);
    });
    this.onInput(Float32Array.from(this.samples.images[i]), i);
  }

  /** Use the drawing. */
  useDrawing(): void {
    this.thumbs.forEach((t) => {
      t.classList.remove("on");
    });
    this.onInput(this.drawingPixels(), "draw");
  }

  label(i: number): string | null {
    const l = this.samples?.labels[i];
    return l === null || l === undefined ? null : (this.samples!.classNames?.[l] ?? String(l));
  }

  private clearDrawing(emit = true): void {
    const ctx = this.drawCanvas.getContext("2d")!;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, DRAW_PX, DRAW_PX);
    this.drawn = false;
    if (emit) this.useDrawing();
  }

  private installDrawing(): void {
    const ctx = this.drawCanvas.getContext("2d")!;
    let last: [number, number] | null = null;
    const at = (e: PointerEvent): [number, number] => {
      const r = this.drawCanvas.getBoundingClientRect();
      return [((e.clientX - r.left) * DRAW_PX) / r.width, ((e.clientY - r.top) * DRAW_PX) / r.height];
    };
    this.drawCanvas.addEventListener("pointerdown", (e) => {
      this.drawCanvas.setPointerCapture(e.pointerId);
      last = at(e);
    });
    this.drawCanvas.addEventListener("pointermove", (e) => {
      if (!last) return;
      const p = at(e);
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = DRAW_PX / 11;
      ctx.lineCap = "round";
      ctx.beginPath();
      ctx.moveTo(last[0], last[1]);
      ctx.lineTo(p[0], p[1]);
      ctx.stroke();
      last = p;
      this.drawn = true;
    });
    const end = (): void => {
      if (!last) return;
      last = null;
      if (this.drawn) this.useDrawing();
    };
    this.drawCanvas.addEventListener("pointerup", end);
    this.drawCanvas.addEventListener("pointercancel", end);
  }

  /** The drawing averaged down to size x size (x channels), values in [0, 1]. */
  drawingPixels(): Float32Array {
    const data = this.drawCanvas.getContext("2d")!.getImageData(0, 0, DRAW_PX, DRAW_PX).data;
    const n = this.size;
    const out = new Float32Array(n * n * this.channels);
    const cell = DRAW_PX / n;
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        let sum = 0;
        let count = 0;
        for (let y = Math.floor(r * cell); y < Math.floor((r + 1) * cell); y++) {
          for (let x = Math.floor(c * cell); x < Math.floor((c + 1) * cell); x++) {
            sum += data[(y * DRAW_PX + x) * 4];
            count++;
          }
        }
        const v = sum / count / 255;
        for (let ch = 0; ch < this.channels; ch++) out[(r * n + c) * this.channels + ch] = v;
      }
    }
    return out;
  }
}
