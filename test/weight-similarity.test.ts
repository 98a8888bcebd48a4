/** Weight similarity vs distance against hand computations, and against the feature-consistency penalty. */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { weightSimilarityVsDistance, type ColumnWeights } from "../src/analysis/weight-similarity.ts";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np } from "../src/engine/jax.ts";
import { featureConsistency, nearestNeighbourGraph } from "../src/objectives/feature-consistency.ts";
import { assertClose, read } from "./assertions.ts";

before(async () => {
  await initEngine();
});

/** Distances of columns on a line at 0, 1, ..., n-1. */
const line = (n: number) => Float32Array.from({ length: n * n }, (_, k) => Math.abs(Math.floor(k / n) - (k % n)));
const S = Math.SQRT1_2;

test("three columns on a line: hand-computed cosines, bins and neighbours", () => {
  // w0 = (1, 0), w1 = (1, 1), w2 = (-1, 1): cos01 = 1/sqrt2, cos12 = 0, cos02 = -1/sqrt2
  const w: ColumnWeights = { name: "a", shape: [3, 1, 2], values: new Float32Array([1, 0, 1, 1, -1, 1]) };
  const c = weightSimilarityVsDistance([w], line(3), 3, 2);
  assertClose(c.edges, [1, 1.5, 2], 1e-12, "edges over the pair distances");
  assert.deepEqual(c.counts, [2, 1]);
  assertClose(c.meanCosine, [S / 2, -S], 1e-6, "bin means");
  // nearest: 0 -> {1}, 1 -> {0, 2} (tie), 2 -> {1}: (S + S/2 + 0) / 3
  assertClose([c.neighbour_similarity], [S / 2], 1e-6, "neighbours: all at the nearest distance");
  assert.equal(c.neighbours, null);
  // k = 1, ties by index: 1 -> {0}: (S + S + 0) / 3
  const k1 = weightSimilarityVsDistance([w], line(3), 3, 2, { neighbours: 1 });
  assertClose([k1.neighbour_similarity], [(2 * S) / 3], 1e-6, "k = 1");
  assert.equal(k1.neighbours, 1);

  // a stack of two blocks of scalars: block 0 (1, 2, -3): cos01 = 1, cos12 = cos02 = -1; block 1 all equal: 1
  const stack: ColumnWeights = { name: "b", shape: [2, 3, 1, 1], values: new Float32Array([1, 2, -3, 1, 1, 1]) };
  const both = weightSimilarityVsDistance([w, stack], line(3), 3, 2);
  assertClose(both.matrices[1].meanCosine, [0.5, 0], 1e-6, "blocks averaged");
  assert.equal(both.matrices[1].blocks, 2);
  assertClose(both.meanCosine, [(S / 2 + 0.5) / 2, -S / 2], 1e-6, "matrices averaged");
  // stack neighbours: block 0: 0 -> 1, 1 -> (1 - 1)/2 = 0, 2 -> -1: 0; block 1: 1 -> mean 0.5
  assertClose([both.matrices[1].neighbour_similarity], [0.5], 1e-6, "stack neighbours");
  assertClose([both.neighbour_similarity], [(S / 2 + 0.5) / 2], 1e-6, "mean over matrices");
});

test("identical (and scaled) weights give similarity 1 everywhere; a zero column gives 0", () => {
  const n = 5;
  const row = [0.3, -1.2, 2.5, 0.7, -0.1, 0.9];
  const values = Float32Array.from({ length: n * 6 }, (_, k) => row[k % 6] * (1 + Math.floor(k / 6)));
  const c = weightSimilarityVsDistance([{ name: "w", shape: [n, 2, 3], values }], line(n), n, 4);
  for (const v of c.meanCosine) assert.ok(Math.abs(v - 1) < 1e-6, `bin mean ${v}`);
  assert.ok(Math.abs(c.neighbour_similarity - 1) < 1e-6);
  values.fill(0, 0, 6);
  const z = weightSimilarityVsDistance([{ name: "w", shape: [n, 2, 3], values }], line(n), n, 4, { neighbours: 1 });
  // column 0 is all zeros: its pairs count 0; column 0's neighbour is 1, column 1's is 0 (tie with 2, by index)
  assertClose([z.neighbour_similarity], [(0 + 0 + 1 + 1 + 1) / 5], 1e-6, "zero column");
});

test("neighbour similarity with the penalty's k is 1 - the feature-consistency penalty", async () => {
  const n = 6;
  const values = Float32Array.from({ length: 2 * n * 3 * 2 }, (_, k) => Math.sin(1.7 * k + 0.3) + 0.2 * Math.cos(k));
  const d = line(n);
  const c = weightSimilarityVsDistance([{ name: "w", shape: [2, n, 3, 2], values }], d, n, 3, { neighbours: 2 });
  const penalty = await read(featureConsistency([np.array(values).reshape([2, n, 3, 2])], np.array(nearestNeighbourGraph(d, n, 2)).reshape([n, n])));
  assertClose([c.neighbour_similarity], [1 - penalty[0]], 1e-5, "1 - penalty");
});

test("rejects bad shapes and inputs", () => {
  const d = line(3);
  assert.throws(() => weightSimilarityVsDistance([], d, 3, 2), /no untied weights/);
  assert.throws(() => weightSimilarityVsDistance([{ name: "t", shape: [4, 1, 2], values: new Float32Array(8) }], d, 3, 2), /expected \[3, out, in\]/);
  assert.throws(() => weightSimilarityVsDistance([{ name: "t", shape: [3, 1, 2], values: new Float32Array(5) }], d, 3, 2), /5 values/);
  assert.throws(() => weightSimilarityVsDistance([{ name: "t", shape: [3, 1, 2], values: new Float32Array(6) }], d, 3, 2, { neighbours: 3 }), /neighbours/);
});
