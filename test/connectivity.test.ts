import assert from "node:assert/strict";
import { test } from "node:test";
import {
  areaFlow,
  attentionEntropy,
  distanceHistogram,
  localityCurve,
  meanAttentionDistance,
  perStepAndMean,
  selfAttentionMass,
  stepMeanMap,
  wiringCosts,
} from "../src/analysis/connectivity.ts";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np } from "../src/engine/jax.ts";
import { buildGeometry } from "../src/geometry/index.ts";
import type { Area } from "../src/geometry/types.ts";
import { wiringCostFromDistances } from "../src/objectives/wiring-cost.ts";
import { Rng } from "../src/engine/rng.ts";
import { distanceMatrix } from "../src/geometry/metric.ts";

const close = (actual: number, expected: number, tol = 1e-6, msg?: string): void =>
  assert.ok(Math.abs(actual - expected) <= tol, msg ?? `expected ${expected}, got ${actual}`);

/** Distances of n columns at 0, 1, ..., n-1 on a line. */
function lineDistances(n: number): Float32Array {
  const d = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) d[i * n + j] = Math.abs(i - j);
  return d;
}

/** Local attention on a line: 0.5 to itself and 0.25 to each neighbour; an end column puts its missing 0.25 on itself. */
function localLine(n: number): Float32Array {
  const a = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    a[i * n + i] = 0.5;
    for (const j of [i - 1, i + 1]) {
      if (j >= 0 && j < n) a[i * n + j] = 0.25;
      else a[i * n + i] += 0.25;
    }
  }
  return a;
}

const uniform = (n: number): Float32Array => new Float32Array(n * n).fill(1 / n);

function randomAttention(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const a = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += a[i * n + j] = rng.next() ** 3;
    for (let j = 0; j < n; j++) a[i * n + j] /= s;
  }
  return a;
}

test("local attention on a line: mean distance and locality curve by hand", () => {
  const n = 6;
  const a = localLine(n);
  const d = lineDistances(n);
  // interior rows read 0.25 at distance 1 on both sides (0.5 expected distance), the 2 end rows 0.25 at distance 1
  close(meanAttentionDistance(a, d), (4 * 0.5 + 2 * 0.25) / n);
  // within r = 0: the self mass, 0.5 inside and 0.75 at the ends; within r >= 1: everything
  const curve = localityCurve(a, d, [-1, 0, 0.5, 1, 2, 5, 100]);
  const self = (4 * 0.5 + 2 * 0.75) / n;
  assert.deepEqual(
    curve.map((v) => +v.toFixed(9)),
    [0, self, self, 1, 1, 1, 1].map((v) => +v.toFixed(9)),
  );
  close(selfAttentionMass(a), self);
});

test("locality curve is non-decreasing and exactly 1 at the largest distance on a random map", () => {
  const geo = buildGeometry({ kind: "grid", height: 4, width: 5 });
  const a = randomAttention(20, 7);
  const maxD = Math.max(...distanceMatrix(geo));
  const radii = Array.from({ length: 30 }, (_, k) => (k * maxD) / 29);
  const curve = localityCurve(a, distanceMatrix(geo), radii);
  for (let k = 1; k < curve.length; k++) assert.ok(curve[k] >= curve[k - 1] - 1e-12, `not monotone at ${k}`);
  assert.equal(localityCurve(a, distanceMatrix(geo), [maxD])[0], 1);
  assert.ok(curve[0] > 0 && curve[0] < 1); // r = 0 is the self mass
  close(curve[0], selfAttentionMass(a), 1e-6);
});

test("uniform attention: entropy log N, self mass 1/N, L1 wiring cost exactly lambda", () => {
  const n = 12;
  const a = uniform(n);
  const geo = buildGeometry({ kind: "grid", height: 3, width: 4 });
  const h = attentionEntropy(a);
  close(h.entropy, Math.log(n), 1e-6);
  close(h.normalized, 1, 1e-6);
  close(selfAttentionMass(a), 1 / n, 1e-7);
  close(wiringCosts(a, distanceMatrix(geo), { lambda: 0.3 }).l1, 0.3, 1e-6);
  close(wiringCosts(a, distanceMatrix(geo), { lambda: 0.3, p: 2 }).l1, 0.3, 1e-6);
  // one-hot rows have zero entropy
  const eye = new Float32Array(n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  assert.deepEqual(attentionEntropy(eye), { entropy: 0, normalized: 0 });
  assert.equal(selfAttentionMass(eye), 1);
});

test("wiring costs by hand on three columns on a line", () => {
  const d = lineDistances(3); // [0 1 2; 1 0 1; 2 1 0], mean d = 8/9, mean d^2 = 12/9
  const eye = new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const a = new Float32Array([0.5, 0.5, 0, 0.25, 0.5, 0.25, 0, 0, 1]);
  // L1 (p = 1): W = d * 9/8; rows: 0.5*1, 0.25*1 + 0.25*1, 0 -> sum of expected d = 1, mean 1/3
  close(wiringCosts(a, d, { lambda: 2 }).l1, (2 * (1 / 3) * 9) / 8);
  // L1 (p = 2): W = d^2 * 3/4; rows: 0.5, 0.5, 0 -> mean 1/3
  close(wiringCosts(a, d, { lambda: 2, p: 2 }).l1, (2 * (1 / 3) * 3) / 4);
  assert.equal(wiringCosts(eye, d).l1, 0);
  // cross-entropy, sigma = 2: W_ij = d_ij^2 / 8 + log Z_i, Z_0 = Z_2 = 1 + e^{-1/8} + e^{-1/2}, Z_1 = 1 + 2 e^{-1/8}
  const logZ0 = Math.log(1 + Math.exp(-1 / 8) + Math.exp(-1 / 2));
  const logZ1 = Math.log(1 + 2 * Math.exp(-1 / 8));
  close(wiringCosts(eye, d).cross_entropy, (2 * logZ0 + logZ1) / 3);
  const rows = [0.5 * (1 / 8) + logZ0, 0.5 * (1 / 8) + logZ1, logZ0];
  close(wiringCosts(a, d, { lambda: 0.1 }).cross_entropy, (0.1 * (rows[0] + rows[1] + rows[2])) / 3);
  // sigma = 1: W_ij = d_ij^2 / 2 + log Z_i
  const z0 = Math.log(1 + Math.exp(-1 / 2) + Math.exp(-2));
  close(wiringCosts(eye, d, { sigma: 1 }).cross_entropy, (2 * z0 + Math.log(1 + 2 * Math.exp(-1 / 2))) / 3);
});

test("wiring costs agree with the training objective (jax-js)", async () => {
  await initEngine();
  const geo = buildGeometry({ kind: "grid", height: 3, width: 3, self_offset: 0.5 });
  const n = geo.numColumns;
  const a = randomAttention(n, 3);
  const ours = wiringCosts(a, distanceMatrix(geo), { lambda: 0.7, p: 1.5, sigma: 1.3 });
  const jaxCost = async (spec: Parameters<typeof wiringCostFromDistances>[2]): Promise<number> => {
    const c = wiringCostFromDistances(np.array(a).reshape([1, 1, n, n]), np.array(distanceMatrix(geo)).reshape([n, n]), spec);
    return (await c.data())[0];
  };
  close(ours.l1, await jaxCost({ form: "l1", lambda: 0.7, p: 1.5 }), 1e-5);
  close(ours.cross_entropy, await jaxCost({ form: "cross_entropy", lambda: 0.7, sigma: 1.3 }), 1e-5);
});

test("distance histogram: hand values on the line, mass sums to 1", () => {
  const n = 6;
  const d = lineDistances(n);
  const h = distanceHistogram(localLine(n), d, 5);
  assert.deepEqual(h.edges, [0, 1, 2, 3, 4, 5]);
  const self = (4 * 0.5 + 2 * 0.75) / n;
  assert.deepEqual(
    h.mass.map((v) => +v.toFixed(9)),
    [self, 1 - self, 0, 0, 0].map((v) => +v.toFixed(9)),
  );
  // explicit edges; the top distance 5 lands in the closed last bin
  const u = distanceHistogram(uniform(n), d, [0, 0.5, 2.5, 5]);
  // uniform: pairs at distance 0: 6, at 1..2: 10 + 8 = 18, at 3..5: 6 + 4 + 2 = 12 (of 36)
  assert.deepEqual(
    u.mass.map((v) => +v.toFixed(6)),
    [6 / 36, 18 / 36, 12 / 36].map((v) => +v.toFixed(6)),
  );
  // edges that miss part of the range drop that mass
  close(
    distanceHistogram(uniform(n), d, [0.5, 2.5]).mass.reduce((s, m) => s + m, 0),
    18 / 36,
  );
  // random map on a grid: any bin count sums to 1
  const geo = buildGeometry({ kind: "grid", height: 5, width: 5 });
  const a = randomAttention(25, 11);
  for (const bins of [1, 3, 10, 40]) {
    const r = distanceHistogram(a, distanceMatrix(geo), bins);
    assert.equal(r.edges.length, bins + 1);
    assert.equal(r.mass.length, bins);
    close(r.mass.reduce((s, m) => s + m, 0), 1, 1e-9);
  }
  assert.throws(() => distanceHistogram(a, distanceMatrix(geo), [1, 1]));
  assert.throws(() => distanceHistogram(a, distanceMatrix(geo), 0));
});

test("area flow on a 3-area toy: feedforward / feedback / lateral by hand", () => {
  const areas: Area[] = [
    { name: "input", start: 0, end: 2 },
    { name: "hidden", start: 2, end: 5 },
    { name: "output", start: 5, end: 7 },
  ];
  const n = 7;
  // spread `mass` uniformly over area `s` in row i
  const put = (a: Float32Array, i: number, s: Area, mass: number): void => {
    for (let j = s.start; j < s.end; j++) a[i * n + j] += mass / (s.end - s.start);
  };
  // 1) input reads from itself, hidden only from input, output only from hidden: all but the input rows is feedforward
  const ff = new Float32Array(n * n);
  for (let i = 0; i < 2; i++) put(ff, i, areas[0], 1);
  for (let i = 2; i < 5; i++) put(ff, i, areas[0], 1);
  for (let i = 5; i < 7; i++) put(ff, i, areas[1], 1);
  const f1 = areaFlow(ff, areas);
  close(f1.feedforward, 5 / 7);
  close(f1.lateral, 2 / 7);
  assert.equal(f1.feedback, 0);
  assert.deepEqual(f1.matrix.map((r) => r.map((v) => +v.toFixed(6))), [
    [1, 0, 0],
    [1, 0, 0],
    [0, 1, 0],
  ]);

  // 2) a known mixture: input lateral; hidden 0.6 from input + 0.4 from output;
  //    output 0.5 from input, 0.3 from hidden, 0.2 from itself
  const mix = new Float32Array(n * n);
  for (let i = 0; i < 2; i++) put(mix, i, areas[0], 1);
  for (let i = 2; i < 5; i++) {
    put(mix, i, areas[0], 0.6);
    put(mix, i, areas[2], 0.4);
  }
  for (let i = 5; i < 7; i++) {
    put(mix, i, areas[0], 0.5);
    put(mix, i, areas[1], 0.3);
    put(mix, i, areas[2], 0.2);
  }
  const f2 = areaFlow(mix, areas);
  // mass-weighted over the 7 rows: ff = 3*0.6 + 2*(0.5+0.3) = 3.4, fb = 3*0.4 = 1.2, lateral = 2*1 + 2*0.2 = 2.4
  close(f2.feedforward, 3.4 / 7);
  close(f2.feedback, 1.2 / 7);
  close(f2.lateral, 2.4 / 7);
  close(f2.feedforward + f2.feedback + f2.lateral, 1, 1e-12);
  assert.deepEqual(f2.matrix.map((r) => r.map((v) => +v.toFixed(6))), [
    [1, 0, 0],
    [0.6, 0, 0.4],
    [0.5, 0.3, 0.2],
  ]);

  // uniform attention over stacked areas: lateral = sum of squared area fractions
  const geo = buildGeometry({ kind: "stacked", widths: [2, 3] }); // 4 + 9 columns
  const fu = areaFlow(uniform(13), geo.areas);
  close(fu.lateral, (4 * 4 + 9 * 9) / 169, 1e-6);
  close(fu.feedforward, (9 * 4) / 169, 1e-6);
  close(fu.feedback, (4 * 9) / 169, 1e-6);

  assert.throws(() => areaFlow(mix, [areas[1], areas[0]]), /unsorted or overlapping/);
  assert.throws(() => areaFlow(mix, [{ name: "x", start: 0, end: 8 }]));
});

test("perStepAndMean: per step and on the step-mean map", () => {
  const n = 4;
  const eye = new Float32Array(n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  const maps = new Float32Array(2 * n * n);
  maps.set(eye, 0);
  maps.set(uniform(n), n * n);
  const steps: number[] = [];
  const r = perStepAndMean(maps, n, (a, step) => {
    steps.push(step);
    return selfAttentionMass(a);
  });
  assert.deepEqual(steps, [0, 1, -1]);
  assert.deepEqual(r.perStep, [1, 0.25]);
  assert.equal(r.mean, 0.625);
  // non-linear metric: entropy of the mean map is not the mean of the entropies
  const e = perStepAndMean(maps, n, (a) => attentionEntropy(a).entropy);
  close(e.perStep[0], 0);
  close(e.perStep[1], Math.log(4), 1e-6);
  close(e.mean, -(0.625 * Math.log(0.625) + 3 * 0.125 * Math.log(0.125)), 1e-6);
  assert.deepEqual(Array.from(stepMeanMap(maps, n).subarray(0, n)), [0.625, 0.125, 0.125, 0.125]);
  assert.throws(() => perStepAndMean(new Float32Array(10), n, selfAttentionMass));
});
