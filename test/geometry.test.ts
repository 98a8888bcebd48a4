/**
 * Geometry tests. Golden values are written by hand or recomputed here by an
 * independent naive method (never copied from the code's own output).
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import {
  areaByName,
  buildGeometry,
  describeGeometry,
  fibonacciSphere,
  geodesicDistance,
  geometryFromJSON,
  geometrySpecSchema,
  linspace,
  loadCustomGeometry,
  torusDistance,
} from "../src/geometry/index.ts";
import type { Geometry, GeometrySpec } from "../src/geometry/index.ts";
import { distanceMatrix, distanceRow, geometryMetric } from "../src/geometry/metric.ts";
import { connectionDistances, localConnectivity } from "../src/geometry/connectivity.ts";
import { sparseWiringWeights } from "../src/objectives/wiring-cost.ts";

const f32 = Math.fround;
const SQRT2 = Math.SQRT2;

function dist(g: Geometry, i: number, j: number): number {
  return distanceMatrix(g)[i * g.numColumns + j];
}

function pos(g: Geometry, i: number): number[] {
  return Array.from(g.positions.subarray(i * g.positionDim, (i + 1) * g.positionDim));
}

/** Assert |a - b| <= tol. */
function close(a: number, b: number, tol: number, what = ""): void {
  assert.ok(Math.abs(a - b) <= tol, `${what} expected ${b}, got ${a} (tol ${tol})`);
}

/** Assert `fn` throws an Error whose one-line message matches `re`. */
function throwsMessage(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    return true;
  });
}

/** Naive Euclidean distance. */
function euclid(a: number[], b: number[]): number {
  return Math.sqrt(a.reduce((s, v, k) => s + (v - b[k]) ** 2, 0));
}

/** Symmetric, non-negative, and (without self_offset) zero on the diagonal. */
function checkMetricBasics(g: Geometry, zeroDiagonal = true): void {
  const n = g.numColumns;
  assert.equal(distanceMatrix(g).length, n * n);
  for (let i = 0; i < n; i++) {
    if (zeroDiagonal) assert.equal(dist(g, i, i), 0, `diagonal ${i}`);
    for (let j = 0; j < n; j++) {
      assert.ok(dist(g, i, j) >= 0);
      assert.equal(dist(g, i, j), dist(g, j, i), `symmetry ${i},${j}`);
    }
  }
}

/** d(i,k) <= d(i,j) + d(j,k) for all triples, up to float32 rounding. */
function checkTriangle(g: Geometry): void {
  const n = g.numColumns;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      for (let k = 0; k < n; k++) {
        const lhs = dist(g, i, k);
        const rhs = dist(g, i, j) + dist(g, j, k);
        assert.ok(lhs <= rhs + 1e-5 * (1 + rhs), `triangle ${i},${j},${k}: ${lhs} > ${rhs}`);
      }
}

const SMALL: GeometrySpec[] = [
  { kind: "grid", height: 3, width: 4 },
  { kind: "torus", height: 4, width: 5 },
  { kind: "stacked", widths: [2, 3] },
  { kind: "sphere", num_columns: 24, radius: 1.5 },
  { kind: "custom", positions: [[0, 0, 0], [1, 2, 3], [-1, 0.5, 2], [4, -3, 0], [0.1, 0.1, 0.1]] },
  { kind: "grid", height: 3, width: 3, self_offset: 0.7 },
  { kind: "sphere", num_columns: 10, self_offset: 0.3 },
];

describe("all kinds", () => {
  for (const spec of SMALL) {
    test(`${spec.kind} ${JSON.stringify(spec).slice(0, 60)}: symmetric, diagonal, triangle inequality`, () => {
      const g = buildGeometry(spec);
      assert.ok(distanceMatrix(g) instanceof Float32Array);
      assert.ok(g.positions instanceof Float64Array);
      assert.equal(g.positions.length, g.numColumns * g.positionDim);
      const s = spec.self_offset ?? 0;
      checkMetricBasics(g, s === 0);
      if (s > 0) for (let i = 0; i < g.numColumns; i++) assert.equal(dist(g, i, i), f32(s));
      checkTriangle(g);
      // Areas cover all columns in order.
      assert.equal(g.areas[0].start, 0);
      for (let a = 1; a < g.areas.length; a++) assert.equal(g.areas[a].start, g.areas[a - 1].end);
      assert.equal(g.areas[g.areas.length - 1].end, g.numColumns);
    });
  }
});

describe("grid", () => {
  test("2x2 distance matrix by hand", () => {
    const g = buildGeometry({ kind: "grid", height: 2, width: 2 });
    const r = f32(SQRT2);
    assert.deepEqual(Array.from(distanceMatrix(g)), [0, 1, 1, r, 1, 0, r, 1, 1, r, 0, 1, r, 1, 1, 0]);
    assert.deepEqual(Array.from(g.positions), [-0.5, -0.5, 0.5, -0.5, -0.5, 0.5, 0.5, 0.5]);
  });

  test("2x3 positions row-major, centred, one area 'sheet'", () => {
    const g = buildGeometry({ kind: "grid", height: 2, width: 3 });
    assert.equal(g.numColumns, 6);
    assert.equal(g.positionDim, 2);
    assert.deepEqual(pos(g, 0), [-1, -0.5]);
    assert.deepEqual(pos(g, 2), [1, -0.5]);
    assert.deepEqual(pos(g, 4), [0, 0.5]); // row 1, col 1
    assert.deepEqual(g.areas, [{ name: "sheet", start: 0, end: 6, grid: [2, 3] }]);
    assert.equal(dist(g, 0, 5), f32(Math.sqrt(5)));
  });

  test("1x1 grid is a single column at the origin", () => {
    const g = buildGeometry({ kind: "grid", height: 1, width: 1 });
    assert.deepEqual(Array.from(g.positions), [0, 0]);
    assert.deepEqual(Array.from(distanceMatrix(g)), [0]);
  });
});

describe("torus", () => {
  test("wrap: corner to edge is one step, corner to corner is sqrt 2", () => {
    const H = 4;
    const W = 5;
    const g = buildGeometry({ kind: "torus", height: H, width: W });
    const idx = (r: number, c: number) => r * W + c;
    assert.equal(dist(g, idx(0, 0), idx(0, W - 1)), 1);
    assert.equal(dist(g, idx(0, 0), idx(H - 1, 0)), 1);
    assert.equal(dist(g, idx(0, 0), idx(H - 1, W - 1)), f32(SQRT2));
    assert.equal(dist(g, idx(0, 0), idx(2, 2)), f32(Math.sqrt(8))); // dy=2 (half of 4), dx=min(2,3)=2
    assert.equal(torusDistance(H, W, 0, 0, 0, W - 1), 1);
    assert.equal(torusDistance(H, W, 0, 0, H - 1, W - 1), SQRT2);
  });

  test("matches the naive minimum over periodic images", () => {
    for (const [H, W] of [[3, 4], [5, 2], [1, 6]] as const) {
      const g = buildGeometry({ kind: "torus", height: H, width: W });
      const n = H * W;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          const [xi, yi] = [i % W, Math.floor(i / W)];
          const [xj, yj] = [j % W, Math.floor(j / W)];
          let best = Infinity;
          for (let kx = -1; kx <= 1; kx++)
            for (let ky = -1; ky <= 1; ky++) best = Math.min(best, Math.hypot(xi - xj + kx * W, yi - yj + ky * H));
          assert.equal(dist(g, i, j), f32(best), `torus ${H}x${W} ${i},${j}`);
        }
      // Same positions as the flat grid.
      assert.deepEqual(g.positions, buildGeometry({ kind: "grid", height: H, width: W }).positions);
    }
  });
});

describe("stacked", () => {
  test("widths [2, 3], offset 2: positions, areas, cross-area distances by hand", () => {
    const g = buildGeometry({ kind: "stacked", widths: [2, 3] });
    assert.equal(g.numColumns, 13);
    assert.equal(g.positionDim, 3);
    const expected = [
      [-1, -1, 0], [1, -1, 0], [-1, 1, 0], [1, 1, 0],
      [-1.5, -1.5, 2], [0, -1.5, 2], [1.5, -1.5, 2],
      [-1.5, 0, 2], [0, 0, 2], [1.5, 0, 2],
      [-1.5, 1.5, 2], [0, 1.5, 2], [1.5, 1.5, 2],
    ];
    for (let i = 0; i < 13; i++) assert.deepEqual(pos(g, i), expected[i], `column ${i}`);
    assert.deepEqual(g.areas, [
      { name: "area0", start: 0, end: 4, grid: [2, 2] },
      { name: "area1", start: 4, end: 13, grid: [3, 3] },
    ]);
    // (-1,-1,0) -> (-1.5,-1.5,2): sqrt(0.25 + 0.25 + 4)
    assert.equal(dist(g, 0, 4), f32(Math.sqrt(4.5)));
    // (-1,-1,0) -> (1.5,1.5,2): sqrt(6.25 + 6.25 + 4)
    assert.equal(dist(g, 0, 12), f32(Math.sqrt(16.5)));
    // (1,-1,0) -> (0,0,2): sqrt(1 + 1 + 4)
    assert.equal(dist(g, 1, 8), f32(Math.sqrt(6)));
    // within area1: (-1.5,-1.5) -> (1.5,1.5)
    assert.equal(dist(g, 4, 12), f32(Math.sqrt(18)));
  });

  test("offset changes only z; widths [1] follows numpy linspace(-0.5, 0.5, 1) = [-0.5]", () => {
    const g = buildGeometry({ kind: "stacked", widths: [1, 2], offset: 3 });
    assert.deepEqual(pos(g, 0), [-0.5, -0.5, 0]);
    assert.deepEqual(pos(g, 1), [-1, -1, 3]);
    assert.equal(dist(g, 0, 1), f32(Math.sqrt(0.25 + 0.25 + 9)));
  });

  test("linspace matches numpy for a few cases", () => {
    assert.deepEqual(Array.from(linspace(-1.5, 1.5, 3)), [-1.5, 0, 1.5]);
    assert.deepEqual(Array.from(linspace(-2.5, 2.5, 5)), [-2.5, -1.25, 0, 1.25, 2.5]);
    assert.deepEqual(Array.from(linspace(-0.5, 0.5, 1)), [-0.5]);
    assert.deepEqual(Array.from(linspace(3, 3, 4)), [3, 3, 3, 3]);
    const l = linspace(-4, 4, 8);
    assert.equal(l[0], -4);
    assert.equal(l[7], 4);
    for (let i = 0; i < 8; i++) close(l[i], -4 + (8 * i) / 7, 1e-14, `linspace[${i}]`);
  });

  test("[8, 12, 16] has 464 columns and describes itself", () => {
    const g = buildGeometry({ kind: "stacked", widths: [8, 12, 16] });
    assert.equal(g.numColumns, 64 + 144 + 256);
    assert.equal(describeGeometry(g), "stacked areas [8, 12, 16] (464 columns, offset 2, self offset 0)");
    assert.deepEqual(areaByName(g, "area2"), { name: "area2", start: 208, end: 464, grid: [16, 16] });
  });
});

describe("sphere", () => {
  test("geodesic distance on explicit points", () => {
    const r = 2.5;
    close(geodesicDistance([r, 0, 0], [-r, 0, 0], r), Math.PI * r, 1e-12, "antipodes");
    close(geodesicDistance([r, 0, 0], [0, r, 0], r), (Math.PI / 2) * r, 1e-12, "quarter");
    assert.equal(geodesicDistance([0, 0, r], [0, 0, r], r), 0);
    // Rounding past |cos| = 1 is clamped, not NaN.
    assert.equal(geodesicDistance([1 + 1e-12, 0, 0], [1 + 1e-12, 0, 0], 1), 0);
    close(geodesicDistance([1 + 1e-12, 0, 0], [-1 - 1e-12, 0, 0], 1), Math.PI, 1e-9, "clamped antipodes");
  });

  test("Fibonacci points lie on the sphere and are near-uniform", () => {
    const n = 200;
    const r = 3;
    const p = fibonacciSphere(n, r);
    const pt = (i: number) => [p[3 * i], p[3 * i + 1], p[3 * i + 2]];
    const centroid = [0, 0, 0];
    for (let i = 0; i < n; i++) {
      close(Math.hypot(...pt(i)), r, 1e-12, `radius of ${i}`);
      for (let k = 0; k < 3; k++) centroid[k] += pt(i)[k] / n;
    }
    assert.ok(Math.hypot(...centroid) < 0.05 * r, `centroid ${centroid}`);
    // Typical spacing of n uniform points: sqrt(area / n).
    const spacing = Math.sqrt((4 * Math.PI * r * r) / n);
    let minNN = Infinity;
    let maxNN = 0;
    for (let i = 0; i < n; i++) {
      let nn = Infinity;
      for (let j = 0; j < n; j++) if (j !== i) nn = Math.min(nn, euclid(pt(i), pt(j)));
      minNN = Math.min(minNN, nn);
      maxNN = Math.max(maxNN, nn);
    }
    assert.ok(minNN > 0.5 * spacing, `min nearest-neighbour ${minNN} vs spacing ${spacing}`);
    assert.ok(maxNN < 1.5 * spacing, `max nearest-neighbour ${maxNN} vs spacing ${spacing}`);
  });

  test("distance matrix is the geodesic (checked via the chord formula 2r asin(c/2r))", () => {
    const r = 1.7;
    const g = buildGeometry({ kind: "sphere", num_columns: 40, radius: r });
    assert.equal(g.positionDim, 3);
    assert.deepEqual(g.areas, [{ name: "sheet", start: 0, end: 40 }]);
    let maxD = 0;
    for (let i = 0; i < 40; i++)
      for (let j = 0; j < 40; j++) {
        const chord = euclid(pos(g, i), pos(g, j));
        const expected = 2 * r * Math.asin(Math.min(1, chord / (2 * r)));
        close(dist(g, i, j), expected, 1e-5, `geodesic ${i},${j}`);
        maxD = Math.max(maxD, dist(g, i, j));
      }
    assert.ok(maxD <= f32(Math.PI * r));
    assert.ok(maxD > 0.95 * Math.PI * r, `max distance ${maxD} should approach pi r`);
  });

  test("max distance approaches pi * r as the count grows; two points by the naive angle", () => {
    const g = buildGeometry({ kind: "sphere", num_columns: 400 });
    let maxD = 0;
    for (const d of distanceMatrix(g)) maxD = Math.max(maxD, d);
    assert.ok(maxD > 0.99 * Math.PI && maxD <= f32(Math.PI), `max ${maxD}`);
    const two = buildGeometry({ kind: "sphere", num_columns: 2 });
    // Two points: the geodesic is the angle between them (radius 1), computed naively from the positions.
    const a = pos(two, 0);
    const b = pos(two, 1);
    const cos = (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (Math.hypot(...a) * Math.hypot(...b));
    assert.equal(dist(two, 0, 1), f32(Math.acos(cos)));
  });
});

describe("self_offset", () => {
  test("2x2 grid: diagonal = s, off-diagonal sqrt(d^2 + s^2)", () => {
    const s = 0.5;
    const g = buildGeometry({ kind: "grid", height: 2, width: 2, self_offset: s });
    const a = f32(Math.sqrt(1 + s * s));
    const b = f32(Math.sqrt(2 + s * s));
    assert.deepEqual(Array.from(distanceMatrix(g)), [f32(s), a, a, b, a, f32(s), b, a, a, b, f32(s), a, b, a, a, f32(s)]);
    assert.equal(g.spec.self_offset, s);
    assert.equal(describeGeometry(g), "grid 2x2 (4 columns, self offset 0.5)");
  });

  test("applies to every kind, on top of the kind's own distance", () => {
    const s = 1.25;
    const specs: GeometrySpec[] = [
      { kind: "torus", height: 3, width: 3 },
      { kind: "stacked", widths: [2, 1] },
      { kind: "sphere", num_columns: 7 },
      { kind: "custom", positions: [[0], [3], [7]] },
    ];
    for (const spec of specs) {
      const plain = buildGeometry(spec);
      const off = buildGeometry({ ...spec, self_offset: s });
      for (let i = 0; i < plain.numColumns; i++)
        for (let j = 0; j < plain.numColumns; j++) {
          const d = dist(plain, i, j);
          close(dist(off, i, j), Math.sqrt(d * d + s * s), 1e-5, `${spec.kind} ${i},${j}`);
        }
    }
  });

  test("self_offset 0 keeps the diagonal exactly 0", () => {
    const g = buildGeometry({ kind: "sphere", num_columns: 5, self_offset: 0 });
    for (let i = 0; i < 5; i++) assert.equal(dist(g, i, i), 0);
  });
});

describe("custom", () => {
  test("Euclidean distances, default area, explicit areas", () => {
    const positions = [[0, 0], [3, 4], [-1, 2], [6, 8]];
    const g = buildGeometry({ kind: "custom", positions });
    assert.equal(g.positionDim, 2);
    assert.deepEqual(g.areas, [{ name: "sheet", start: 0, end: 4 }]);
    assert.equal(dist(g, 0, 1), 5);
    assert.equal(dist(g, 0, 3), 10);
    assert.equal(dist(g, 1, 2), f32(Math.sqrt(16 + 4)));
    const areas = [
      { name: "in", start: 0, end: 2, grid: [1, 2] as [number, number] },
      { name: "out", start: 2, end: 4 },
    ];
    const g2 = buildGeometry({ kind: "custom", positions, areas });
    assert.deepEqual(g2.areas, areas);
    assert.deepEqual(areaByName(g2, "out"), { name: "out", start: 2, end: 4 });
    assert.equal(describeGeometry(g2), "custom 2-D positions (4 columns, 2 areas, self offset 0)");
  });

  test("the built spec is a copy: later edits to the input do not leak in", () => {
    const positions = [[0], [1]];
    const g = buildGeometry({ kind: "custom", positions });
    positions[0][0] = 99;
    assert.deepEqual((g.spec as { positions: number[][] }).positions, [[0], [1]]);
  });

  const bad: [string, GeometrySpec, RegExp][] = [
    ["empty positions", { kind: "custom", positions: [] }, /geometry\.positions must be a non-empty array/],
    ["ragged rows", { kind: "custom", positions: [[0, 0], [1]] }, /geometry\.positions\[1\] has 1 coordinates but positions\[0\] has 2/],
    ["4-D rows", { kind: "custom", positions: [[0, 0, 0, 0]] }, /geometry\.positions\[0\] must be an array of 1 to 3 numbers/],
    ["NaN", { kind: "custom", positions: [[0, NaN]] }, /geometry\.positions\[0\]\[1\] must be a finite number, got NaN/],
    ["gap", { kind: "custom", positions: [[0], [1], [2]], areas: [{ name: "a", start: 0, end: 1 }, { name: "b", start: 2, end: 3 }] }, /geometry\.areas\[1\]\.start must be 1/],
    ["not covering", { kind: "custom", positions: [[0], [1], [2]], areas: [{ name: "a", start: 0, end: 2 }] }, /geometry\.areas must cover all 3 columns/],
    ["start >= end", { kind: "custom", positions: [[0], [1]], areas: [{ name: "a", start: 0, end: 0 }] }, /geometry\.areas\[0\]\.end must be greater than start 0/],
    ["grid mismatch", { kind: "custom", positions: [[0], [1], [2]], areas: [{ name: "a", start: 0, end: 3, grid: [2, 2] }] }, /geometry\.areas\[0\]\.grid 2x2 has 4 cells but the area has 3 columns/],
    ["duplicate names", { kind: "custom", positions: [[0], [1]], areas: [{ name: "a", start: 0, end: 1 }, { name: "a", start: 1, end: 2 }] }, /geometry\.areas\[1\]\.name "a" is used twice/],
  ];
  for (const [what, spec, re] of bad) {
    test(`rejects ${what}`, () => throwsMessage(() => buildGeometry(spec), re));
  }
});

describe("loadCustomGeometry", () => {
  const dir = mkdtempSync(join(tmpdir(), "columnformer-geometry-"));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  test("JSON object with areas", () => {
    const p = file("a.json", JSON.stringify({ positions: [[0, 0], [1, 0], [5, 5]], areas: [{ name: "left", start: 0, end: 2, grid: [1, 2] }, { name: "right", start: 2, end: 3 }] }));
    const spec = loadCustomGeometry(p);
    assert.deepEqual(spec, {
      kind: "custom",
      positions: [[0, 0], [1, 0], [5, 5]],
      areas: [{ name: "left", start: 0, end: 2, grid: [1, 2] }, { name: "right", start: 2, end: 3 }],
    });
    const g = buildGeometry(spec);
    assert.equal(dist(g, 1, 2), f32(Math.sqrt(16 + 25)));
  });

  test("bare JSON array, with extra self_offset", () => {
    const p = file("bare.json", "[[0, 0, 0], [0, 3, 4]]");
    const spec = loadCustomGeometry(p, { self_offset: 12 });
    assert.deepEqual(spec, { kind: "custom", positions: [[0, 0, 0], [0, 3, 4]], self_offset: 12 });
    const g = buildGeometry(spec);
    assert.equal(dist(g, 0, 1), 13); // sqrt(5^2 + 12^2)
    assert.equal(dist(g, 0, 0), 12);
  });

  test("CSV with x, y, z and contiguous areas", () => {
    const p = file("a.csv", "x,y,z,area\n0,0,0,v1\n1,0,0,v1\n0,0,2,v2\n\n0,1,2,v2\n0,2,2,v3\n");
    const spec = loadCustomGeometry(p);
    assert.deepEqual(spec, {
      kind: "custom",
      positions: [[0, 0, 0], [1, 0, 0], [0, 0, 2], [0, 1, 2], [0, 2, 2]],
      areas: [{ name: "v1", start: 0, end: 2 }, { name: "v2", start: 2, end: 4 }, { name: "v3", start: 4, end: 5 }],
    });
    const g = buildGeometry(spec);
    assert.equal(dist(g, 1, 3), f32(Math.sqrt(1 + 1 + 4)));
  });

  test("CSV without area column, columns in any order, CRLF", () => {
    const p = file("b.csv", "y, x\r\n1, 2\r\n-1.5, 0.25\r\n");
    const spec = loadCustomGeometry(p);
    assert.deepEqual(spec, { kind: "custom", positions: [[2, 1], [0.25, -1.5]] });
    assert.deepEqual(buildGeometry(spec).areas, [{ name: "sheet", start: 0, end: 2 }]);
  });

  const errors: [string, string, string, (p: string) => RegExp][] = [
    ["bad number", "bad.csv", "x,y\n0,0\n1,abc\n", (p) => new RegExp(`^${esc(p)}:3: y must be a finite number, got "abc"$`)],
    ["ragged row", "ragged.csv", "x,y,z\n0,0,0\n1,1\n", (p) => new RegExp(`^${esc(p)}:3: expected 3 fields \\(x, y, z\\), got 2$`)],
    ["non-contiguous area", "split.csv", "x,y,area\n0,0,a\n1,0,b\n2,0,a\n", (p) => new RegExp(`^${esc(p)}:4: area "a" appears again after "b"`)],
    ["unknown column", "cols.csv", "x,y,w\n0,0,0\n", (p) => new RegExp(`^${esc(p)}:1: unknown CSV column "w"`)],
    ["missing y", "noy.csv", "x\n0\n", (p) => new RegExp(`^${esc(p)}:1: CSV header must name columns x and y`)],
    ["empty csv", "empty.csv", "\n\n", (p) => new RegExp(`^${esc(p)}: empty CSV`)],
    ["invalid JSON", "broken.json", '{\n  "positions": [[0, 0],\n  ]\n}', (p) => new RegExp(`^${esc(p)}:3: invalid JSON`)],
    ["unknown JSON field", "extra.json", '{"positions": [[0]], "colour": 1}', (p) => new RegExp(`^${esc(p)}: unknown field "colour"`)],
    ["ragged JSON", "ragged.json", "[[0, 0], [1, 1, 1]]", (p) => new RegExp(`^${esc(p)}: positions\\[1\\] has 3 coordinates but positions\\[0\\] has 2`)],
    ["bad JSON areas", "areas.json", '{"positions": [[0], [1]], "areas": [{"name": "a", "start": 0, "end": 1}]}', (p) => new RegExp(`^${esc(p)}: areas must cover all 2 columns`)],
  ];
  for (const [what, name, text, re] of errors) {
    test(`error: ${what}`, () => {
      const p = file(name, text);
      throwsMessage(() => loadCustomGeometry(p), re(p));
    });
  }

  test("error: missing file and bad extra self_offset", () => {
    const missing = join(dir, "nope.json");
    throwsMessage(() => loadCustomGeometry(missing), new RegExp(`^custom geometry file not found: ${esc(missing)}$`));
    const p = file("ok.csv", "x,y\n0,0\n");
    throwsMessage(() => loadCustomGeometry(p, { self_offset: -1 }), /self_offset must be a finite number >= 0, got -1/);
  });

  test("cleanup", () => rmSync(dir, { recursive: true, force: true }));
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

describe("metric without the N x N matrix", () => {
  test("columnDistance equals the dense matrix (float32) on every kind, and the matrix is built once", () => {
    for (const spec of [
      { kind: "torus", height: 5, width: 6, self_offset: 0.5 },
      { kind: "sphere", num_columns: 30, radius: 2 },
      { kind: "stacked", widths: [3, 2] },
    ] as GeometrySpec[]) {
      const g = buildGeometry(spec);
      const m = geometryMetric(g);
      const n = g.numColumns;
      const d = distanceMatrix(g);
      assert.equal(distanceMatrix(g), d, "cached");
      for (let i = 0; i < n; i++) {
        const row = distanceRow(m, i, new Float64Array(n));
        for (let j = 0; j < n; j++) assert.equal(Math.fround(row[j]), d[i * n + j], `${spec.kind} (${i}, ${j})`);
      }
    }
  });

  test("a sparse sheet beyond 32,768 columns: connectivity and wiring weights without the dense matrix", () => {
    const side = 182; // 33,124 columns
    const g = buildGeometry({ kind: "torus", height: side, width: side });
    assert.throws(() => distanceMatrix(g), /33124 columns are too many for its dense 33124 x 33124 distance matrix \(at most 32768\).*sparse sheet\.connectivity/);
    const k = 5;
    const idx = localConnectivity(geometryMetric(g), k);
    const n = g.numColumns;
    // column 0 sits in a corner of the grid layout: its four neighbours wrap around
    assert.deepEqual(Array.from(idx.subarray(0, k)), [0, 1, side - 1, side, n - side]);
    const d = connectionDistances(geometryMetric(g), idx, k);
    assert.deepEqual(Array.from(d.subarray(0, k)), [0, 1, 1, 1, 1]);
    // L1 weights d / mean(d) over all pairs, with the mean of torus distances from one column (all are alike)
    const w = sparseWiringWeights(geometryMetric(g), d, n, k, { form: "l1", lambda: 1 });
    let mean = 0;
    for (let j = 0; j < n; j++) mean += torusDistance(side, side, 0, 0, Math.floor(j / side), j % side) / n;
    assert.ok(Math.abs(w[1] - 1 / mean) < 1e-6 / mean, `weight ${w[1]} vs ${1 / mean}`);
  });
});

describe("spec validation", () => {
  const cases: [unknown, RegExp][] = [
    [{ kind: "stacked", widths: [8, 0] }, /^geometry\.widths\[1\] must be a positive integer, got 0$/],
    [{ kind: "stacked", widths: [] }, /^geometry\.widths must be a non-empty array/],
    [{ kind: "stacked", widths: [2], offset: -1 }, /^geometry\.offset must be a finite number >= 0, got -1$/],
    [{ kind: "grid", height: 0, width: 3 }, /^geometry\.height must be a positive integer, got 0$/],
    [{ kind: "grid", height: 2, width: 2.5 }, /^geometry\.width must be a positive integer, got 2\.5$/],
    [{ kind: "torus", height: 2 }, /^geometry\.width must be a positive integer, got undefined$/],
    [{ kind: "sphere", num_columns: 10, radius: 0 }, /^geometry\.radius must be a finite number > 0, got 0$/],
    [{ kind: "sphere", num_columns: 10, radius: Infinity }, /^geometry\.radius must be a finite number > 0, got Infinity$/],
    [{ kind: "grid", height: 2, width: 2, self_offset: -0.1 }, /^geometry\.self_offset must be a finite number >= 0, got -0\.1$/],
    [{ kind: "hex", height: 2 }, /^geometry\.kind must be one of "grid", "torus", "stacked", "sphere", "custom", got "hex"$/],
    [{ kind: "custom", positions: [[0]], metric: "cosine" }, /^geometry\.metric must be "euclidean"/],
    [null, /^geometry spec must be an object/],
    [{ kind: "sphere", num_columns: 2 ** 24 + 1 }, /^geometry has 16777217 columns, more than the 16777216/],
  ];
  for (const [spec, re] of cases) {
    test(`buildGeometry rejects ${JSON.stringify(spec)}`, () => throwsMessage(() => buildGeometry(spec as GeometrySpec), re));
  }
});

describe("geometryFromJSON / geometrySpecSchema", () => {
  test("accepts valid specs unchanged", () => {
    const specs: GeometrySpec[] = [
      { kind: "grid", height: 2, width: 3 },
      { kind: "torus", height: 2, width: 3, self_offset: 1 },
      { kind: "stacked", widths: [8, 12], offset: 1.5 },
      { kind: "sphere", num_columns: 12, radius: 2 },
      { kind: "custom", positions: [[0, 1], [2, 3]], areas: [{ name: "a", start: 0, end: 2, grid: [1, 2] }], metric: "euclidean" },
    ];
    for (const s of specs) assert.deepEqual(geometryFromJSON(JSON.parse(JSON.stringify(s))), s);
  });

  const cases: [unknown, RegExp][] = [
    [{ kind: "grid", height: 2, width: 3, depth: 4 }, /^geometry: unknown field "depth" for kind "grid"; allowed: kind, height, width, self_offset$/],
    [{ kind: "stacked", widths: [2], ofset: 3 }, /unknown field "ofset"/],
    [{ kind: "custom", positions: [[0]], areas: [{ name: "a", start: 0, end: 1, size: 1 }] }, /^geometry\.areas\[0\]: unknown field "size"/],
    [{ kind: "stacked", widths: [8, 0] }, /^geometry\.widths\[1\] must be a positive integer, got 0$/],
    [{ kind: "sphere", num_columns: "12" }, /^geometry\.num_columns must be a positive integer, got "12"$/],
    [{ kind: "torus" }, /^geometry\.height must be a positive integer, got undefined$/],
    [{ kind: "cube" }, /^geometry\.kind must be one of "grid"/],
    [{ height: 3 }, /^geometry\.kind must be one of/],
    [[1, 2], /^geometry spec must be an object/],
    [{ kind: "custom", positions: [[0, 0], [1]] }, /^geometry\.positions\[1\] has 1 coordinates/],
    [{ kind: "custom", positions: [[0], [1]], areas: [{ name: "a", start: 0, end: 1 }] }, /^geometry\.areas must cover all 2 columns/],
  ];
  for (const [value, re] of cases) {
    test(`rejects ${JSON.stringify(value)}`, () => throwsMessage(() => geometryFromJSON(value), re));
  }

  test("schema embeds in a larger zod object", () => {
    const cfg = z.strictObject({ geometry: geometrySpecSchema });
    assert.equal(cfg.safeParse({ geometry: { kind: "grid", height: 1, width: 1 } }).success, true);
    const bad = cfg.safeParse({ geometry: { kind: "grid", height: 1, width: 1, foo: 1 } });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error?.issues), /foo/);
  });
});

describe("areaByName", () => {
  test("finds areas and lists the available names when missing", () => {
    const g = buildGeometry({ kind: "stacked", widths: [2, 3] });
    assert.deepEqual(areaByName(g, "area1"), { name: "area1", start: 4, end: 13, grid: [3, 3] });
    throwsMessage(() => areaByName(g, "v1"), /^no area named "v1" in this geometry; available: "area0", "area1"$/);
  });

  test("describeGeometry covers every kind", () => {
    assert.equal(describeGeometry(buildGeometry({ kind: "torus", height: 4, width: 5 })), "torus 4x5 (20 columns, self offset 0)");
    assert.equal(describeGeometry(buildGeometry({ kind: "sphere", num_columns: 10, radius: 2 })), "sphere (10 columns, radius 2, self offset 0)");
  });
});
