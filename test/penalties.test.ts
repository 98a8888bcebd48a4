/** Penalty schedules and the feature-consistency penalty, against hand computations. */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, valueAndGrad } from "../src/engine/jax.ts";
import { featureConsistency, nearestNeighbourGraph } from "../src/objectives/feature-consistency.ts";
import { columnActivity } from "../src/model/vision.ts";
import { penaltySchedule } from "../src/optim/schedule.ts";
import { assertClose, read } from "./assertions.ts";

before(async () => {
  await initEngine();
});

describe("penalty schedules", () => {
  const cfg = (kind: "constant" | "warmup" | "cosine", final_fraction = 0) => ({ kind, warmup_fraction: 0.5, final_fraction });
  test("constant", () => {
    const s = penaltySchedule(2, cfg("constant"), 10);
    assert.deepEqual([0, 5, 9, 20].map(s), [2, 2, 2, 2]);
  });
  test("warm-up: linear over the first half, then flat", () => {
    const s = penaltySchedule(2, cfg("warmup"), 10);
    assertClose([0, 1, 4, 5, 9].map(s), [0.4, 0.8, 2, 2, 2], 1e-12, "warmup");
  });
  test("cosine: warm-up, then cosine decay to the final fraction", () => {
    const s = penaltySchedule(2, cfg("cosine"), 10);
    // after the 5 warm-up steps: 2 * (1 + cos(pi * (step - 5) / 5)) / 2
    assertClose([4, 5, 7, 10].map(s), [2, 2, 1 + Math.cos((2 * Math.PI) / 5), 0], 1e-12, "cosine");
    const floor = penaltySchedule(2, cfg("cosine", 0.25), 10);
    assert.equal(floor(10), 0.5);
  });
});

describe("feature consistency", () => {
  test("neighbour graph: k nearest other columns, ties broken by index", () => {
    // four columns on a line at 0, 1, 2, 3
    const d = Array.from({ length: 16 }, (_, k) => Math.abs(Math.floor(k / 4) - (k % 4)));
    assert.deepEqual(Array.from(nearestNeighbourGraph(d, 4, 1)), [0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
    assert.deepEqual(Array.from(nearestNeighbourGraph(d, 4, 2)).slice(4, 8), [1, 0, 1, 0]);
    assert.throws(() => nearestNeighbourGraph(d, 4, 4), /consistency.neighbours must be in 1..3/);
  });

  test("value and gradient on a hand case", async () => {
    // three columns, each a 1x2 weight matrix: w0 = (1, 0), w1 = (1, 1), w2 = (0, 2); neighbours 0-1 and 1-2
    // cos(w0, w1) = cos(w1, w2) = 1/sqrt(2), so the penalty is 1 - 1/sqrt(2)
    const adjacency = [0, 1, 0, 1, 0, 1, 0, 1, 0];
    const loss = (w: np.Array) => featureConsistency([w], np.array(new Float32Array(adjacency)).reshape([3, 3]));
    const w = np.array(new Float32Array([1, 0, 1, 1, 0, 2])).reshape([3, 1, 2]);
    const [value, grad] = valueAndGrad(loss)(w);
    assertClose(await read(value), [1 - Math.SQRT1_2], 1e-6, "penalty");
    // P = (1 - cos01) / 2 + (1 - cos12) / 2; d cos(a, b) / da = b / (|a||b|) - (a.b) a / (|a|^3 |b|)
    // w0: d cos01 / d w0 = (1, 1)/sqrt2 - (1, 0)/sqrt2 = (0, 1/sqrt2)  -> dP/dw0 = (0, -1/(2 sqrt2))
    // w2: d cos12 / d w2 = (1, 1)/(2 sqrt2) - 2 (0, 2)/(8 sqrt2) = (1/(2 sqrt2), 0) -> dP/dw2 = (-1/(4 sqrt2), 0)
    // w1: d cos01/dw1 = (1,0)/sqrt2 - (1,1)/(2 sqrt2) = (1, -1)/(2 sqrt2); d cos12/dw1 = (0,2)/(2 sqrt2) - 2 (1,1)/(4 sqrt2) = (-1, 1)/(2 sqrt2)
    //     -> dP/dw1 = -(1/2) * ((1, -1) + (-1, 1)) / (2 sqrt2) = (0, 0)
    const s = Math.SQRT2;
    assertClose(await read(grad), [0, -1 / (2 * s), 0, 0, -1 / (4 * s), 0], 1e-6, "gradient");
  });

  test("identical columns cost 0, and blocks of a stack are averaged", async () => {
    const adjacency = np.array(new Float32Array([0, 1, 1, 0])).reshape([2, 2]);
    const same = np.array(new Float32Array([1, 2, 3, 2, 4, 6])).reshape([2, 1, 3]); // w1 = 2 w0
    assertClose(await read(featureConsistency([same], adjacency.ref)), [0], 1e-6, "identical up to scale");
    // a stack of two blocks: block 0 identical (0), block 1 orthogonal (1) -> 0.5
    const stack = np.array(new Float32Array([1, 0, 1, 0, 1, 0, 0, 1])).reshape([2, 2, 1, 2]);
    assertClose(await read(featureConsistency([stack], adjacency)), [0.5], 1e-6, "stack");
  });
});

describe("activation sparsity", () => {
  test("mean |x| and Hoyer sparsity of column states, by hand", async () => {
    // column 0: (3, 4, 0, 0): |x|_1 = 7, |x|_2 = 5, Hoyer = (2 - 7/5) / (2 - 1) = 0.6
    // column 1: (1, 0, 0, 0): one-hot, Hoyer 1;  column 2: (1, 1, 1, 1): dense, Hoyer 0
    const x = np.array(new Float32Array([3, 4, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1])).reshape([1, 3, 4]);
    const { l1, hoyer } = columnActivity(x);
    assertClose(await read(l1), [(7 + 1 + 4) / 12], 1e-6, "mean |x|");
    assertClose(await read(hoyer), [(0.6 + 1 + 0) / 3], 1e-6, "Hoyer");
  });
});
