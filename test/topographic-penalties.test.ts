/**
 * The topographic penalty forms of issue 12 against hand computations and naive float64 loops:
 * the matrix exponential and the communicability wiring cost (seRNN), TDANN's
 * activation-correlation spatial loss, and the TopoLoss weight blur; values, gradients (finite
 * differences of the naive loops), neighbourhood draws, blur matrices, config defaults and the
 * errors that name a field. (Native and jax backends agreeing on them: test/backends.test.ts.)
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, valueAndGrad } from "../src/engine/jax.ts";
import type { Area } from "../src/geometry/index.ts";
import { communicability, communicabilityWiringCost, expm } from "../src/objectives/communicability.ts";
import { drawNeighbourhoods, neighbourhoodAreas, selectionMatrix, spatialCorrelation } from "../src/objectives/spatial-correlation.ts";
import { blurMatrix, linearResize, resampleBlur1d, topoBlur } from "../src/objectives/topo-blur.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { createSession, disposeSession } from "../src/train/session.ts";
import { Rng } from "../src/data/index.ts";
import { assertClose, read } from "./assertions.ts";

before(async () => {
  await initEngine();
});

type Matrix = number[][];
const arr = (m: Matrix) => np.array(new Float32Array(m.flat())).reshape([m.length, m[0].length]);
const matmul = (a: Matrix, b: Matrix): Matrix => a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
const eye = (n: number): Matrix => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));

/** float64 Taylor series sum_k A^k / k!, enough terms for the norms used here. */
function seriesExpm(a: Matrix, terms = 160): Matrix {
  let term = eye(a.length);
  let sum = eye(a.length);
  for (let k = 1; k < terms; k++) {
    term = matmul(term, a).map((row) => row.map((v) => v / k));
    sum = sum.map((row, i) => row.map((v, j) => v + term[i][j]));
  }
  return sum;
}

/** The seRNN cost by its definition, in float64: strengths = column sums, C = expm(S^-1/2 A S^-1/2) with C_ii = 0. */
function naiveCommunicabilityCost(a: Matrix, w: Matrix): number {
  const n = a.length;
  const s = a[0].map((_, j) => a.reduce((sum, row) => sum + row[j], 0));
  const m = a.map((row, i) => row.map((v, j) => v / Math.sqrt(s[i] * s[j])));
  const c = seriesExpm(m);
  let cost = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) cost += a[i][j] * w[i][j] * c[i][j];
  return cost / n;
}

/** Central finite differences (float64) of f at x, every entry. */
function finiteDifferences(f: (x: number[]) => number, x: number[], h = 1e-6): number[] {
  return x.map((_, t) => {
    const up = x.slice();
    const down = x.slice();
    up[t] += h;
    down[t] -= h;
    return (f(up) - f(down)) / (2 * h);
  });
}

const reshape = (flat: number[], rows: number): Matrix => Array.from({ length: rows }, (_, i) => flat.slice((i * flat.length) / rows, ((i + 1) * flat.length) / rows));

describe("matrix exponential (scaling and squaring)", () => {
  test("diagonal, nilpotent, rotation and zero matrices, by hand", async () => {
    assertClose(await read(expm(arr([[1, 0, 0], [0, -2, 0], [0, 0, 0.5]]))), [Math.E, 0, 0, 0, Math.exp(-2), 0, 0, 0, Math.exp(0.5)], 1e-6, "diagonal");
    // N^2 = 0, so expm(N) = I + N
    assertClose(await read(expm(arr([[0, 3], [0, 0]]))), [1, 3, 0, 1], 1e-6, "nilpotent");
    // a rotation generator of angle 2.5 (1-norm 2.5: 3 squarings)
    const t = 2.5;
    assertClose(await read(expm(arr([[0, -t], [t, 0]]))), [Math.cos(t), -Math.sin(t), Math.sin(t), Math.cos(t)], 1e-5, "rotation");
    assertClose(await read(expm(np.zeros([2, 2]))), [1, 0, 0, 1], 0, "zero");
  });

  test("a non-negative matrix of 1-norm ~20 (6 squarings) matches the float64 series", async () => {
    const rng = new Rng(3);
    const a = Array.from({ length: 4 }, () => Array.from({ length: 4 }, () => rng.next() * 10));
    const expected = seriesExpm(a).flat();
    const got = await read(expm(arr(a)));
    const scale = Math.max(...expected);
    for (let t = 0; t < 16; t++) assert.ok(Math.abs(got[t] - expected[t]) <= 2e-5 * scale, `entry ${t}: ${got[t]} vs ${expected[t]}`);
  });

  test("gradient of <expm(A), G> matches finite differences of the series (mixed signs, squarings on)", async () => {
    const rng = new Rng(7);
    const a = Array.from({ length: 9 }, () => (rng.next() - 0.5) * 2.4); // 1-norm ~2-3
    const g = Array.from({ length: 9 }, () => rng.next() - 0.5);
    const f64 = (x: number[]) => seriesExpm(reshape(x, 3)).flat().reduce((s, v, t) => s + v * g[t], 0);
    const [value, grad] = valueAndGrad((x: np.Array) => expm(x).mul(np.array(new Float32Array(g)).reshape([3, 3])).sum())(arr(reshape(a, 3)));
    assertClose(await read(value), [f64(a)], 1e-5, "value");
    assertClose(await read(grad), finiteDifferences(f64, a), 1e-4, "gradient");
  });
});

describe("communicability wiring cost (seRNN)", () => {
  test("a symmetric 2 x 2 case by hand: cost = 2 q e^p sinh q", async () => {
    // A = [[p, q], [q, p]], p + q = 1: column sums 1, so S = I and C = expm(A) = e^p [[cosh q, sinh q], [sinh q, cosh q]], diagonal zeroed
    const [p, q] = [0.7, 0.3];
    assertClose(await read(communicability(arr([[p, q], [q, p]]))), [0, Math.exp(p) * Math.sinh(q), Math.exp(p) * Math.sinh(q), 0], 1e-6, "C");
    // two columns 1 apart: L1 weights d / mean d = [[0, 2], [2, 0]]; cost = (1/2) (q 2 C01 + q 2 C10)
    const cost = communicabilityWiringCost(arr([[p, q], [q, p]]), arr([[0, 2], [2, 0]]));
    assertClose(await read(cost), [2 * q * Math.exp(p) * Math.sinh(q)], 1e-6, "cost");
  });

  test("an asymmetric row-stochastic attention: value and gradient against the float64 definition", async () => {
    // rows sum to 1 (a softmax), columns do not: the strengths are the column sums
    const rng = new Rng(11);
    const n = 4;
    const a: Matrix = Array.from({ length: n }, () => {
      const row = Array.from({ length: n }, () => Math.exp(rng.next() * 3));
      const z = row.reduce((s, v) => s + v, 0);
      return row.map((v) => v / z);
    });
    const w: Matrix = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => Math.abs(i - j) / 1.25)); // a line, d / mean d
    const [value, grad] = valueAndGrad((x: np.Array) => communicabilityWiringCost(x, arr(w)))(arr(a));
    assertClose(await read(value), [naiveCommunicabilityCost(a, w)], 1e-5, "value");
    assertClose(await read(grad), finiteDifferences((x) => naiveCommunicabilityCost(reshape(x, n), w), a.flat()), 1e-4, "gradient (through C and the strengths)");
  });
});

describe("spatial correlation (TDANN)", () => {
  test("a hand case: r = (1, -1, -1) against 1/(d+1) = (1/2, 1/3, 1/2) gives corr 1/2, SL 1/2", async () => {
    // three columns on a line (distances |i - j|), one neighbourhood of all three, 3 images, D = 2
    // column responses (mean over D): c0 = (1, 0, -1), c1 = (1, 0, -1), c2 = (-1, 0, 1)
    // pairs (0,1), (0,2), (1,2): r = (1, -1, -1); inverse distances (1/2, 1/3, 1/2)
    // centred: r (4/3, -2/3, -2/3), inv (1/18, -1/9, 1/18): cov 1/27, var r 8/9, var inv 1/162 -> corr 1/2
    const states = [
      [[2, 0], [0, 2], [-1, -1]],
      [[0, 0], [1, -1], [0, 0]],
      [[-3, 1], [-1, -1], [1, 1]],
    ].flat(2);
    const x = np.array(new Float32Array(states)).reshape([3, 3, 2]);
    const distances = arr([[0, 1, 2], [1, 0, 1], [2, 1, 0]]);
    const selection = np.array(selectionMatrix(Int32Array.of(0, 1, 2), 3)).reshape([3, 1, 3]);
    assertClose(await read(spatialCorrelation(x, selection, distances)), [0.5], 1e-6, "SL");
  });

  /** TDANN's loss by its definition in float64: states [B][N][D], members [M][K], distances [N][N]. */
  function naiveSpatial(states: number[][][], members: number[][], dist: Matrix): number {
    const pearson = (a: number[], b: number[]) => {
      const ma = a.reduce((s, v) => s + v, 0) / a.length;
      const mb = b.reduce((s, v) => s + v, 0) / b.length;
      let cov = 0;
      let va = 0;
      let vb = 0;
      for (let t = 0; t < a.length; t++) {
        cov += (a[t] - ma) * (b[t] - mb);
        va += (a[t] - ma) ** 2;
        vb += (b[t] - mb) ** 2;
      }
      return cov / Math.sqrt(va * vb);
    };
    const response = (col: number) => states.map((image) => image[col].reduce((s, v) => s + v, 0) / image[col].length);
    let sum = 0;
    for (const m of members) {
      const r: number[] = [];
      const inv: number[] = [];
      for (let i = 0; i < m.length; i++) {
        for (let j = i + 1; j < m.length; j++) {
          r.push(pearson(response(m[i]), response(m[j])));
          inv.push(1 / (dist[m[i]][m[j]] + 1));
        }
      }
      sum += 1 - pearson(r, inv);
    }
    return sum / members.length;
  }

  test("random states on a 2 x 3 grid: value and gradient against the float64 definition", async () => {
    const [b, n, d] = [5, 6, 3];
    const rng = new Rng(5);
    const flat = Array.from({ length: b * n * d }, () => rng.next() * 2 - 1);
    const pos = Array.from({ length: n }, (_, i) => [i % 3, Math.floor(i / 3)]);
    const dist: Matrix = pos.map((p) => pos.map((q) => Math.hypot(p[0] - q[0], p[1] - q[1])));
    const members = [[1, 0, 2, 4], [5, 2, 4, 3]];
    const unflat = (x: number[]) => Array.from({ length: b }, (_, i) => Array.from({ length: n }, (_, c) => x.slice((i * n + c) * d, (i * n + c + 1) * d)));
    const f = (x: np.Array) => spatialCorrelation(x, np.array(selectionMatrix(Int32Array.from(members.flat()), n)).reshape([n, 2, 4]), arr(dist));
    const [value, grad] = valueAndGrad(f)(np.array(new Float32Array(flat)).reshape([b, n, d]));
    assertClose(await read(value), [naiveSpatial(unflat(flat), members, dist)], 1e-5, "value");
    assertClose(await read(grad), finiteDifferences((x) => naiveSpatial(unflat(x), members, dist), flat), 2e-4, "gradient");
  });

  test("neighbourhoods: a centre and its nearest columns of its own area, deterministic per seed; small areas are skipped", () => {
    // a line of 5 columns (area a) and 2 further columns (area b, too small for size 3)
    const areas: Area[] = [{ name: "a", start: 0, end: 5 }, { name: "b", start: 5, end: 7 }];
    const x = [0, 1, 2, 3, 4, 2.1, 2.2];
    const dist = x.flatMap((p) => x.map((q) => Math.abs(p - q)));
    const spec = { neighbourhoods: 50, size: 3 };
    const drawn = drawNeighbourhoods(dist, 7, areas, spec, 42);
    assert.deepEqual(drawn, drawNeighbourhoods(dist, 7, areas, spec, 42), "same seed, same draw");
    assert.notDeepEqual(drawn, drawNeighbourhoods(dist, 7, areas, spec, 43), "another seed, another draw");
    // by hand: the 3 nearest of each centre on the line (ties by index), never columns 5, 6 of area b
    const expected: Record<number, number[]> = { 0: [0, 1, 2], 1: [1, 0, 2], 2: [2, 1, 3], 3: [3, 2, 4], 4: [4, 3, 2] };
    const centres = new Set<number>();
    for (let m = 0; m < 50; m++) {
      const row = Array.from(drawn.slice(m * 3, m * 3 + 3));
      assert.deepEqual(row, expected[row[0]], `neighbourhood ${m}`);
      centres.add(row[0]);
    }
    assert.equal(centres.size, 5, "every centre of area a drawn in 50 draws");
    const sel = selectionMatrix(Int32Array.of(2, 0), 3);
    assert.deepEqual(Array.from(sel), [0, 1, 0, 0, 1, 0]); // [N=3, 2]: column 0 is member 1, column 2 member 0
    assert.throws(() => neighbourhoodAreas(areas, 6), /spatial_correlation.size is 6 but the largest area has 5 columns; set spatial_correlation.size to at most 5/);
    assert.throws(() => neighbourhoodAreas(areas, 2), /spatial_correlation.size must be at least 3/);
  });
});

describe("topo blur (TopoLoss)", () => {
  test("bilinear resampling matrices follow torch.nn.functional.interpolate (align_corners false), by hand", () => {
    // 4 -> 2 with scale factor 1/2: sources (o + 0.5) * 2 - 0.5 = 0.5, 2.5
    assert.deepEqual(Array.from(linearResize(4, 2, 2)), [0.5, 0.5, 0, 0, 0, 0, 0.5, 0.5]);
    // 2 -> 4 by size: sources (o + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (edge)
    assert.deepEqual(Array.from(linearResize(2, 4, 0.5)), [1, 0, 0.75, 0.25, 0.25, 0.75, 0, 1]);
    // 3 -> 1 -> 3: the one sample is (x0 + x1) / 2 (source 0.5; x2 unread, as in torch without antialias)
    assert.deepEqual(Array.from(resampleBlur1d(3, 2, "a")), [0.5, 0.5, 0, 0.5, 0.5, 0, 0.5, 0.5, 0]);
    assert.throws(() => resampleBlur1d(3, 4, `area "x"'s rows`), /topo_blur.factor is 4 but area "x"'s rows has only 3 columns; set topo_blur.factor to at most 3/);
  });

  test("blur matrices: resample is separable over the grid; gaussian rows sum to 1 within an area", () => {
    // a 2 x 2 grid area with factor 2: both axes average their two samples, so every row is 1/4
    const grid: Area[] = [{ name: "g", start: 0, end: 4, grid: [2, 2] }];
    assertClose(blurMatrix(new Float32Array(16), 4, grid, { kernel: "resample", sigma: 1, factor: 2 }), new Array(16).fill(0.25), 1e-7, "2x2");
    // a 2 x 3 grid: rows of the 2-axis average, columns resampleBlur1d(3) = rows (1/2, 1/2, 0)
    const k = blurMatrix(new Float32Array(36), 6, [{ name: "g", start: 0, end: 6, grid: [2, 3] }], { kernel: "resample", sigma: 1, factor: 2 });
    assertClose(Array.from(k.slice(0, 6)), [0.25, 0.25, 0, 0.25, 0.25, 0], 1e-7, "2x3 row 0");
    // gaussian on three columns 0, 1, 2 apart (area a) and one column alone (area b), sigma 1
    const x = [0, 1, 2, 10];
    const dist = x.flatMap((p) => x.map((q) => Math.abs(p - q)));
    const areas: Area[] = [{ name: "a", start: 0, end: 3 }, { name: "b", start: 3, end: 4 }];
    const g = blurMatrix(dist, 4, areas, { kernel: "gaussian", sigma: 1, factor: 2 });
    const z = 1 + Math.exp(-0.5) + Math.exp(-2);
    assertClose(Array.from(g.slice(0, 4)), [1 / z, Math.exp(-0.5) / z, Math.exp(-2) / z, 0], 1e-6, "row 0");
    assertClose(Array.from(g.slice(12, 16)), [0, 0, 0, 1], 0, "a column alone blurs to itself");
    assert.throws(() => blurMatrix(dist, 4, areas, { kernel: "resample", sigma: 1, factor: 2 }), /topo_blur.kernel "resample" needs grid areas, but area "a" has no grid; use topo_blur.kernel "gaussian"/);
  });

  test("value by hand, gradient against finite differences, and blocks of a stack averaged", async () => {
    // two columns w0 = (1, 0), w1 = (0, 1) blurred by the mean: both become (1/2, 1/2), cos = 1/sqrt2 each
    const mean = arr([[0.5, 0.5], [0.5, 0.5]]);
    assertClose(await read(topoBlur([np.array(new Float32Array([1, 0, 0, 1])).reshape([2, 1, 2])], mean.ref)), [1 - Math.SQRT1_2], 1e-6, "by hand");
    // identical columns cost 0; a stack of two blocks (0 and 1 - 1/sqrt2) averages to half
    const stack = np.array(new Float32Array([3, 1, 3, 1, 1, 0, 0, 1])).reshape([2, 2, 1, 2]);
    assertClose(await read(topoBlur([stack], mean.ref)), [(1 - Math.SQRT1_2) / 2], 1e-6, "stack");
    // random weights of 3 columns, a random row-stochastic blur: gradient vs float64 finite differences
    const rng = new Rng(9);
    const w = Array.from({ length: 3 * 2 * 2 }, () => rng.next() - 0.3);
    const k: Matrix = [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0, 0.4, 0.6]];
    const naive = (x: number[]) => {
      let loss = 0;
      for (let i = 0; i < 3; i++) {
        const wi = x.slice(4 * i, 4 * i + 4);
        const bi = [0, 1, 2, 3].map((f) => k[i].reduce((s, kij, j) => s + kij * x[4 * j + f], 0));
        const dot = wi.reduce((s, v, f) => s + v * bi[f], 0);
        loss += 1 - dot / Math.hypot(...wi) / Math.hypot(...bi);
      }
      return loss / 3;
    };
    const [value, grad] = valueAndGrad((x: np.Array) => topoBlur([x], arr(k)))(np.array(new Float32Array(w)).reshape([3, 2, 2]));
    assertClose(await read(value), [naive(w)], 1e-6, "value");
    assertClose(await read(grad), finiteDifferences(naive, w), 1e-4, "gradient");
    mean.dispose();
  });
});

describe("the penalties as training-config options", () => {
  const sheet = { geometry: { kind: "stacked", widths: [2, 3, 2] }, dim: 8, qk_dim: 4, mlp_dim: 6, depth: 2 };
  const vision = { image_size: 8, patch_size: 4, channels: 1 };

  test("defaults are off (and not computed); coefficients follow their schedules", () => {
    const config = parseTrainConfig({ sheet, vision, steps: 10 });
    assert.equal(config.wiring.form, "l1");
    assert.deepEqual(config.spatial_correlation, { coef: 0, neighbourhoods: 4, size: 9, schedule: { kind: "constant", warmup_fraction: 0.1, final_fraction: 0 } });
    assert.deepEqual(config.topo_blur, { coef: 0, kernel: "gaussian", sigma: 1, factor: 2, schedule: { kind: "constant", warmup_fraction: 0.1, final_fraction: 0 } });
    const session = createSession(config, { backend: "jax" });
    assert.deepEqual([session.spec.communicability, session.spec.spatialCorrelation, session.spec.topoBlur], [false, false, false]);
    assert.equal(session.blur, null);
    assert.equal(session.neighbourhoods(0), null);
    assert.deepEqual([session.coefficients(3).spatial, session.coefficients(3).topo], [0, 0]);
    disposeSession(session);
    const on = parseTrainConfig({ sheet, vision, steps: 10, spatial_correlation: { coef: 2, size: 4, schedule: { kind: "warmup", warmup_fraction: 0.5 } }, topo_blur: { coef: 3 } });
    const s2 = createSession(on, { backend: "jax" });
    assert.deepEqual([s2.coefficients(0).spatial, s2.coefficients(9).spatial, s2.coefficients(0).topo], [0.4, 2, 3]);
    // neighbourhoods: a pure function of the step, one-hot [N, M, K]
    const sel = s2.neighbourhoods(5)!;
    assert.deepEqual(sel, s2.neighbourhoods(5));
    assert.equal(sel.length, 17 * 4 * 4);
    assert.equal(sel.reduce((a, v) => a + v, 0), 16);
    assert.ok([1, 2, 3, 4].some((step) => s2.neighbourhoods(step)!.some((v, t) => v !== sel[t])), "neighbourhoods change between steps");
    disposeSession(s2);
  });

  test("errors name the field and the fix", () => {
    const make = (extra: Record<string, unknown>, sheetExtra: Record<string, unknown> = {}) => () =>
      createSession(parseTrainConfig({ sheet: { ...sheet, ...sheetExtra }, vision, ...extra }), { backend: "jax" });
    assert.throws(make({ wiring: { form: "communicability", lambda: 0.1 } }, { connectivity: { kind: "local", k: 3 } }), /wiring.form "communicability" needs a dense sheet/);
    assert.throws(make({ topo_blur: { coef: 1 } }, { untie_attn: false, untie_mlp: false }), /topo_blur.coef > 0 needs untied weights/);
    assert.throws(make({ spatial_correlation: { coef: 1, size: 10 } }), /spatial_correlation.size is 10 but the largest area has 9 columns/);
    assert.throws(make({ spatial_correlation: { coef: 1, size: 4 }, batch_size: 1 }), /batch_size must be at least 2/);
    assert.throws(make({ topo_blur: { coef: 1, kernel: "resample", factor: 3 } }), /topo_blur.factor is 3 but area "area0"'s rows has only 2 columns/);
    assert.throws(() => parseTrainConfig({ sheet, topo_blur: { coef: 1, kernal: "gaussian" } }), /topo_blur/);
    assert.throws(() => parseTrainConfig({ sheet, wiring: { form: "communicabilty" } }), /wiring.form/);
  });
});
