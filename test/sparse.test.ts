/**
 * Sparse connectivity and sparse attention (issue 6 groundwork).
 *
 * Connectivity is checked against brute force (all pairs, sorted by (distance, index)) on small
 * layouts with many exact ties; sparse attention against dense attention and central finite
 * differences in float64, and its jitted gradient against the eager one.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { grad, jit, numpy as np, random, tree, } from "../src/engine/jax.ts";
import {
  connectionDistances,
  connectivityFromFile,
  localConnectivity,
  parseConnectivity,
  smallWorldConnectivity,
  validateConnectivity,
} from "../src/geometry/connectivity.ts";
import { buildGeometry, fibonacciSphere, gridLayout, stackedLayout, torusDistance } from "../src/geometry/index.ts";
import { euclideanMetric, geometryMetric } from "../src/geometry/metric.ts";
import { Rng } from "../src/engine/rng.ts";
import { denseAttention, sparseAttention } from "../src/model/sparse-attention.ts";

type A = np.Array;

before(async () => {
  await initEngine();
});

// ---------------------------------------------------------------------------
// Brute-force references
// ---------------------------------------------------------------------------

function sqDist(p: ArrayLike<number>, dims: number, i: number, j: number): number {
  let s = 0;
  for (let a = 0; a < dims; a++) {
    const d = p[i * dims + a] - p[j * dims + a];
    s += d * d;
  }
  return s;
}

/** Row i = [i, then the k-1 other columns by ascending (distance, index)]. */
function bruteLocal(p: ArrayLike<number>, dims: number, k: number): Int32Array {
  const n = p.length / dims;
  const out = new Int32Array(n * k);
  for (let i = 0; i < n; i++) {
    const others = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i);
    others.sort((a, b) => sqDist(p, dims, i, a) - sqDist(p, dims, i, b) || a - b);
    out.set([i, ...others.slice(0, k - 1)], i * k);
  }
  return out;
}

function randomPositions(n: number, dims: number, seed: number, scale = 10): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n * dims }, () => rng.uniform(-scale, scale));
}

// ---------------------------------------------------------------------------
// Connectivity
// ---------------------------------------------------------------------------

describe("localConnectivity", () => {
  const cases: [string, Float32Array | Float64Array, number, number][] = [
    ["random 2-D", randomPositions(300, 2, 1), 2, 7],
    ["13 x 9 grid (exact ties)", gridLayout(9, 13).positions, 2, 16],
    ["random 3-D", randomPositions(200, 3, 2), 3, 10],
    ["1-D line", randomPositions(50, 1, 3), 1, 5],
    ["sphere (2-D manifold in 3-D)", fibonacciSphere(150), 3, 9],
    ["stacked areas (flat z per area)", stackedLayout([6, 4, 5], 2).positions, 3, 12],
    ["float32 positions", Float32Array.from(randomPositions(120, 2, 4)), 2, 6],
    ["clustered, with duplicate positions", Float64Array.from({ length: 2 * 90 }, (_, t) => Math.floor(t / 6) % 5), 2, 8],
    ["k = 1", randomPositions(40, 2, 5), 2, 1],
    ["k = N", randomPositions(25, 2, 6), 2, 25],
  ];
  for (const [name, positions, dims, k] of cases) {
    test(`matches brute force: ${name}`, () => {
      assert.deepEqual(localConnectivity(euclideanMetric(positions, dims), k), bruteLocal(positions, dims, k));
    });
  }

  test("128 x 128 grid: sampled rows match brute force (ring search at scale)", () => {
    const side = 128;
    const positions = gridLayout(side, side).positions;
    const k = 16;
    const got = localConnectivity(euclideanMetric(positions, 2), k);
    const n = side * side;
    for (const i of [0, 1, side - 1, side, 5 * side + 7, n / 2 + 3, n - side, n - 1]) {
      const others = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i);
      others.sort((a, b) => sqDist(positions, 2, i, a) - sqDist(positions, 2, i, b) || a - b);
      assert.deepEqual(Array.from(got.subarray(i * k, (i + 1) * k)), [i, ...others.slice(0, k - 1)], `row ${i}`);
    }
  });

  test("rejects bad arguments with a clear message", () => {
    const p = randomPositions(10, 2, 7);
    assert.throws(() => localConnectivity(euclideanMetric(p, 2), 11), /k must be an integer in 1\.\.10/);
    assert.throws(() => localConnectivity(euclideanMetric(p, 3), 2), /not a multiple of dims/);
    assert.throws(() => localConnectivity(euclideanMetric(Float64Array.from([0, NaN]), 2), 1), /must be finite/);
  });
});

describe("smallWorldConnectivity", () => {
  const positions = gridLayout(10, 12).positions;
  const n = 120;

  test("local prefix, distinct far sources, deterministic per seed", () => {
    for (const decay of [0, 2]) {
      const a = smallWorldConnectivity(euclideanMetric(positions, 2), 6, 4, { seed: 3, decay });
      const b = smallWorldConnectivity(euclideanMetric(positions, 2), 6, 4, { seed: 3, decay });
      const c = smallWorldConnectivity(euclideanMetric(positions, 2), 6, 4, { seed: 4, decay });
      assert.deepEqual(a, b);
      assert.notDeepEqual(a, c);
      validateConnectivity(a, n, 10);
      const local = localConnectivity(euclideanMetric(positions, 2), 6);
      for (let i = 0; i < n; i++) {
        const row = Array.from(a.subarray(i * 10, i * 10 + 10));
        assert.deepEqual(row.slice(0, 6), Array.from(local.subarray(i * 6, i * 6 + 6)));
        for (const j of row.slice(6)) assert.ok(!row.slice(0, 6).includes(j), `row ${i}: long-range ${j} is local`);
      }
    }
  });

  /** Total variation between the empirical long-range draws of row i and probabilities ∝ weight(d). */
  function drawTV(i: number, kLocal: number, decay: number, draws: number): number {
    const p = gridLayout(6, 6).positions;
    const m = 36;
    const local = new Set(localConnectivity(euclideanMetric(p, 2), kLocal).subarray(i * kLocal, (i + 1) * kLocal));
    const counts = new Float64Array(m);
    for (let seed = 0; seed < draws; seed++) {
      counts[smallWorldConnectivity(euclideanMetric(p, 2), kLocal, 1, { seed, decay })[i * (kLocal + 1) + kLocal]]++;
    }
    const w = Float64Array.from({ length: m }, (_, j) => (local.has(j) ? 0 : Math.sqrt(sqDist(p, 2, i, j)) ** -decay));
    const total = w.reduce((s, v) => s + v, 0);
    let tv = 0;
    for (let j = 0; j < m; j++) tv += Math.abs(counts[j] / draws - w[j] / total) / 2;
    return tv;
  }

  test("long-range draws follow d^-decay (decay 2, centre and corner) and are uniform for decay 0", () => {
    // 3000 draws over ~30 outcomes: sampling noise gives TV ~ 0.03; a wrong law gives > 0.1.
    assert.ok(drawTV(14, 5, 2, 3000) < 0.06, "centre, decay 2");
    assert.ok(drawTV(0, 5, 2, 3000) < 0.06, "corner, decay 2");
    assert.ok(drawTV(20, 4, 0, 3000) < 0.06, "decay 0");
    // Positive control: the decay-2 draws are far from uniform.
    const p = gridLayout(6, 6).positions;
    const counts = new Float64Array(36);
    for (let seed = 0; seed < 3000; seed++) counts[smallWorldConnectivity(euclideanMetric(p, 2), 5, 1, { seed, decay: 2 })[14 * 6 + 5]]++;
    const local = new Set(localConnectivity(euclideanMetric(p, 2), 5).subarray(14 * 5, 15 * 5));
    let tvUniform = 0;
    for (let j = 0; j < 36; j++) tvUniform += Math.abs(counts[j] / 3000 - (local.has(j) ? 0 : 1 / 31)) / 2;
    assert.ok(tvUniform > 0.1, `decay 2 should not look uniform (TV ${tvUniform})`);
  });

  test("rejects impossible requests", () => {
    assert.throws(() => smallWorldConnectivity(euclideanMetric(positions, 2), 100, 30, { seed: 0 }), /exceeds the 120 columns/);
    assert.throws(() => smallWorldConnectivity(euclideanMetric(positions, 2), 4, 2, { seed: 0, decay: -1 }), /decay must be/);
  });
});

describe("connectivity files and distances", () => {
  const dir = mkdtempSync(join(tmpdir(), "cf-sparse-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  test("reads JSON and CSV", () => {
    const json = connectivityFromFile(write("c.json", JSON.stringify({ indices: [[0, 1], [1, 2], [2, 0]] })), 3);
    assert.deepEqual(json, { indices: Int32Array.from([0, 1, 1, 2, 2, 0]), n: 3, k: 2 });
    const csv = connectivityFromFile(write("c.csv", "# comment\n0, 2\n1,0\n\n2,1\n"), 3);
    assert.deepEqual(csv, { indices: Int32Array.from([0, 2, 1, 0, 2, 1]), n: 3, k: 2 });
  });

  test("clear errors", () => {
    const bad: [string, string, RegExp][] = [
      ["range.json", JSON.stringify({ indices: [[0, 3], [1, 2], [2, 0]] }), /row 0 entry 1 = 3 is out of range 0\.\.2/],
      ["dup.csv", "0,0\n1,2\n2,0\n", /row 0 lists source column 0 twice/],
      ["ragged.json", JSON.stringify({ indices: [[0, 1], [1], [2, 0]] }), /row 1 has 1 sources but row 0 has 2/],
      ["rows.csv", "0,1\n1,2\n", /has 2 rows but the sheet has 3 columns/],
      ["syntax.json", "{indices:", /not valid JSON/],
      ["shape.json", JSON.stringify([[0]]), /expected a JSON object \{"indices"/],
      ["float.csv", "0,1.5\n1,2\n2,0\n", /line 1 entry 1 must be an integer column index, got "1.5"/],
    ];
    for (const [name, text, message] of bad) assert.throws(() => connectivityFromFile(write(name, text), 3), message, name);
    assert.throws(() => connectivityFromFile(join(dir, "missing.json"), 3), /cannot read it \(ENOENT\)/);
    assert.throws(() => parseConnectivity("", 3, "csv"), /no rows/);
  });

  test("connection distances: Euclidean and the torus's wrap-around metric", () => {
    const positions = gridLayout(4, 5).positions;
    const idx = localConnectivity(euclideanMetric(positions, 2), 4);
    const d = connectionDistances(euclideanMetric(positions, 2), idx, 4);
    for (let t = 0; t < idx.length; t++) assert.equal(d[t], Math.fround(Math.sqrt(sqDist(positions, 2, Math.floor(t / 4), idx[t]))));
    const torus = connectionDistances(geometryMetric(buildGeometry({ kind: "torus", height: 4, width: 5 })), idx, 4);
    for (let t = 0; t < idx.length; t++) {
      const i = Math.floor(t / 4);
      const j = idx[t];
      assert.equal(torus[t], Math.fround(torusDistance(4, 5, Math.floor(i / 5), i % 5, Math.floor(j / 5), j % 5)), `entry ${t}`);
    }
    assert.throws(() => connectionDistances(euclideanMetric(positions, 2), idx, 3), /expected N \* K = 20 \* 3/);
  });
});

// ---------------------------------------------------------------------------
// Sparse attention
// ---------------------------------------------------------------------------

async function values(x: A): Promise<number[]> {
  return Array.from((await x.data()) as Float32Array | Float64Array);
}

function assertAllClose(actual: number[], expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

const idxArray = (host: Int32Array, n: number, k: number): A => np.array(host, { dtype: np.int32 }).reshape([n, k]);

describe("sparseAttention", () => {
  test("K = N with idx[i] = 0..N-1 equals dense attention (float32, 1e-5); permuted rows permute attn", async () => {
    const [b, n, qk, d] = [2, 7, 4, 5];
    const q = random.normal(random.key(0), [b, n, qk]);
    const k = random.normal(random.key(1), [b, n, qk]);
    const h = random.normal(random.key(2), [b, n, d]);
    const biasDense = random.normal(random.key(3), [n, n]);
    const identity = Int32Array.from({ length: n * n }, (_, t) => t % n);
    const sparse = sparseAttention(q.ref, k.ref, h.ref, biasDense.ref, idxArray(identity, n, n), 0.5);
    const dense = denseAttention(q.ref, k.ref, h.ref, biasDense.ref, 0.5);
    const denseOut = await values(dense.out);
    const denseAttn = await values(dense.attn);
    assertAllClose(await values(sparse.out), denseOut, 1e-5, "out");
    assertAllClose(await values(sparse.attn), denseAttn, 1e-5, "attn");

    // Each row lists all sources in a different (rotated) order; the bias is gathered to match.
    const rotated = Int32Array.from({ length: n * n }, (_, t) => (Math.floor(t / n) + t) % n);
    const biasHost = await values(biasDense.ref);
    const biasRot = np.array(Float32Array.from(rotated, (j, t) => biasHost[Math.floor(t / n) * n + j])).reshape([n, n]);
    const rot = sparseAttention(q, k, h, biasRot, idxArray(rotated, n, n), 0.5);
    assertAllClose(await values(rot.out), denseOut, 1e-5, "rotated out");
    const attnRot = await values(rot.attn);
    for (let bi = 0; bi < b; bi++)
      for (let t = 0; t < n * n; t++) {
        const i = Math.floor(t / n);
        assert.ok(Math.abs(attnRot[bi * n * n + t] - denseAttn[bi * n * n + i * n + rotated[t]]) < 1e-6);
      }
    biasDense.dispose();
  });

  // float64 inputs: B 2, N 6 columns, K 3 sources (column 0 is a popular source), qk 3, D 4.
  const [B, N, K, QK, D] = [2, 6, 3, 3, 4];
  const idxHost = Int32Array.from([0, 1, 2, 1, 0, 3, 2, 4, 0, 3, 5, 0, 4, 0, 1, 5, 2, 0]);
  const f64 = (key: number, shape: number[]): A => random.normal(random.key(key), shape).astype(np.float64);
  const inputs = (): [A, A, A, A] => [f64(10, [B, N, QK]), f64(11, [B, N, QK]), f64(12, [B, N, D]), f64(13, [N, K])];
  const weights = (): A => f64(14, [B, N, D]);
  const lossOf = (q: A, k: A, h: A, bias: A, idx: A, w: A): A => {
    const { out, attn } = sparseAttention(q, k, h, bias, idx, 0.6);
    attn.dispose();
    return out.mul(w).sum();
  };

  /** Independent float64 reference of lossOf in plain JS (Math.exp), for finite differences. */
  function hostLoss(q: number[], k: number[], h: number[], bias: number[], w: number[]): number {
    let total = 0;
    for (let b = 0; b < B; b++)
      for (let i = 0; i < N; i++) {
        const s = Array.from({ length: K }, (_, j) => {
          const src = idxHost[i * K + j];
          let dot = 0;
          for (let c = 0; c < QK; c++) dot += q[(b * N + i) * QK + c] * k[(b * N + src) * QK + c];
          return 0.6 * dot + bias[i * K + j];
        });
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const z = e.reduce((x, y) => x + y, 0);
        for (let j = 0; j < K; j++) {
          const src = idxHost[i * K + j];
          for (let d = 0; d < D; d++) total += w[(b * N + i) * D + d] * (e[j] / z) * h[(b * N + src) * D + d];
        }
      }
    return total;
  }

  // jax-js 0.1.25's float64 exp is only float32-accurate (errors ~5e-8, measured) and not smooth,
  // so finite differences of the jax-js loss itself are noisy at eps 1e-6. The differences are
  // taken on an independent float64 JS reference instead (whose value the jax-js loss matches).
  test("gradients w.r.t. q, k, h and bias match central finite differences (float64)", async () => {
    const [q, k, h, bias] = inputs();
    const idx = idxArray(idxHost, N, K);
    const w = weights();
    const grads = grad((qq: A, kk: A, hh: A, bb: A) => lossOf(qq, kk, hh, bb, idx.ref, w.ref), { argnums: [0, 1, 2, 3] })(q.ref, k.ref, h.ref, bias.ref);
    const value = (await values(lossOf(q.ref, k.ref, h.ref, bias.ref, idx.ref, w.ref)))[0];
    const hosts = await Promise.all([q, k, h, bias].map((x) => values(x)));
    const wHost = await values(w);
    assertAllClose([value], [hostLoss(hosts[0], hosts[1], hosts[2], hosts[3], wHost)], 1e-7, "loss value");
    const eps = 1e-6;
    for (let a = 0; a < 4; a++) {
      const analytic = await values(grads[a]);
      const numeric = hosts[a].map((_, t) => {
        const f = (delta: number): number => {
          const args = hosts.map((v, i) => (i === a ? v.map((x, u) => (u === t ? x + delta : x)) : v));
          return hostLoss(args[0], args[1], args[2], args[3], wHost);
        };
        return (f(eps) - f(-eps)) / (2 * eps);
      });
      assertAllClose(analytic, numeric, 1e-6, ["dq", "dk", "dh", "dbias"][a]);
    }
    idx.dispose();
  });

  test("jitted gradient runs, equals the eager gradient (float64)", async () => {
    const [q, k, h, bias] = inputs();
    const idx = idxArray(idxHost, N, K);
    const w = weights();
    const loss = (qq: A, kk: A, hh: A, bb: A, ix: A, ww: A): A => lossOf(qq, kk, hh, bb, ix, ww);
    const eager = grad(loss, { argnums: [0, 1, 2, 3] })(q.ref, k.ref, h.ref, bias.ref, idx.ref, w.ref);
    const jitted = jit(grad(loss, { argnums: [0, 1, 2, 3] }));
    const viaJit = jitted(q.ref, k.ref, h.ref, bias.ref, idx.ref, w.ref);
    for (let a = 0; a < 4; a++) {
      const e = await values(eager[a]);
      // Tolerance: float64 exp is float32-accurate in jax-js (see above), and jit fuses differently.
      assertAllClose(await values(viaJit[a]), e, 1e-6, `jit ${a}`);
    }
    jitted.dispose();
    tree.dispose([q, k, h, bias, idx, w]);
  });
});
