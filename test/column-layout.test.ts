/** Column layout figures: one dot per column at its (projected) position, edges, legend, projections. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildGeometry } from "../src/geometry/index.ts";
import type { Geometry } from "../src/geometry/index.ts";
import { CABINET_DEPTH_SCALE, columnLayout, obliqueProjection, projectColumns, type LayoutEdge } from "../src/viz/column-layout.ts";
import { svgToPng } from "../src/viz/render.ts";

/** The drawn dots: column index -> [cx, cy]. */
function dots(svg: string): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  for (const m of svg.matchAll(/<circle data-col="(\d+)" cx="([-\d.]+)" cy="([-\d.]+)"/g)) out.set(Number(m[1]), [Number(m[2]), Number(m[3])]);
  return out;
}

const count = (svg: string, pattern: RegExp) => (svg.match(pattern) ?? []).length;

function areaIndex(g: Geometry): Float32Array {
  const out = new Float32Array(g.numColumns);
  g.areas.forEach((a, k) => {
    out.fill(k, a.start, a.end);
  });
  return out;
}

test("2-D grid: one circle per column at its position, edges, arrowheads and legend names", async () => {
  const g = buildGeometry({ kind: "grid", height: 3, width: 4 });
  const edges: LayoutEdge[] = [
    { source: 0, target: 1, weight: 0.5 },
    { source: 5, target: 11, weight: 1 },
    { source: 3, target: 2, weight: 0.1 },
  ];
  const categories = Float32Array.from({ length: 12 }, (_, i) => i % 3);
  const svg = columnLayout({ title: "Layout", positions: g.positions, positionDim: 2, categories, categoryNames: ["cat", "dog", "bird"], legendLabel: "class", edges, arrows: true });
  assert.ok(svg.startsWith("<svg") && svg.endsWith("</svg>"));
  assert.equal(count(svg, /<circle /g), 12, "one circle per column");
  assert.equal(count(svg, /class="edge"/g), 3, "one line per edge");
  assert.equal(count(svg, /<polygon /g), 3, "one arrowhead per edge");
  for (const name of ["cat", "dog", "bird", "class", "Layout"]) assert.ok(svg.includes(`>${name}<`), name);
  // equal aspect ratio, x right and y down: the grid spacing is the same along x and y
  const d = dots(svg);
  const [x0, y0] = d.get(0)!;
  const [x1] = d.get(1)!;
  const [, y4] = d.get(4)!;
  assert.ok(x1 > x0 && y4 > y0);
  assert.ok(Math.abs(x1 - x0 - (y4 - y0)) < 0.02, "equal aspect ratio");
  assert.ok(svg.includes('fill="#4e79a7"') && svg.includes('fill="#f28e2c"'), "categorical colours");
  assert.ok((await svgToPng(svg, 1)).length > 100, "renders");
});

test("no edges, missing categories grey, 1-D positions on a line", () => {
  const svg = columnLayout({ title: "", positions: [0, 1, 2.5, 4], positionDim: 1, categories: [0, Number.NaN, -1, 1], categoryNames: ["a", "b"] });
  assert.equal(count(svg, /<circle /g), 4);
  assert.equal(count(svg, /class="edge"/g), 0);
  assert.equal(count(svg, /fill="#cccccc"/g), 2, "missing categories");
  const d = dots(svg);
  assert.equal(new Set([...d.values()].map(([, y]) => y)).size, 1, "all on one line");
  assert.ok(d.get(2)![0] - d.get(1)![0] > d.get(1)![0] - d.get(0)![0], "spacing follows the positions");
});

test("3-D stacked areas: an oblique projection that draws the areas as separate offset sheets", async () => {
  const g = buildGeometry({ kind: "stacked", widths: [3, 3, 3] });
  const layers = areaIndex(g);
  const p = obliqueProjection(g.positions, g.numColumns, layers);
  assert.ok(p.a > 0 && p.b < 0 && Math.abs(p.a + p.b) < 1e-12, "z recedes at 45 degrees, up and right");
  const proj = projectColumns(g.positions, 3, g.numColumns, undefined, layers);
  const box = (a: { start: number; end: number }) => {
    const xs = Array.from(proj.x.subarray(a.start, a.end));
    const ys = Array.from(proj.y.subarray(a.start, a.end));
    return { xmin: Math.min(...xs), xmax: Math.max(...xs), ymin: Math.min(...ys), ymax: Math.max(...ys) };
  };
  for (let k = 1; k < g.areas.length; k++) {
    const lo = box(g.areas[k - 1]);
    const hi = box(g.areas[k]);
    assert.ok(hi.xmin > lo.xmax || hi.ymax < lo.ymin, `area ${k} clear of area ${k - 1}`);
    assert.ok(hi.xmin > lo.xmin && hi.ymin < lo.ymin, `area ${k} up and to the right`);
  }
  const svg = columnLayout({
    title: "Stack",
    positions: g.positions,
    positionDim: 3,
    categories: layers,
    categoryNames: g.areas.map((a) => a.name),
    layers,
    edges: [{ source: 0, target: 26, weight: 1 }],
  });
  assert.equal(count(svg, /<circle /g), 27);
  assert.equal(count(svg, /class="edge"/g), 1);
  assert.equal(count(svg, /<polygon /g), 0, "no arrows by default");
  for (const a of g.areas) assert.ok(svg.includes(`>${a.name}<`), a.name);
  assert.ok(svg.includes("oblique projection"), "projection noted");
  assert.ok((await svgToPng(svg, 1)).length > 100, "renders");
});

test("3-D sphere: the cabinet projection (no layers), far columns drawn first", () => {
  const g = buildGeometry({ kind: "sphere", num_columns: 40 });
  const p = obliqueProjection(g.positions, g.numColumns, new Float32Array(40));
  assert.ok(Math.abs(p.a - CABINET_DEPTH_SCALE * Math.SQRT1_2) < 1e-12 && Math.abs(p.b + p.a) < 1e-12);
  const svg = columnLayout({ title: "Sphere", positions: g.positions, positionDim: 3, categories: new Float32Array(40), categoryNames: ["sheet"], note: "learned positions" });
  assert.equal(dots(svg).size, 40);
  assert.ok(svg.includes("learned positions"));
  const order = [...svg.matchAll(/<circle data-col="(\d+)"/g)].map((m) => Number(m[1]));
  const z = (i: number) => g.positions[3 * i + 2];
  for (let k = 1; k < order.length; k++) assert.ok(z(order[k - 1]) >= z(order[k]), "painter's order by depth");
});

test("rejects mismatched positions and edges to unknown columns", () => {
  assert.throws(() => columnLayout({ title: "", positions: [0, 1, 2], positionDim: 2, categories: [0, 0], categoryNames: ["a"] }), /coordinates/);
  assert.throws(() => columnLayout({ title: "", positions: [0, 1, 2, 3], positionDim: 4, categories: [0], categoryNames: ["a"] }), /positionDim/);
  assert.throws(
    () => columnLayout({ title: "", positions: [0, 1], positionDim: 1, categories: [0, 0], categoryNames: ["a"], edges: [{ source: 0, target: 2, weight: 1 }] }),
    /edge endpoint 2/,
  );
});
