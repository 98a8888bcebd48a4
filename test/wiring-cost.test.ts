import assert from "node:assert/strict";
import { before, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { grad, numpy as np } from "../src/engine/jax.ts";
import { buildGeometry } from "../src/geometry/index.ts";
import {
  crossEntropyWiringWeights,
  l1WiringWeights,
  wiringCost,
  wiringCostFromDistances,
} from "../src/objectives/wiring-cost.ts";
import { distanceMatrix } from "../src/geometry/metric.ts";

before(async () => {
  await initEngine();
});

const m = (rows: number[][]): np.Array => np.array(new Float32Array(rows.flat())).reshape([rows.length, rows[0].length]);
const scalar = async (x: np.Array): Promise<number> => (await x.data())[0];

// three columns on a line at 0, 1, 2
const LINE = [
  [0, 1, 2],
  [1, 0, 1],
  [2, 1, 0],
];

test("L1 weights are d^p / mean(d^p)", async () => {
  // mean(d) = 8/9, so W = d * 9/8
  assert.deepEqual(Array.from((await l1WiringWeights(m(LINE)).data()) as Float32Array).map((v) => +v.toFixed(6)), LINE.flat().map((d) => +((d * 9) / 8).toFixed(6)));
  // p = 2: d^2 = [0,1,4; 1,0,1; 4,1,0], mean 12/9 = 4/3, so W = d^2 * 3/4
  assert.deepEqual(Array.from((await l1WiringWeights(m(LINE), 2).data()) as Float32Array).map((v) => +v.toFixed(6)), LINE.flat().map((d) => +((d * d * 3) / 4).toFixed(6)));
});

test("L1 cost by hand: uniform attention costs exactly lambda, self-attention costs 0", async () => {
  const uniform = np.full([1, 1, 3, 3], 1 / 3);
  assert.ok(Math.abs((await scalar(wiringCostFromDistances(uniform, m(LINE), { form: "l1", lambda: 0.1 }))) - 0.1) < 1e-7);
  const self = np.eye(3).reshape([1, 1, 3, 3]);
  assert.equal(await scalar(wiringCostFromDistances(self, m(LINE), { form: "l1", lambda: 0.1 })), 0);
  // a hand-made map, two samples x two steps: mean over (batch, step, row) of sum_j A_ij W_ij
  const a = [
    [0.5, 0.5, 0],
    [0, 1, 0],
    [0, 0.25, 0.75],
  ]; // row costs with W = 9/8 d: 0.5*9/8, 0, 0.25*9/8 -> mean (0.75*9/8)/3 = 0.28125
  const b = [
    [0, 0, 1],
    [0, 1, 0],
    [1, 0, 0],
  ]; // row costs 2*9/8, 0, 2*9/8 -> mean 1.5
  const attn = np.array(new Float32Array([a, b, b, a].flat(2))).reshape([2, 2, 3, 3]);
  const cost = await scalar(wiringCostFromDistances(attn, m(LINE), { form: "l1", lambda: 2 }));
  assert.ok(Math.abs(cost - 2 * ((0.28125 + 1.5) / 2)) < 1e-6, `cost ${cost}`);
});

test("cross-entropy weights and cost by hand", async () => {
  // sigma 1, row 0: logits -d^2/2 = [0, -0.5, -2]; W_0j = logsumexp - logit_j
  const lse0 = Math.log(1 + Math.exp(-0.5) + Math.exp(-2));
  const lse1 = Math.log(Math.exp(-0.5) + 1 + Math.exp(-0.5));
  const w = await crossEntropyWiringWeights(m(LINE), 1).data();
  const expected = [lse0, lse0 + 0.5, lse0 + 2, lse1 + 0.5, lse1, lse1 + 0.5, lse0 + 2, lse0 + 0.5, lse0];
  expected.forEach((v, i) => {
    assert.ok(Math.abs(w[i] - v) < 1e-5, `W[${i}] ${w[i]} vs ${v}`);
  });
  const self = np.eye(3).reshape([1, 1, 3, 3]);
  const cost = await scalar(wiringCostFromDistances(self, m(LINE), { form: "cross_entropy", lambda: 1, sigma: 1 }));
  assert.ok(Math.abs(cost - (2 * lse0 + lse1) / 3) < 1e-5);
});

test("local attention costs less than uniform attention (both forms)", async () => {
  const g = buildGeometry({ kind: "grid", height: 6, width: 6 });
  const n = g.numColumns;
  const local = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    let z = 0;
    for (let j = 0; j < n; j++) z += local[i * n + j] = Math.exp(-(distanceMatrix(g)[i * n + j] ** 2));
    for (let j = 0; j < n; j++) local[i * n + j] /= z;
  }
  for (const spec of [{ form: "l1", lambda: 1 }, { form: "cross_entropy", lambda: 1 }] as const) {
    const dist = () => np.array(distanceMatrix(g)).reshape([n, n]);
    const cLocal = await scalar(wiringCostFromDistances(np.array(local).reshape([1, 1, n, n]), dist(), spec));
    const cUniform = await scalar(wiringCostFromDistances(np.full([1, 1, n, n], 1 / n), dist(), spec));
    assert.ok(cLocal < 0.8 * cUniform, `${spec.form}: local ${cLocal} vs uniform ${cUniform}`);
  }
});

test("gradient flows into attention and distances", async () => {
  const a = [
    [1, 0, 0],
    [0.5, 0, 0.5],
    [0, 0, 1],
  ];
  const attn = m(a).reshape([1, 1, 3, 3]);
  const [gA, gD] = grad((x: np.Array, d: np.Array) => wiringCost(x, l1WiringWeights(d), 1), { argnums: [0, 1] })(attn, m(LINE));
  // cost = (1/3) sum_ij A_ij d_ij / mu, mu = mean(d) = 8/9
  // d cost / d A_ij = d_ij / (3 mu);  d cost / d d_kl = A_kl / (3 mu) - (sum_ij A_ij d_ij) / (3 mu^2 * 9)
  const mu = 8 / 9;
  const sAD = a.flat().reduce((s, v, i) => s + v * LINE.flat()[i], 0);
  const ga = await gA.data();
  LINE.flat().forEach((d, i) => {
    assert.ok(Math.abs(ga[i] - d / (3 * mu)) < 1e-6, `dA[${i}]`);
  });
  const gd = await gD.data();
  a.flat().forEach((v, i) => {
    const expected = v / (3 * mu) - sAD / (3 * mu * mu * 9);
    assert.ok(Math.abs(gd[i] - expected) < 1e-6, `dD[${i}] ${gd[i]} vs ${expected}`);
  });
});
