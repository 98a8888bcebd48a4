/**
 * The sheet on a canvas: each column at its place (see compute/sheet-layout.ts), filled with
 * the colour of the chosen quantity; the selected column is outlined and its strongest sources
 * at the current step are joined to it by lines. Hover shows a tooltip with the value; a click
 * selects (or, on the selected column, clears).
 */
import { columnAt, type SheetDrawing } from "../compute/sheet-layout.ts";
import { colorOf } from "./colorbar.ts";
import { el, fmt } from "./dom.ts";

export interface SheetPaint {
  values: Float32Array | null;
  lo: number;
  hi: number;
  categorical: boolean;
  selected: number | null;
  /** Lines from these sources to the selected column (weights in (0, 1]). */
  sources: [number, number][];
  /** Label of a column for the tooltip. */
  describe: (i: number) => string;
}

export class SheetView {
  readonly root: HTMLElement;
  readonly canvas = el("canvas", { id: "sheet" });
  private readonly tooltip = el("div", { id: "tooltip" });
  private scale = 1;
  private readonly margin = 18;
  private paint: SheetPaint | null = null;

  constructor(
    private readonly drawing: SheetDrawing,
    onSelect: (i: number | null) => void,
  ) {
    this.tooltip.hidden = true;
    this.root = el("div", { id: "sheet-wrap" }, this.canvas, this.tooltip);
    this.canvas.addEventListener("click", (e) => {
      const i = this.hit(e);
      onSelect(i < 0 ? null : i);
    });
    this.canvas.addEventListener("mousemove", (e) => {
      const i = this.hit(e);
      if (i < 0 || !this.paint) {
        this.tooltip.hidden = true;
        return;
      }
      const v = this.paint.values ? this.paint.values[i] : NaN;
      this.tooltip.textContent = `${this.paint.describe(i)}${Number.isNaN(v) ? "" : ` · ${fmt(v)}`}`;
      this.tooltip.hidden = false;
      const r = this.canvas.getBoundingClientRect();
      this.tooltip.style.left = `${e.clientX - r.left + 12}px`;
      this.tooltip.style.top = `${e.clientY - r.top + 12}px`;
    });
    this.canvas.addEventListener("mouseleave", () => (this.tooltip.hidden = true));
    new ResizeObserver(() => this.render()).observe(this.root);
  }

  private hit(e: MouseEvent): number {
    const r = this.canvas.getBoundingClientRect();
    const px = ((e.clientX - r.left) * (this.canvas.width / r.width)) / devicePixelRatio;
    const py = ((e.clientY - r.top) * (this.canvas.height / r.height)) / devicePixelRatio;
    return columnAt(this.drawing, (px - this.margin) / this.scale, (py - this.margin) / this.scale);
  }

  /** Centre of column i in client (viewport) pixels. */
  columnCenter(i: number): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    const k = r.width / (this.canvas.width / devicePixelRatio);
    return { x: r.left + (this.margin + this.drawing.x[i] * this.scale) * k, y: r.top + (this.margin + this.drawing.y[i] * this.scale) * k };
  }

  update(paint: SheetPaint): void {
    this.paint = paint;
    this.render();
  }

  private render(): void {
    const d = this.drawing;
    const cssWidth = Math.max(300, this.root.clientWidth || 600);
    this.scale = (cssWidth - 2 * this.margin) / d.width;
    const cssHeight = d.height * this.scale + 2 * this.margin;
    const dpr = devicePixelRatio;
    this.canvas.width = Math.round(cssWidth * dpr);
    this.canvas.height = Math.round(cssHeight * dpr);
    this.canvas.style.height = `${cssHeight}px`;
    const ctx = this.canvas.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssWidth, cssHeight);
    const m = this.margin;
    const s = this.scale;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#666b75";
    for (const p of d.panels) ctx.fillText(p.name, m + p.x * s, m - 5);
    const paint = this.paint;
    const r = d.radius * s;
    for (let i = 0; i < d.x.length; i++) {
      const v = paint?.values ? paint.values[i] : NaN;
      ctx.fillStyle = Number.isNaN(v) ? "#d0d3d8" : colorOf(v, paint!.lo, paint!.hi, paint!.categorical);
      const cx = m + d.x[i] * s;
      const cy = m + d.y[i] * s;
      if (d.cells) ctx.fillRect(cx - r + 0.5, cy - r + 0.5, 2 * r - 1, 2 * r - 1);
      else {
        ctx.beginPath();
        ctx.arc(cx, cy, r * 0.9, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    if (paint && paint.selected !== null) {
      const j = paint.selected;
      const tx = m + d.x[j] * s;
      const ty = m + d.y[j] * s;
      ctx.lineCap = "round";
      for (const [src, w] of paint.sources) {
        ctx.strokeStyle = `rgba(224, 60, 40, ${0.25 + 0.75 * w})`;
        ctx.lineWidth = 0.5 + 3 * w;
        ctx.beginPath();
        ctx.moveTo(m + d.x[src] * s, m + d.y[src] * s);
        ctx.lineTo(tx, ty);
        ctx.stroke();
      }
      ctx.strokeStyle = "#e03c28";
      ctx.lineWidth = 2.5;
      ctx.strokeRect(tx - r, ty - r, 2 * r, 2 * r);
    }
  }
}
