/**
 * The published topography metrics on synthetic data with known answers: TDANN smoothness,
 * Moran's I (row-standardised queen / rook / binary) and its permutation null, Welch t and d',
 * Gaussian smoothing, patch detection, effective dimensionality, response modes and unit
 * layouts, energy, gratings, orientation tuning and pinwheels. Golden values are computed by
 * hand (in the comments) or follow from the construction.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Rng } from "../src/engine/rng.ts";
import { gratingImage, gratingSet } from "../src/data/gratings.ts";
import { gridNeighbours, moransIPermutation, moransIWeighted, nearestNeighbours } from "../src/analysis/moran.ts";
import { orientationTuning, pinwheels, vectorSum } from "../src/analysis/orientation.ts";
import { columnEnergy, effectiveDimensionality, parseResponseMode, responsesByMode, unitCell, unitGrid, unitMap, unitPosition } from "../src/analysis/population.ts";
import { detectPatches, gaussianSmoothGrid, welchSelectivity } from "../src/analysis/selectivity.ts";
import { preferenceDifference, smoothnessOfCurve, tdannSmoothness } from "../src/analysis/smoothness.ts";

const close = (a: number, b: number, tol = 1e-9, what = "") => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} != ${b} (tol ${tol})`);

describe("TDANN smoothness", () => {
  test("hand-computed: preference = position on a line, 3 bins", () => {
    // units at 0, 1, 2, 3 with preference = position: |difference| = distance; bins over [1, 3]
    // d=1 (3 pairs) -> bin 0, d=2 (2 pairs) -> bin 1, d=3 (1 pair) -> bin 2: curve [1, 2, 3], smoothness (3 - 1) / 3
    const r = tdannSmoothness([0, 1, 2, 3], 4, (i, j) => Math.abs(i - j), { kind: "linear" }, { bins: 3, shuffles: 0 });
    assert.deepEqual(r.counts, [3, 2, 1]);
    assert.deepEqual(r.curve, [1, 2, 3]);
    close(r.smoothness, 2 / 3);
    assert.equal(r.shuffled, null);
  });

  test("categorical: two halves of a line of 10 units", () => {
    // class 0 at 0..4, class 1 at 5..9; at distance d, d of the 10-d pairs cross the border (d <= 5), all for d >= 5.
    // curve(d) = d / (10 - d) up to d = 5, then 1; one bin per distance with 9 bins over [1, 9]; smoothness (1 - 1/9) / 1
    const prefs = Array.from({ length: 10 }, (_, i) => (i < 5 ? 0 : 1));
    const r = tdannSmoothness(prefs, 10, (i, j) => Math.abs(i - j), { kind: "categorical" }, { bins: 9, shuffles: 0 });
    const expected = Array.from({ length: 9 }, (_, b) => Math.min(1, (b + 1) / (10 - (b + 1))));
    r.curve.forEach((v, b) => {
      close(v, expected[b], 1e-12, `bin ${b}`);
    });
    close(r.smoothness, 8 / 9);
  });

  test("circular differences and the curve formula", () => {
    close(preferenceDifference(0, 170, { kind: "circular", period: 180 }), 10);
    close(preferenceDifference(350, 10, { kind: "circular", period: 360 }), 20);
    assert.equal(preferenceDifference(2, 2, { kind: "categorical" }), 0);
    assert.ok(Number.isNaN(preferenceDifference(NaN, 1, { kind: "linear" })));
    close(smoothnessOfCurve([NaN, 2, 4, 3]), 0.5); // first non-empty bin 2, max 4
    assert.ok(Number.isNaN(smoothnessOfCurve([0, 0, 0])), "flat zero curve");
    assert.ok(Number.isNaN(smoothnessOfCurve([1])), "one bin");
  });

  test("smooth 2-D map vs its shuffled null; seeded; sampled pairs agree", () => {
    const side = 20;
    const n = side * side;
    const prefs = Float64Array.from({ length: n }, (_, i) => (i % side) * 9); // orientation 0..171 along x
    const dist = (i: number, j: number) => Math.hypot((i % side) - (j % side), Math.floor(i / side) - Math.floor(j / side));
    const kind = { kind: "linear" } as const;
    const r = tdannSmoothness(prefs, n, dist, kind, { shuffles: 5, seed: 1 });
    assert.equal(r.curve.length, 20);
    assert.ok(r.smoothness > 0.8, `smooth map ${r.smoothness}`);
    assert.ok(r.shuffled!.smoothness < 0.2, `shuffled ${r.shuffled!.smoothness}`);
    assert.deepEqual(tdannSmoothness(prefs, n, dist, kind, { shuffles: 5, seed: 1 }), r, "same seed, same result");
    const sampled = tdannSmoothness(prefs, n, dist, kind, { shuffles: 0, maxPairs: 20000, seed: 2 });
    assert.equal(sampled.pairs, 20000);
    close(sampled.smoothness, r.smoothness, 0.05, "sampled pairs");
  });
});

/** Dense Moran's I by the textbook formula, weights from the (dr, dc) rule: the independent reference. */
function naiveMoran(values: number[], rows: number, cols: number, queen: boolean, rowStandardised: boolean): number {
  const n = rows * cols;
  const w = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const dr = Math.abs(Math.floor(i / cols) - Math.floor(j / cols));
      const dc = Math.abs((i % cols) - (j % cols));
      if (i !== j && dr <= 1 && dc <= 1 && (queen || dr + dc === 1)) w[i][j] = 1;
    }
    if (rowStandardised) {
      const s = w[i].reduce((a, v) => a + v, 0);
      for (let j = 0; j < n; j++) w[i][j] /= s;
    }
  }
  const mean = values.reduce((a, v) => a + v, 0) / n;
  const z = values.map((v) => v - mean);
  let num = 0;
  let s0 = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      num += w[i][j] * z[i] * z[j];
      s0 += w[i][j];
    }
  }
  return ((n / s0) * num) / z.reduce((a, v) => a + v * v, 0);
}

describe("Moran's I", () => {
  const checker = (rows: number, cols: number) => Array.from({ length: rows * cols }, (_, i) => (Math.floor(i / cols) + (i % cols)) % 2);

  test("rook checkerboard is exactly -1 (row-standardised and binary, on a grid and a torus)", () => {
    const v = checker(4, 4);
    close(moransIWeighted(v, gridNeighbours(4, 4, "rook"), "row"), -1, 1e-12);
    close(moransIWeighted(v, gridNeighbours(4, 4, "rook"), "binary"), -1, 1e-12);
    close(moransIWeighted(v, gridNeighbours(4, 4, "rook", true), "row"), -1, 1e-12);
  });

  test("queen 3x3 checkerboard: -7/30 by hand", () => {
    // ones at (r+c) even (5 cells, z = 4/9), zeros elsewhere (z = -5/9); spatial lags: corners -2/9, edges 2/45,
    // centre -1/18; sum z*lag = -42/81, sum z^2 = 180/81, S0 = n  ->  I = -42/180 = -7/30
    const v = Array.from({ length: 9 }, (_, i) => ((Math.floor(i / 3) + (i % 3)) % 2 === 0 ? 1 : 0));
    close(moransIWeighted(v, gridNeighbours(3, 3, "queen"), "row"), -7 / 30, 1e-12);
  });

  test("matches the dense textbook formula on a random map (queen/rook x row/binary)", () => {
    const r = new Rng(5);
    const v = Array.from({ length: 5 * 7 }, () => r.next());
    for (const queen of [true, false]) {
      for (const row of [true, false]) {
        close(moransIWeighted(v, gridNeighbours(5, 7, queen ? "queen" : "rook"), row ? "row" : "binary"), naiveMoran(v, 5, 7, queen, row), 1e-12, `${queen} ${row}`);
      }
    }
  });

  test("permutation null: a gradient is significant, noise is not; NaN cells left out; k nearest", () => {
    const side = 12;
    const grad = Array.from({ length: side * side }, (_, i) => i % side);
    const t = moransIPermutation(grad, gridNeighbours(side, side), "row", { permutations: 99, seed: 0 });
    assert.ok(t.I > 0.8, `gradient I ${t.I}`);
    close(t.p, 1 / 100, 1e-12, "p at its floor");
    close(t.expected, -1 / (side * side - 1), 1e-12);
    const rng = new Rng(9);
    const noise = Array.from({ length: side * side }, () => rng.next());
    const tn = moransIPermutation(noise, gridNeighbours(side, side), "row", { permutations: 199, seed: 0 });
    assert.ok(Math.abs(tn.z) < 3.5 && Math.abs(tn.null_mean - tn.expected) < 0.02, `noise z ${tn.z}, null mean ${tn.null_mean}`);
    assert.deepEqual(moransIPermutation(noise, gridNeighbours(side, side), "row", { permutations: 199, seed: 0 }), tn, "seeded");
    const withNan = grad.map((v, i) => (i === 5 ? NaN : v));
    assert.equal(moransIPermutation(withNan, gridNeighbours(side, side), "row", { permutations: 9 }).n, side * side - 1);
    // on a line, the 2 nearest neighbours are the rook neighbours (interior); end units get the next one
    const line = Array.from({ length: 6 }, (_, i) => i);
    const d = new Float64Array(36).map((_, k) => Math.abs(Math.floor(k / 6) - (k % 6)));
    const nb = nearestNeighbours(d, 6, 2);
    assert.deepEqual(Array.from(nb.index.subarray(0, 4)), [1, 2, 0, 2]);
    assert.ok(moransIWeighted(line, nb) > 0.5);
    assert.ok(Number.isNaN(moransIWeighted([1, 1, 1, 1], gridNeighbours(2, 2))), "constant map");
  });
});

describe("selectivity", () => {
  test("hand-computed Welch t and d'", () => {
    // class 0: 1, 2, 3 (mean 2, s^2 1); class 1: 5, 7 (mean 6, s^2 2)
    // t0 = (2 - 6) / sqrt(1/3 + 2/2) = -2 sqrt(3); d'0 = -4 / sqrt(1.5)
    const s = welchSelectivity([1, 2, 3, 5, 7], [0, 0, 0, 1, 1], 5, 1, 2);
    close(s.t[0], -2 * Math.sqrt(3), 1e-12);
    close(s.t[1], 2 * Math.sqrt(3), 1e-12);
    close(s.dprime[0], -4 / Math.sqrt(1.5), 1e-12);
    assert.deepEqual(s.counts, [3, 2]);
    // a class with one image has no sample variance
    assert.ok(Number.isNaN(welchSelectivity([1, 2, 3], [0, 0, 1], 3, 1, 2).t[0]));
    assert.throws(() => welchSelectivity([1, 2], [0, 3], 2, 1, 2), /outside/);
  });

  test("Gaussian smoothing: identity at sigma 0, constants and interior ramps kept, NaN skipped", () => {
    const rows = 11;
    const cols = 11;
    const ramp = Array.from({ length: rows * cols }, (_, i) => 2 * (i % cols) + Math.floor(i / cols));
    assert.deepEqual(Array.from(gaussianSmoothGrid(ramp, rows, cols, 0)), ramp);
    const s = gaussianSmoothGrid(ramp, rows, cols, 1);
    close(s[5 * cols + 5], ramp[5 * cols + 5], 1e-9, "interior of a linear ramp");
    const constant = Array.from({ length: rows * cols }, (_, i) => (i % 7 === 0 ? NaN : 3));
    for (const v of gaussianSmoothGrid(constant, rows, cols, 1.5)) close(v, 3, 1e-12);
    // a delta: neighbour / centre = exp(-1 / (2 sigma^2)) (interior, same normaliser)
    const delta = new Array<number>(rows * cols).fill(0);
    delta[5 * cols + 5] = 1;
    const sd = gaussianSmoothGrid(delta, rows, cols, 1);
    close(sd[5 * cols + 6] / sd[5 * cols + 5], Math.exp(-0.5), 1e-12);
  });

  test("patches: components, size limits, 4- vs 8-connectivity", () => {
    const map = [
      1, 1, 0, 0, 0, 0,
      1, 1, 0, 0, 1, 0,
      0, 0, 0, 0, 1, 0,
      0, 0, 1, 0, 0, 0,
      0, 0, 0, 1, 0, 0,
      0, 0, 0, 0, 0, 0,
    ];
    const p4 = detectPatches(map, 6, 6, { threshold: 0.5, minSize: 2 });
    assert.equal(p4.count, 2);
    assert.deepEqual(p4.sizes, [4, 2]);
    assert.equal(p4.rejected, 2);
    assert.deepEqual(p4.centroids[0], [0.5, 0.5]);
    assert.deepEqual(p4.centroids[1], [1.5, 4]);
    assert.equal(p4.labels[1 * 6 + 4], 1);
    assert.equal(p4.labels[3 * 6 + 2], -1);
    const p8 = detectPatches(map, 6, 6, { threshold: 0.5, minSize: 2, connectivity: 8 });
    assert.deepEqual(p8.sizes, [4, 2, 2]);
    assert.deepEqual(detectPatches(map, 6, 6, { threshold: 0.5, maxSize: 3 }).sizes, [2, 1, 1]);
  });
});

describe("population", () => {
  const w1 = [1, 1, 1, 1, -1, -1, -1, -1];
  const w2 = [1, 1, -1, -1, 1, 1, -1, -1];
  const w3 = [1, -1, 1, -1, 1, -1, 1, -1];

  test("effective dimensionality: orthogonal patterns with known eigenvalues (both code paths)", () => {
    // 8 images x 3 units, columns a*w1, b*w2, c*w3: eigenvalues proportional to a^2, b^2, c^2
    const x = (a: number, b: number, c: number) => Array.from({ length: 24 }, (_, k) => [a * w1[Math.floor(k / 3)], b * w2[Math.floor(k / 3)], c * w3[Math.floor(k / 3)]][k % 3]);
    close(effectiveDimensionality(x(1, 1, 1), 8, 3), 3, 1e-12);
    close(effectiveDimensionality(x(Math.sqrt(3), 1, 0), 8, 3), 16 / 10, 1e-12); // lambda 3, 1: (4)^2 / (9 + 1)
    // 4 images x 8 units (Gram path): rows 2w1, -2w1, w2, -w2 -> eigenvalues 4:1 -> 25/17
    const rows = [w1.map((v) => 2 * v), w1.map((v) => -2 * v), w2, w2.map((v) => -v)].flat();
    close(effectiveDimensionality(rows, 4, 8), 25 / 17, 1e-12);
    close(effectiveDimensionality([1, 2, 3, 5, 7, 11], 2, 3), 1, 1e-12); // two images: rank 1
    assert.ok(Number.isNaN(effectiveDimensionality([1, 1, 1, 1], 2, 2)));
  });

  test("response modes: mean, norm, feature, pc1", () => {
    // 2 images, 1 column, D = 2
    const states = [3, 4, 0, 2];
    assert.deepEqual(Array.from(responsesByMode(states, 2, 1, 2, "mean")), [3.5, 1]);
    assert.deepEqual(Array.from(responsesByMode(states, 2, 1, 2, "norm")), [5, 2]);
    assert.deepEqual(Array.from(responsesByMode(states, 2, 1, 2, 1)), [4, 2]);
    // states = a_m * (3, 4) + (1, -1): pc1 direction (0.6, 0.8), response = (a_m - mean a) * 5
    const a = [0.5, -1, 2, 0, 1.5];
    const s2 = a.flatMap((v) => [3 * v + 1, 4 * v - 1]);
    const pc = responsesByMode(s2, 5, 1, 2, "pc1");
    const mean = a.reduce((x, v) => x + v, 0) / 5;
    a.forEach((v, m) => {
      close(pc[m], (v - mean) * 5, 1e-5, `pc1 image ${m}`);
    });
    assert.equal(parseResponseMode("feature:7"), 7);
    assert.equal(parseResponseMode("pc1"), "pc1");
    assert.throws(() => parseResponseMode("max"), /response must be/);
    assert.throws(() => responsesByMode(states, 2, 1, 2, 2), /outside/);
  });

  test("unit grids: D features as a sub-grid", () => {
    const g = unitGrid(2, 3, 6); // sub-grid 3 x 2, fine grid 6 x 6
    assert.deepEqual([g.sr, g.sc, g.fineRows, g.fineCols], [3, 2, 6, 6]);
    assert.equal(unitCell(g, 0, 0), 0);
    assert.equal(unitCell(g, 0, 5), 2 * 6 + 1); // feature 5: sub-row 2, sub-col 1
    assert.equal(unitCell(g, 4, 2), (3 + 1) * 6 + 2 + 0); // column 4 = (row 1, col 1)
    assert.deepEqual(unitPosition(g, 4, 2), [1 + 0.25 - 0.5, 1 + 0.5 - 0.5]);
    const m = unitMap(g, Array.from({ length: 36 }, (_, i) => i));
    assert.equal(m[unitCell(g, 4, 2)], 4 * 6 + 2);
    const g7 = unitGrid(1, 1, 7); // 3 x 3 with 2 padding cells
    assert.equal(Array.from(unitMap(g7, [0, 1, 2, 3, 4, 5, 6])).filter(Number.isNaN).length, 2);
  });

  test("energy: mean |activation| per column", () => {
    // 2 images, 2 columns, D = 2
    const e = columnEnergy([1, -1, 0, 2, -3, 1, 0, 0], 2, 2, 2);
    assert.deepEqual(Array.from(e), [(1 + 1 + 3 + 1) / 4, (0 + 2 + 0 + 0) / 4]);
  });
});

describe("gratings and orientation maps", () => {
  test("grating pixels: orientation, phase and the set's size", () => {
    const v = gratingImage(5, 1, 0, 1, 90); // vertical bars: constant down each column; centre = 0.5 + 0.5 sin(90 deg) = 1
    close(v[2 * 5 + 2], 1, 1e-6);
    for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) assert.equal(v[y * 5 + x], v[x]);
    const h = gratingImage(5, 3, 90, 1, 0); // horizontal bars: constant along each row, all channels equal
    for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) for (let c = 0; c < 3; c++) assert.equal(h[(y * 5 + x) * 3 + c], h[y * 15]);
    const set = gratingSet({ size: 28, channels: 1 });
    assert.equal(set.dataset.length, 8 * 3 * 4);
    assert.equal(set.params[4 * 12].orientation, 90);
    assert.equal(set.dataset.numClasses, 8);
  });

  test("vector sum: cosine tuning has CV 1/2 at its peak, a delta CV 0, flat CV 1", () => {
    const ori = Array.from({ length: 8 }, (_, k) => 22.5 * k);
    const cos = ori.map((t) => 1 + Math.cos((2 * (t - 45) * Math.PI) / 180));
    const a = vectorSum(cos, ori);
    close(a.preferred, 45, 1e-9);
    close(a.circularVariance, 0.5, 1e-12);
    const delta = vectorSum([0, 0, 0, 0, 0, 0, 5, 0], ori);
    close(delta.preferred, 135, 1e-9);
    close(delta.circularVariance, 0, 1e-12);
    const flat = vectorSum(new Array(8).fill(2), ori);
    assert.ok(Number.isNaN(flat.preferred));
    assert.equal(flat.circularVariance, 1);
  });

  test("orientation tuning: phase averaged, at the preferred frequency", () => {
    const set = gratingSet({ size: 8, channels: 1 });
    const n = 8;
    const images = set.params.length;
    const r = new Float64Array(images * n);
    set.params.forEach((p, m) => {
      for (let u = 0; u < n; u++) {
        const gain = p.frequencyIndex === 1 ? 1 : 0.5;
        r[m * n + u] = gain * (1 + Math.cos((2 * (p.orientation - 22.5 * u) * Math.PI) / 180)) + 0.3 * Math.sin((p.phase * Math.PI) / 180);
      }
    });
    const t = orientationTuning(r, images, n, set.orientations, set.params.map((p) => p.orientationIndex), set.params.map((p) => p.frequencyIndex), 3);
    for (let u = 0; u < n; u++) {
      assert.equal(t.preferredFrequency[u], 1);
      close(t.preferred[u], 22.5 * u, 1e-9, `unit ${u}`);
      close(t.circularVariance[u], 0.5, 1e-9);
    }
  });

  test("pinwheels: winding numbers of maps with known singularities", () => {
    const rows = 10;
    const cols = 10;
    // x = col, y = -row (up); theta = +-atan2 / 2 around (row r0, col c0)
    const field = (centres: [number, number, number][]) =>
      Float64Array.from({ length: rows * cols }, (_, i) => {
        const r = Math.floor(i / cols);
        const c = i % cols;
        let a = 0;
        for (const [r0, c0, sign] of centres) a += (sign * Math.atan2(-(r - r0), c - c0)) / 2;
        const deg = (a * 180) / Math.PI;
        return ((deg % 180) + 180) % 180;
      });
    const one = pinwheels(field([[4.5, 4.5, 1]]), rows, cols);
    assert.deepEqual([one.count, one.positive, one.negative], [1, 1, 0]);
    assert.deepEqual(one.locations, [[4.5, 4.5]]);
    const neg = pinwheels(field([[3.5, 6.5, -1]]), rows, cols, { sigma: 1 });
    assert.deepEqual([neg.count, neg.positive, neg.negative], [1, 0, 1]);
    assert.deepEqual(neg.locations, [[3.5, 6.5]]);
    const two = pinwheels(field([[2.5, 2.5, 1], [6.5, 6.5, -1]]), rows, cols, { sigma: 1 });
    assert.deepEqual([two.count, two.positive, two.negative], [2, 1, 1]);
    close(two.density, 2 / 100, 1e-12);
    const smooth = pinwheels(Float64Array.from({ length: rows * cols }, (_, i) => 10 * (i % cols)), rows, cols);
    assert.equal(smooth.count, 0);
  });
});
