/** The results of `columnformer analyze`: its figures and a filterable table of its scalar metrics. */
import type { RunManifest } from "../compute/manifest.ts";
import { el, fmt, panel } from "./dom.ts";

export function analysisPanel(m: RunManifest, base: string): HTMLElement | null {
  if (!m.analysis && m.figures.length === 0) return null;
  const { root, body } = panel("Analysis (columnformer analyze)", "wide");
  if (m.analysis) {
    const filter = el("input", { type: "search", placeholder: "filter metrics" });
    const table = el("table");
    const fill = (): void => {
      const q = filter.value.toLowerCase();
      table.replaceChildren(
        ...Object.entries(m.analysis!)
          .filter(([k]) => k.toLowerCase().includes(q))
          .map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { title: String(v) }, fmt(v)))),
      );
    };
    filter.addEventListener("input", fill);
    fill();
    body.append(filter, el("div", { class: "metrics" }, table));
  }
  if (m.figures.length) {
    body.append(el("div", { class: "figures" }, ...m.figures.map((f) => el("figure", {}, el("img", { src: base + f.url, alt: f.name, loading: "lazy" }), el("figcaption", { class: "muted" }, f.name)))));
  }
  return root;
}
