import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { Rng } from "../src/engine/rng.ts";
import { linearProbe, standardize, type ProbeSplit } from "../src/analysis/linear-probe.ts";

before(async () => {
  await initEngine();
});

/** Standard normal draw (Box–Muller) from a seeded stream. */
function gauss(r: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - r.next())) * Math.cos(2 * Math.PI * r.next());
}

/** n rows of d-dimensional features: label uniform in [0, c), features = centers[label] + noise * N(0, 1). */
function blobs(n: number, d: number, c: number, centers: Float64Array, noise: number, seed: number): ProbeSplit {
  const r = new Rng(seed);
  const features = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = r.int(c);
    labels[i] = y;
    for (let j = 0; j < d; j++) features[i * d + j] = centers[y * d + j] + noise * gauss(r);
  }
  return { features, labels };
}

function randomCenters(c: number, d: number, scale: number, seed: number): Float64Array {
  const r = new Rng(seed);
  return Float64Array.from({ length: c * d }, () => scale * gauss(r));
}

describe("linearProbe", () => {
  test("well-separated Gaussian blobs (20-D, 5 classes) are classified >= 99%; features with a large offset and scale too", async () => {
    const d = 20;
    const c = 5;
    const centers = randomCenters(c, d, 2, 1); // pairwise centre distance ~ 2 * sqrt(2 * 20) ~ 12.6 noise sigmas
    const train = blobs(1500, d, c, centers, 1, 2);
    const testSplit = blobs(1000, d, c, centers, 1, 3);
    const losses: number[] = [];
    const res = await linearProbe(train, testSplit, d, c, { epochs: 10, onEpoch: (_e, l) => losses.push(l) });
    assert.ok(res.testAccuracy >= 0.99, `test accuracy ${res.testAccuracy}`);
    assert.ok(res.trainAccuracy >= 0.99, `train accuracy ${res.trainAccuracy}`);
    assert.deepEqual(
      { epochs: res.epochs, numFeatures: res.numFeatures, numClasses: res.numClasses },
      { epochs: 10, numFeatures: d, numClasses: c },
    );
    assert.equal(losses.length, 10);
    for (let e = 1; e < 10; e++) assert.ok(losses[e] < losses[e - 1], `epoch losses should fall: ${losses.join(", ")}`);
    assert.ok(losses[0] < Math.log(c) && res.trainLoss < 0.5 * losses[0], `losses ${losses.join(", ")}; final ${res.trainLoss}`);

    // Badly scaled raw features (offset 1000, scale 50): standardisation makes them as easy as before.
    const shift = (s: ProbeSplit): ProbeSplit => ({ features: s.features.map((v) => 1000 + 50 * v), labels: s.labels });
    const scaled = await linearProbe(shift(train), shift(testSplit), d, c, { epochs: 10 });
    assert.ok(scaled.testAccuracy >= 0.99, `scaled test accuracy ${scaled.testAccuracy}`);
  });

  test("pure-noise labels give test accuracy near chance (4 classes)", async () => {
    const d = 20;
    const c = 4;
    const zero = new Float64Array(c * d);
    const train = blobs(1500, d, c, zero, 1, 10);
    const testSplit = blobs(2000, d, c, zero, 1, 11);
    const res = await linearProbe(train, testSplit, d, c, { epochs: 10, seed: 3 });
    assert.ok(res.testAccuracy < 0.3, `test accuracy ${res.testAccuracy} on noise labels (chance 0.25)`);
    assert.ok(res.testAccuracy > 0.2, `test accuracy ${res.testAccuracy}`);
    assert.ok(res.trainLoss > 1.2, `train loss ${res.trainLoss} (ln 4 = 1.386)`);
  });

  test("the same seed gives an identical result; another seed shuffles differently", async () => {
    const d = 8;
    const c = 3;
    const centers = randomCenters(c, d, 0.6, 20); // overlapping classes, so results are sensitive to the order
    const train = blobs(600, d, c, centers, 1, 21);
    const testSplit = blobs(300, d, c, centers, 1, 22);
    const run = async (seed: number) => {
      const losses: number[] = [];
      const res = await linearProbe(train, testSplit, d, c, { epochs: 4, batchSize: 64, seed, onEpoch: (_e, l) => losses.push(l) });
      return { res, losses };
    };
    const a = await run(7);
    const b = await run(7);
    const other = await run(8);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.losses, other.losses);
  });

  test("standardisation uses train statistics only: a test set shifted far from train is judged by train stats", async () => {
    // 1-D, 2 classes: train class 0 near -1, class 1 near +1. Every test row lies near +3 and has label 1.
    // With the train mean/std the test rows sit far on the class-1 side (accuracy 1). Had the test set been
    // z-scored with its own statistics, its rows would straddle 0 and about half would be misclassified.
    const r = new Rng(30);
    const nTrain = 400;
    const trainX = new Float32Array(nTrain);
    const trainY = new Int32Array(nTrain);
    for (let i = 0; i < nTrain; i++) {
      trainY[i] = i % 2;
      trainX[i] = (i % 2 === 0 ? -1 : 1) + 0.2 * gauss(r);
    }
    const testX = Float32Array.from({ length: 200 }, () => 3 + 0.3 * gauss(r));
    const testY = new Int32Array(200).fill(1);
    const res = await linearProbe({ features: trainX, labels: trainY }, { features: testX, labels: testY }, 1, 2, { epochs: 10 });
    assert.equal(res.trainAccuracy, 1);
    assert.equal(res.testAccuracy, 1);
  });

  test("standardize: hand values, train statistics applied to both splits, std floor for constant features", () => {
    // d = 2; train rows [1, 5], [3, 5], [5, 5]: mean [3, 5], population std [sqrt(8/3), 0 -> 1e-6].
    const train = Float32Array.from([1, 5, 3, 5, 5, 5]);
    const test = Float32Array.from([7, 5, 3, 6]);
    const s = standardize(train, test, 2);
    const sd = Math.sqrt(8 / 3);
    assert.deepEqual(Array.from(s.mean), [3, 5]);
    assert.deepEqual(Array.from(s.std), [sd, 1e-6]);
    const expectTrain = [-2 / sd, 0, 0, 0, 2 / sd, 0];
    const expectTest = [4 / sd, 0, 0, 1e6];
    const close = (got: Float32Array, want: number[]) =>
      want.forEach((w, i) => {
        assert.ok(Math.abs(got[i] - w) <= 1e-6 * Math.max(1, Math.abs(w)), `[${i}] ${got[i]} vs ${w}`);
      });
    close(s.train, expectTrain);
    close(s.test, expectTest);
    assert.deepEqual(Array.from(train), [1, 5, 3, 5, 5, 5], "inputs are not modified");
    assert.throws(() => standardize(train, Float32Array.from([1, 2, 3]), 2), /multiples of d = 2/);
  });

  test("standardize: true equals feeding standardize()'s output with standardize: false", async () => {
    const d = 6;
    const c = 3;
    const centers = randomCenters(c, d, 1, 40);
    const train = blobs(300, d, c, centers, 2, 41);
    const testSplit = blobs(200, d, c, centers, 2, 42);
    const pre = standardize(train.features, testSplit.features, d);
    const opts = { epochs: 3, batchSize: 50, seed: 1 };
    const a = await linearProbe(train, testSplit, d, c, opts);
    const b = await linearProbe(
      { features: pre.train, labels: train.labels },
      { features: pre.test, labels: testSplit.labels },
      d,
      c,
      { ...opts, standardize: false },
    );
    assert.deepEqual(a, b);
  });

  test("bad input is rejected with a clear error", async () => {
    const ok: ProbeSplit = { features: new Float32Array(8), labels: Int32Array.from([0, 1, 2, 0]) };
    await assert.rejects(
      linearProbe({ features: new Float32Array(7), labels: ok.labels }, ok, 2, 3),
      /train\.features has 7 values but train\.labels has 4 rows x 2 features = 8/,
    );
    await assert.rejects(
      linearProbe(ok, { features: new Float32Array(8), labels: Int32Array.from([0, 1, 3, 0]) }, 2, 3),
      /test\.labels\[2\] = 3 is outside \[0, 3\)/,
    );
    await assert.rejects(
      linearProbe({ features: new Float32Array(8), labels: Int32Array.from([0, -1, -1, 2]) }, ok, 2, 3),
      /train has 2 unlabelled rows \(label -1\)/,
    );
    await assert.rejects(
      linearProbe({ features: new Float32Array(8), labels: Int32Array.from([0, -2, 1, 2]) }, ok, 2, 3),
      /train\.labels\[1\] = -2 is outside/,
    );
    await assert.rejects(linearProbe({ features: new Float32Array(0), labels: new Int32Array(0) }, ok, 2, 3), /train split is empty/);
    await assert.rejects(
      linearProbe({ features: Float32Array.from([0, 0, NaN, 0, 0, 0, 0, 0]), labels: ok.labels }, ok, 2, 3),
      /train\.features\[2\] \(row 1\) is not finite/,
    );
    await assert.rejects(linearProbe(ok, ok, 2, 1), /numClasses must be an integer >= 2/);
    await assert.rejects(linearProbe(ok, ok, 0, 3), /numFeatures must be a positive integer/);
    await assert.rejects(linearProbe(ok, ok, 2, 3, { epochs: 0 }), /epochs must be a positive integer/);
    await assert.rejects(linearProbe(ok, ok, 2, 3, { batchSize: 1.5 }), /batchSize must be a positive integer/);
    await assert.rejects(linearProbe(ok, ok, 2, 3, { lr: -1 }), /lr must be > 0/);
  });
});
