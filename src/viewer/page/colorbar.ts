/** A colour bar: the colormap from min to max with the two end values. */
import { categorical, rgbHex, viridis } from "../../viz/colormap.ts";
import { el, fmt } from "./dom.ts";

/** Colour of value v in [lo, hi] (viridis), or an area's categorical colour. */
export function colorOf(v: number, lo: number, hi: number, categorical_: boolean): string {
  if (categorical_) return rgbHex(categorical(Math.round(v)));
  const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
  return rgbHex(viridis(Math.min(1, Math.max(0, t))));
}

export class ColorBar {
  readonly root: HTMLElement;
  private readonly canvas = el("canvas", { width: "200", height: "1" });
  private readonly lo = el("span");
  private readonly hi = el("span");
  private readonly label = el("span");
  private readonly legend = el("span", { class: "legend" });

  constructor() {
    this.root = el("div", { class: "colorbar" }, this.lo, this.canvas, this.hi, this.legend, this.label);
    const ctx = this.canvas.getContext("2d")!;
    for (let x = 0; x < 200; x++) {
      ctx.fillStyle = rgbHex(viridis(x / 199));
      ctx.fillRect(x, 0, 1, 1);
    }
  }

  /** Show the range [lo, hi] of `label`; categorical quantities show `categories` (value k = categories[k]) instead of the bar. */
  update(lo: number, hi: number, label: string, categorical_: boolean, categories: string[] = []): void {
    this.canvas.style.display = categorical_ ? "none" : "";
    this.legend.replaceChildren(
      ...(categorical_ ? categories : []).map((name, k) => {
        const swatch = el("i", { class: "swatch" });
        swatch.style.background = rgbHex(categorical(k));
        return el("span", {}, swatch, name);
      }),
    );
    this.lo.textContent = categorical_ ? "" : fmt(lo);
    this.hi.textContent = categorical_ ? "" : fmt(hi);
    this.label.textContent = label;
  }
}
