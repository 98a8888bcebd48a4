/** The readout: class probabilities (classification) or masked input and reconstruction (MIM). */
import type { ViewerForward } from "../compute/forward.ts";
import { drawImage, el, fmt, panel } from "./dom.ts";

export class ReadoutPanel {
  readonly root: HTMLElement;
  private readonly body: HTMLElement;

  constructor(
    private readonly task: "mim" | "classify",
    private readonly size: number,
    private readonly channels: number,
    private readonly classNames: string[] | null,
  ) {
    const p = panel(task === "classify" ? "Class probabilities" : "Masked image modelling");
    this.root = p.root;
    this.body = p.body;
  }

  update(input: Float32Array, f: ViewerForward, label: string | null): void {
    this.body.replaceChildren();
    if (this.task === "classify" && f.probs) {
      const probs = f.probs;
      let best = 0;
      for (let c = 1; c < probs.length; c++) if (probs[c] > probs[best]) best = c;
      const name = (c: number): string => this.classNames?.[c] ?? String(c);
      this.body.append(
        el("p", {}, "predicted ", el("strong", { id: "predicted", "data-class": String(best) }, name(best)), ` (p = ${fmt(probs[best])})`, label !== null ? el("span", { class: "muted" }, ` · label ${label}`) : ""),
      );
      const bars = el("div", { class: "bars", id: "probs" });
      probs.forEach((p, c) => {
        const bar = el("div", { class: c === best ? "bar top" : "bar", title: `${name(c)}: ${p}` });
        bar.style.width = `${Math.max(0.5, p * 100)}%`;
        bars.append(el("span", {}, name(c)), el("div", {}, bar), el("span", { "data-prob": String(p) }, fmt(p)));
      });
      this.body.append(bars);
      return;
    }
    const fig = (title: string, image: ArrayLike<number>): HTMLElement => {
      const c = el("canvas");
      drawImage(c, image, this.size, this.channels);
      return el("figure", {}, c, el("figcaption", {}, title));
    };
    this.body.append(el("div", { class: "images" }, fig("input", input), fig("masked", f.masked!), fig("reconstruction", f.reconstruction!)));
    this.body.append(el("p", { class: "muted" }, "m: new mask"));
  }
}
