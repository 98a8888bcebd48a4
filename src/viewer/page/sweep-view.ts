/** A sweep: its runs in a compare table; a row opens that run (the URL keeps `run=NAME`). */
import type { SweepManifest } from "../compute/manifest.ts";
import { el, fmt, panel } from "./dom.ts";

export function sweepView(m: SweepManifest, open: (run: string) => void): HTMLElement {
  const { root, body } = panel(`Sweep ${m.name}: ${m.runs.length} runs`, "wide");
  const table = el("table", { id: "sweep-table" }, el("tr", {}, el("th", {}, "run"), ...m.columns.map((c) => el("th", {}, c.replace(/_/g, " ")))));
  for (const r of m.runs) {
    const tr = el("tr", { class: "link", title: `open ${r.name}` }, el("td", {}, r.name), ...m.columns.map((c) => {
      const v = r.values[c];
      return el("td", {}, v === null || v === undefined ? "–" : typeof v === "number" ? fmt(v) : v);
    }));
    tr.addEventListener("click", () => open(r.name));
    table.append(tr);
  }
  body.append(table);
  return root;
}
