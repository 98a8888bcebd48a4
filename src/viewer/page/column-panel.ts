/**
 * The selected column: its area and position, its strongest sources at the current step
 * (its incoming attention), the columns that read it most (outgoing), and a step-by-step
 * summary (top source, self-attention, mean attention distance).
 */
import { attentionColumn, attentionRow, topK } from "../compute/quantities.ts";
import type { ViewerForward } from "../compute/forward.ts";
import { el, fmt, panel } from "./dom.ts";

export interface ColumnContext {
  n: number;
  depth: number;
  connectivity: Int32Array | null;
  /** Distance between columns i and j in the geometry's metric. */
  distance: (i: number, j: number) => number;
  areaName: (i: number) => string;
  describe: (i: number) => string;
  onSelect: (i: number) => void;
}

export class ColumnPanel {
  readonly root: HTMLElement;
  private readonly body: HTMLElement;

  constructor(private readonly ctx: ColumnContext) {
    const p = panel("Column");
    this.root = p.root;
    this.body = p.body;
    this.body.append(el("p", { class: "muted" }, "click a column of the sheet"));
  }

  private table(rows: [number, number][], head: string): HTMLElement {
    const t = el("table", {}, el("tr", {}, el("th", {}, head), el("th", {}, "area"), el("th", {}, "weight")));
    for (const [i, w] of rows) {
      const tr = el("tr", { class: "link", title: "select" }, el("td", {}, String(i)), el("td", {}, this.ctx.areaName(i)), el("td", {}, fmt(w)));
      tr.addEventListener("click", () => this.ctx.onSelect(i));
      t.append(tr);
    }
    return t;
  }

  update(f: ViewerForward, selected: number | null, step: number): void {
    this.body.replaceChildren();
    if (selected === null) {
      this.body.append(el("p", { class: "muted" }, "click a column of the sheet (Esc clears)"));
      return;
    }
    const { n, depth, connectivity, distance } = this.ctx;
    const row = attentionRow(f, n, step, selected, connectivity);
    this.body.append(el("p", {}, el("strong", { id: "column-id" }, this.ctx.describe(selected)), ` · step ${step + 1}/${depth}`));
    this.body.append(el("div", { class: "muted" }, "reads from (incoming attention)"), this.table(topK(row, 8), "source"));
    this.body.append(el("div", { class: "muted" }, "read by (outgoing: attention it receives)"), this.table(topK(attentionColumn(f, n, step, selected, connectivity), 8), "target"));
    const steps = el("table", {}, el("tr", {}, el("th", {}, "step"), el("th", {}, "top source"), el("th", {}, "self"), el("th", {}, "mean dist")));
    for (let s = 0; s < depth; s++) {
      const r = attentionRow(f, n, s, selected, connectivity);
      const [[top, w]] = topK(r, 1);
      let dist = 0;
      for (let j = 0; j < n; j++) dist += r[j] * distance(selected, j);
      const tr = el("tr", s === step ? { style: "background:#eef3fd" } : {}, el("td", {}, String(s + 1)), el("td", {}, `${top} (${fmt(w)})`), el("td", {}, fmt(r[selected])), el("td", {}, fmt(dist)));
      steps.append(tr);
    }
    this.body.append(el("div", { class: "muted" }, "per step"), steps);
    // the full attention row, for tools and tests
    this.body.append(el("script", { type: "application/json", id: "attention-row" }, JSON.stringify(Array.from(row))));
  }
}
