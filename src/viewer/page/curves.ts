/** Training curves from log.jsonl: loss parts, accuracy, wiring cost and learning rate, as small SVG line charts. */
import type { LogRecord } from "../compute/manifest.ts";
import { categorical, rgbHex } from "../../viz/colormap.ts";
import { fmt, panel } from "./dom.ts";

const GROUPS: { title: string; keys: string[]; log?: boolean }[] = [
  { title: "loss", keys: ["loss", "task_loss", "eval_loss", "eval_mim_loss", "eval_classification_loss"] },
  { title: "accuracy", keys: ["train_accuracy", "eval_accuracy"] },
  { title: "wiring cost", keys: ["wiring_cost", "eval_wiring_cost"] },
  { title: "learning rate", keys: ["lr"] },
];

const SVG = "http://www.w3.org/2000/svg";

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** One SVG line chart of named series over steps (the training curves' and the Train panel's). */
export function chart(title: string, series: { key: string; xs: number[]; ys: number[] }[]): SVGSVGElement {
  const W = 300;
  const H = 170;
  const L = 46;
  const B = 22;
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  const xs = series.flatMap((s) => s.xs);
  const ys = series.flatMap((s) => s.ys);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = [y0 - 1e-9 - Math.abs(y0) * 0.1, y1 + 1e-9 + Math.abs(y1) * 0.1];
  const px = (x: number): number => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - 8);
  const py = (y: number): number => 16 + (1 - (y - y0) / (y1 - y0)) * (H - 16 - B);
  const text = (x: number, y: number, s: string, anchor = "start"): SVGTextElement => {
    const t = svg("text", { x, y, "font-size": 10, fill: "#666b75", "text-anchor": anchor });
    t.textContent = s;
    return t;
  };
  root.append(text(L, 11, title), text(L - 4, py(y1) + 3, fmt(y1), "end"), text(L - 4, py(y0) + 3, fmt(y0), "end"), text(px(x0), H - 6, fmt(x0)), text(px(x1), H - 6, `step ${fmt(x1)}`, "end"));
  root.append(svg("rect", { x: L, y: 16, width: W - L - 8, height: H - 16 - B, fill: "none", stroke: "#d8dbe0" }));
  series.forEach((s, k) => {
    const color = rgbHex(categorical(k));
    const d = s.xs.map((x, i) => `${i ? "L" : "M"}${px(x).toFixed(1)},${py(s.ys[i]).toFixed(1)}`).join("");
    root.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 1.5 }));
    if (s.xs.length < 30) for (let i = 0; i < s.xs.length; i++) root.append(svg("circle", { cx: px(s.xs[i]), cy: py(s.ys[i]), r: 2, fill: color }));
    const t = text(W - 10, 28 + 11 * k, s.key, "end");
    t.setAttribute("fill", color);
    root.append(t);
  });
  return root;
}

/** The curves panel, or null when the log has no numeric records. */
export function curvesPanel(log: LogRecord[]): HTMLElement | null {
  const charts: SVGSVGElement[] = [];
  for (const g of GROUPS) {
    const series = g.keys
      .map((key) => {
        const rows = log.filter((r) => typeof r.step === "number" && typeof r[key] === "number" && Number.isFinite(r[key]));
        return { key, xs: rows.map((r) => r.step as number), ys: rows.map((r) => r[key] as number) };
      })
      .filter((s) => s.xs.length > 0);
    if (series.length) charts.push(chart(g.title, series));
  }
  if (!charts.length) return null;
  const { root, body } = panel("Training curves (log.jsonl)", "wide");
  body.className = "charts";
  body.append(...charts);
  return root;
}
