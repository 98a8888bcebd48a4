import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import sharp from "sharp";
import { buildGeometry } from "../src/geometry/index.ts";
import {
  MAX_RECT_CELLS,
  encodeRgbPngSync,
  formatTick,
  histogram,
  lineChart,
  matrixHeatmap,
  niceTicks,
  scatter,
} from "../src/viz/charts.ts";
import { categorical, diverging, rgbHex, rgbToLab, viridis } from "../src/viz/colormap.ts";
import { svgToPng, writeFigure } from "../src/viz/render.ts";
import {
  MOLLWEIDE_A,
  MOLLWEIDE_B,
  attentionOnSheet,
  mollweide,
  sheetLayout,
  sheetMap,
  sheetMaps,
} from "../src/viz/sheet-maps.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "cf-charts-"));

/** A tiny XML well-formedness check: root <svg> with size, balanced tags, quoted attributes, escaped text. */
function assertWellFormed(svg: string): void {
  assert.ok(svg.startsWith("<svg "), "starts with <svg");
  const open = /^<svg [^>]*>/.exec(svg)?.[0] ?? "";
  assert.match(open, /\swidth="\d+(\.\d+)?"/);
  assert.match(open, /\sheight="\d+(\.\d+)?"/);
  assert.match(open, /\sviewBox="0 0 [\d.]+ [\d.]+"/);
  assert.match(open, /xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < svg.length) {
    const lt = svg.indexOf("<", i);
    const text = svg.slice(i, lt < 0 ? svg.length : lt);
    assert.ok(!/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(text), `unescaped & in text near ${i}`);
    assert.ok(!text.includes(">"), `stray > near ${i}`);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(svg);
    assert.ok(m, `malformed tag at ${lt}: ${svg.slice(lt, lt + 80)}`);
    const [, close, name, , selfClose] = m;
    if (close) assert.equal(stack.pop(), name, `closing </${name}> at ${lt}`);
    else if (!selfClose) stack.push(name);
    if (stack.length === 0) assert.equal(svg.slice(tag.lastIndex).trim(), "", "nothing after the root");
    i = tag.lastIndex;
  }
  assert.deepEqual(stack, [], "all tags closed");
}

/** Render and check the PNG has the SVG's size and is not blank (some pixels far from white). */
async function assertRenders(svg: string): Promise<void> {
  const png = await svgToPng(svg, 1);
  assert.ok(png.length > 0);
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const w = Number(/width="(\d+)"/.exec(svg)?.[1]);
  assert.equal(info.width, w);
  let dark = 0;
  for (let k = 0; k < data.length; k += 3) if (data[k] + data[k + 1] + data[k + 2] < 600) dark++;
  assert.ok(dark > 100, `rendered image is nearly blank (${dark} non-white pixels)`);
}

function attr(el: string, name: string): number {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(el);
  assert.ok(m, `${name} in ${el}`);
  return Number(m[1]);
}

const closeRgb = (a: readonly number[], b: readonly number[], tol = 1): void => {
  for (let k = 0; k < 3; k++) assert.ok(Math.abs(a[k] - b[k]) <= tol, `${a} vs ${b}`);
};

test("colour maps: published endpoints, uniform lightness, diverging symmetry, distinct categories", () => {
  assert.equal(rgbHex(viridis(0)), "#440154");
  assert.equal(rgbHex(viridis(1)), "#fde725");
  closeRgb(viridis(0.5), [0x21, 0x91, 0x8c]);
  assert.equal(rgbHex(viridis(-3)), "#440154", "clamped");
  assert.equal(rgbHex(viridis(Number.NaN)), "#440154");
  // Viridis lightness rises monotonically and about evenly.
  const L = Array.from({ length: 11 }, (_, k) => rgbToLab(viridis(k / 10))[0]);
  for (let k = 1; k < L.length; k++) assert.ok(L[k] > L[k - 1], `L increasing at ${k}`);
  const steps = L.slice(1).map((l, k) => l - L[k]);
  assert.ok(Math.max(...steps) / Math.min(...steps) < 1.6, `lightness steps ${steps}`);
  // Diverging: ColorBrewer RdBu endpoints, neutral centre, symmetric lightness.
  assert.equal(rgbHex(diverging(-1)), "#053061");
  assert.equal(rgbHex(diverging(1)), "#67001f");
  assert.equal(rgbHex(diverging(0)), "#f7f7f7");
  for (const t of [0.2, 0.5, 0.8]) {
    const a = rgbToLab(diverging(-t))[0];
    const b = rgbToLab(diverging(t))[0];
    assert.ok(Math.abs(a - b) < 6, `lightness at +-${t}: ${a} vs ${b}`);
    assert.ok(rgbToLab(diverging(t))[0] < rgbToLab(diverging(t / 2))[0], "darker away from 0");
  }
  const cats = new Set(Array.from({ length: 20 }, (_, i) => rgbHex(categorical(i))));
  assert.equal(cats.size, 20);
  assert.equal(rgbHex(categorical(0)), "#4e79a7");
  assert.equal(rgbHex(categorical(20)), rgbHex(categorical(0)), "wraps");
});

test("ticks and tick labels", () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(-3, 7, 5), [-2, 0, 2, 4, 6]);
  assert.deepEqual(niceTicks(5, 5), [5]);
  assert.equal(formatTick(0.30000000000000004, 0.1), "0.3");
  assert.equal(formatTick(2000, 500), "2000");
  assert.equal(formatTick(1e-5), "1e-5");
  assert.equal(formatTick(2.5e6, 5e5), "2.5e6");
});

test("encodeRgbPngSync writes a PNG sharp can decode", async () => {
  const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
  const png = encodeRgbPngSync(rgb, 2, 2);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [2, 2, 3]);
  assert.deepEqual([...data], [...rgb]);
  assert.throws(() => encodeRgbPngSync(rgb, 3, 2), RangeError);
});

test("charts: well-formed SVG that renders", async () => {
  const x = Array.from({ length: 500 }, (_, i) => i);
  const figs = [
    lineChart({
      title: "Loss & <accuracy>",
      xLabel: "step",
      yLabel: "loss",
      logY: true,
      series: [
        { name: "train", x, y: x.map((i) => 2 * Math.exp(-i / 100) + 0.01) },
        { name: "eval", x: [0, 250, 499], y: [2, Number.NaN, 0.05] },
      ],
    }),
    lineChart({ title: "", xLabel: "", yLabel: "", series: [] }),
    histogram({ title: "Histogram", xLabel: "value", yLabel: "count", edges: [0, 1, 2, 3], values: [3, 7, 2] }),
    scatter({ title: "Scatter", xLabel: "a", yLabel: "b", points: [{ x: 1, y: 2, label: "run \"a\"" }, { x: 3, y: 1 }, { x: Number.NaN, y: 0 }] }),
    matrixHeatmap({ title: "Small", values: [[1, 2], [3, Number.NaN]], colormap: "viridis", colorbarLabel: "v", rowLabels: ["r0", "r1"], colLabels: ["c0", "c1"] }),
  ];
  for (const svg of figs) {
    assertWellFormed(svg);
    await assertRenders(svg);
  }
  assert.ok(figs[0].includes("Loss &amp; &lt;accuracy&gt;"), "title escaped");
  assert.throws(() => lineChart({ title: "", xLabel: "", yLabel: "", series: [{ name: "s", x: [1, 2], y: [1] }] }), RangeError);
  assert.throws(() => histogram({ title: "", xLabel: "", yLabel: "", edges: [0, 1], values: [1, 2] }), RangeError);
});

test("lineChart: named x ticks and error bars that widen the y axis", async () => {
  const svg = lineChart({
    title: "smoothness",
    xLabel: "lambda",
    yLabel: "s",
    xTicks: [{ value: 0, label: "0" }, { value: 1, label: "0.01" }, { value: 2, label: "1" }],
    series: [{ name: "area0", x: [0, 1, 2], y: [4, 5, 6], yRange: [[3, 5], [Number.NaN, 6], [2, 10]] }],
  });
  assertWellFormed(svg);
  await assertRenders(svg);
  for (const label of [">0.01<", ">0<", ">1<"]) assert.ok(svg.includes(label), `tick ${label}`);
  const bars = /<path class="error-bar" d="([^"]*)"/.exec(svg);
  assert.ok(bars, "error bars drawn");
  assert.equal((bars[1].match(/V/g) ?? []).length, 2, "one bar per point with a finite range");
  assert.ok(svg.includes(">10<"), "the y axis reaches the top of the highest bar");
  assert.throws(() => lineChart({ title: "", xLabel: "", yLabel: "", series: [{ name: "s", x: [1, 2], y: [1, 2], yRange: [[0, 1]] }] }), /2 y values but 1 error bars/);
});

test("matrixHeatmap: rects for small matrices, one embedded raster for large ones", async () => {
  const small = matrixHeatmap({ title: "10x10", values: Array.from({ length: 10 }, (_, i) => Array.from({ length: 10 }, (_, j) => i - j)), colormap: "diverging", colorbarLabel: "d" });
  assertWellFormed(small);
  assert.equal((small.match(/<rect [^>]*fill="#/g) ?? []).length >= 100, true);
  const n = 300;
  assert.ok(n * n > MAX_RECT_CELLS);
  const data = new Float32Array(n * n).map((_, k) => Math.sin(k / 977));
  const big = matrixHeatmap({ title: "300x300", values: { rows: n, cols: n, data }, colormap: "viridis", colorbarLabel: "attention", xLabel: "key", yLabel: "query" });
  assertWellFormed(big);
  assert.equal((big.match(/<image /g) ?? []).length, 2, "matrix raster + colour bar raster");
  assert.ok((big.match(/<rect /g) ?? []).length < 20);
  assert.ok(big.length < 2_000_000, `SVG size ${big.length}`);
  await assertRenders(big);
});

test("sheetMap on a 2x3 grid: cell of column 4 at (row 1, col 1) with the viridis colour of its value", async () => {
  const geometry = buildGeometry({ kind: "grid", height: 2, width: 3 });
  const layout = sheetLayout(geometry);
  assert.equal(layout.panels.length, 1);
  assert.deepEqual(layout.panels[0], { kind: "grid", title: "", start: 0, rows: 2, cols: 3 });
  const values = new Float32Array([0, 1, 2, 3, 4, 5]);
  const svg = sheetMap({ title: "Grid", values, layout, colormap: "viridis", colorbarLabel: "value", highlight: [4] });
  assertWellFormed(svg);
  const cell = (i: number): string => {
    const m = new RegExp(`<rect data-col="${i}"[^>]*>`).exec(svg);
    assert.ok(m, `cell ${i}`);
    return m[0];
  };
  const c0 = cell(0);
  const c4 = cell(4);
  const w = attr(c0, "width");
  const h = attr(c0, "height");
  assert.ok(w > 10 && Math.abs(w - h) < 1e-9, "square cells");
  assert.ok(Math.abs(attr(c4, "x") - (attr(c0, "x") + w)) < 0.011, "column 1");
  assert.ok(Math.abs(attr(c4, "y") - (attr(c0, "y") + h)) < 0.011, "row 1");
  assert.ok(Math.abs(attr(cell(5), "x") - (attr(c0, "x") + 2 * w)) < 0.011);
  assert.match(c4, new RegExp(`fill="${rgbHex(viridis(0.8))}"`));
  assert.match(c0, /fill="#440154"/);
  assert.match(cell(5), /fill="#fde725"/);
  // The highlight outline sits on the cell of column 4.
  const hl = /<rect class="highlight"[^>]*>/.exec(svg)?.[0] ?? "";
  assert.ok(Math.abs(attr(hl, "x") + attr(hl, "width") / 2 - (attr(c4, "x") + w / 2)) < 0.02);
  assert.ok(Math.abs(attr(hl, "y") + attr(hl, "height") / 2 - (attr(c4, "y") + h / 2)) < 0.02);
  await assertRenders(svg);
  // Diverging: 0 is the neutral colour.
  const div = sheetMap({ title: "", values: new Float32Array([-2, -1, 0, 1, 2, Number.NaN]), layout, colormap: "diverging", colorbarLabel: "d" });
  assert.match(/<rect data-col="2"[^>]*>/.exec(div)?.[0] ?? "", /fill="#f7f7f7"/);
  assert.match(/<rect data-col="4"[^>]*>/.exec(div)?.[0] ?? "", /fill="#67001f"/);
  assert.match(/<rect data-col="5"[^>]*>/.exec(div)?.[0] ?? "", /fill="#cccccc"/, "NaN is grey");
  assert.throws(() => sheetMap({ title: "", values: new Float32Array(5), layout, colormap: "viridis", colorbarLabel: "" }), RangeError);
});

test("stacked areas [2, 3] give two titled panels; categorical maps get a legend", async () => {
  const geometry = buildGeometry({ kind: "stacked", widths: [2, 3] });
  const layout = sheetLayout(geometry);
  assert.equal(layout.panels.length, 2);
  assert.deepEqual(
    layout.panels.map((p) => (p.kind === "grid" ? [p.title, p.start, p.rows, p.cols] : null)),
    [["area0", 0, 2, 2], ["area1", 4, 3, 3]],
  );
  const values = Float32Array.from({ length: 13 }, (_, i) => i % 3);
  const svg = sheetMap({ title: "Stacked", values, layout, colormap: "categorical", colorbarLabel: "class", categories: ["cat", "dog", "frog"] });
  assertWellFormed(svg);
  assert.ok(svg.includes(">area0</text>") && svg.includes(">area1</text>"));
  for (let i = 0; i < 13; i++) assert.ok(svg.includes(`data-col="${i}"`), `cell ${i}`);
  // Same cell size in both panels; area1 lies to the right of area0.
  const r3 = /<rect data-col="3"[^>]*>/.exec(svg)?.[0] ?? "";
  const r4 = /<rect data-col="4"[^>]*>/.exec(svg)?.[0] ?? "";
  assert.equal(attr(r3, "width"), attr(r4, "width"));
  assert.ok(attr(r4, "x") > attr(r3, "x") + attr(r3, "width"));
  assert.match(/<rect data-col="5"[^>]*>/.exec(svg)?.[0] ?? "", new RegExp(`fill="${rgbHex(categorical(2))}"`));
  assert.ok(svg.includes(">frog</text>"), "legend");
  await assertRenders(svg);
});

test("sphere: Mollweide projection keeps every column inside the ellipse", async () => {
  assert.deepEqual(mollweide(0, 0), [0, 0]);
  const [px, py] = mollweide(Math.PI / 2, 1);
  assert.ok(Math.abs(px) < 1e-12 && Math.abs(py - Math.SQRT2) < 1e-12, "north pole at the top");
  const [ex] = mollweide(0, Math.PI);
  assert.ok(Math.abs(ex - MOLLWEIDE_A) < 1e-12, "antimeridian at the right end");
  const geometry = buildGeometry({ kind: "sphere", num_columns: 400 });
  const layout = sheetLayout(geometry);
  const p = layout.panels[0];
  assert.equal(p.kind, "points");
  if (p.kind !== "points") return;
  assert.equal(p.indices.length, 400);
  for (let k = 0; k < 400; k++) {
    const e = (p.x[k] / MOLLWEIDE_A) ** 2 + (p.y[k] / MOLLWEIDE_B) ** 2;
    assert.ok(e <= 1 + 1e-9, `point ${k} outside: ${e}`);
  }
  // Northern columns (positive y on the sphere) are drawn in the upper half (screen y < 0).
  for (let k = 0; k < 400; k++) if (geometry.positions[3 * k + 1] > 0.01) assert.ok(p.y[k] < 0);
  const values = Float32Array.from({ length: 400 }, (_, i) => geometry.positions[3 * i + 1]);
  const svg = sheetMap({ title: "Sphere", values, layout, colormap: "viridis", colorbarLabel: "height", highlight: [7] });
  assertWellFormed(svg);
  const ell = /<ellipse [^>]*>/.exec(svg)?.[0] ?? "";
  const [cx, cy, rx, ry] = ["cx", "cy", "rx", "ry"].map((a) => attr(ell, a));
  const dots = [...svg.matchAll(/<circle data-col="\d+"[^>]*>/g)].map((m) => m[0]);
  assert.equal(dots.length, 400);
  for (const d of dots) assert.ok(((attr(d, "cx") - cx) / rx) ** 2 + ((attr(d, "cy") - cy) / ry) ** 2 <= 1 + 1e-3);
  await assertRenders(svg);
});

test("custom positions: scatter of the first two coordinates; custom grid areas become panels", () => {
  const positions = [[0, 0, 5], [1, 0, 5], [0, 2, 1], [3, 3, 0]];
  const layout = sheetLayout(buildGeometry({ kind: "custom", positions }));
  const p = layout.panels[0];
  assert.equal(p.kind, "points");
  if (p.kind !== "points") return;
  assert.deepEqual([...p.x], [0, 1, 0, 3]);
  assert.deepEqual([...p.y], [0, 0, 2, 3]);
  const svg = sheetMap({ title: "Custom", values: [1, 2, 3, 4], layout, colormap: "viridis", colorbarLabel: "v" });
  assertWellFormed(svg);
  const c = (i: number): string => new RegExp(`<circle data-col="${i}"[^>]*>`).exec(svg)?.[0] ?? "";
  assert.ok(attr(c(1), "cx") > attr(c(0), "cx") && attr(c(2), "cy") > attr(c(0), "cy"), "x right, y down");
  const oneD = sheetLayout(buildGeometry({ kind: "custom", positions: [[0], [1], [2]] }));
  assertWellFormed(sheetMap({ title: "1-D", values: [0, 1, 2], layout: oneD, colormap: "viridis", colorbarLabel: "v" }));
  const gridded = sheetLayout(
    buildGeometry({
      kind: "custom",
      positions: [[0, 0], [1, 0], [5, 5], [6, 5], [5, 6], [6, 6]],
      areas: [
        { name: "in", start: 0, end: 2, grid: [1, 2] },
        { name: "out", start: 2, end: 6, grid: [2, 2] },
      ],
    }),
  );
  assert.deepEqual(gridded.panels.map((q) => `${q.kind}:${q.title}`), ["grid:in", "grid:out"]);
});

test("sheetMaps: small multiples with one shared colour bar", async () => {
  const layout = sheetLayout(buildGeometry({ kind: "torus", height: 4, width: 5 }));
  const maps = [0, 1, 2, 3, 4].map((k) => ({ title: `step ${k}`, values: Float32Array.from({ length: 20 }, (_, i) => i * k) }));
  const svg = sheetMaps({ title: "Over steps", maps, layout, colormap: "viridis", colorbarLabel: "activation" });
  assertWellFormed(svg);
  for (let k = 0; k < 5; k++) assert.ok(svg.includes(`>step ${k}</text>`));
  assert.equal((svg.match(/data-col="19"/g) ?? []).length, 5);
  assert.equal((svg.match(/<image /g) ?? []).length, 1, "one colour bar");
  // Shared scale: the global max (19 * 4) is yellow, the same value elsewhere is not.
  const fills = [...svg.matchAll(/<rect data-col="19"[^>]*fill="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
  assert.equal(fills[4], "#fde725");
  assert.notEqual(fills[1], "#fde725");
  await assertRenders(svg);
});

test("attentionOnSheet paints row i (incoming) or column j (outgoing) and outlines the column", () => {
  const layout = sheetLayout(buildGeometry({ kind: "grid", height: 2, width: 2 }));
  // A[i, j] = 10 i + j
  const att = new Float32Array([0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33]);
  const fillOf = (svg: string, i: number): string => new RegExp(`<rect data-col="${i}"[^>]*fill="(#[0-9a-f]{6})"`).exec(svg)?.[1] ?? "";
  const incoming = attentionOnSheet({ attention: att, layout, column: 2, direction: "incoming" });
  assertWellFormed(incoming);
  assert.ok(incoming.includes("Incoming attention of column 2"));
  assert.equal(fillOf(incoming, 0), "#440154"); // 20 = min of row 2
  assert.equal(fillOf(incoming, 3), "#fde725"); // 23 = max of row 2
  assert.ok(incoming.includes('class="highlight"'));
  const outgoing = attentionOnSheet({ attention: att, layout, column: 1, direction: "outgoing" });
  assert.equal(fillOf(outgoing, 0), "#440154"); // A[0, 1] = 1
  assert.equal(fillOf(outgoing, 3), "#fde725"); // A[3, 1] = 31
  assert.equal(fillOf(outgoing, 1), rgbHex(viridis(10 / 30)));
  assert.throws(() => attentionOnSheet({ attention: att, layout, column: 4, direction: "incoming" }), RangeError);
});

test("svgToPng renders text; writeFigure writes SVG and PNG", async () => {
  const render = async (title: string): Promise<number> => {
    const svg = lineChart({ title, xLabel: "", yLabel: "", series: [{ name: "s", x: [0, 1], y: [0, 1] }], width: 400, height: 300 });
    const { data, info } = await sharp(await svgToPng(svg, 1)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [400, 300]);
    let dark = 0;
    for (let y = 8; y < 32; y++) {
      for (let x = 100; x < 300; x++) {
        const o = 3 * (y * info.width + x);
        if (data[o] + data[o + 1] + data[o + 2] < 300) dark++;
      }
    }
    return dark;
  };
  assert.ok((await render("A Title With Text")) > 150, "title glyphs drawn");
  assert.equal(await render(""), 0, "nothing there without a title");
  const svg = histogram({ title: "H", xLabel: "x", yLabel: "n", edges: [0, 1, 2], values: [1, 2] });
  const out = await writeFigure(path.join(tmp, "figs", "hist"), svg);
  assert.deepEqual(out, { svg: path.join(tmp, "figs", "hist.svg"), png: path.join(tmp, "figs", "hist.png") });
  assert.ok(existsSync(out.svg) && existsSync(out.png));
  const meta = await sharp(out.png).metadata();
  assert.equal(meta.format, "png");
  assert.equal(meta.width, 2 * 640, "PNG at 2x");
});
