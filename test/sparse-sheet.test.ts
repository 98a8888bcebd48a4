/**
 * Sparse sheets (sheet.connectivity): config resolution and errors; a sparse sheet whose K
 * covers all columns equals the dense sheet (outputs and attention after reordering), also
 * for a multi-head stack with value projections; gradients against central finite
 * differences; the wiring cost over K connections equals the dense one when K = N;
 * checkpoints keep the indices (and theirs win); FLOPs; end-to-end training, analysis-style
 * collection and `columnformer forward`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import * as nodePath from "node:path";
import { promisify } from "node:util";
import { before, describe, test } from "node:test";
import { collectActivity } from "../src/analysis/collect.ts";
import { loadSheetCheckpoint, saveSheetCheckpoint, sheetParameterCount, sheetTensorShapes } from "../src/checkpoint/checkpoint.ts";
import { readSafetensors, writeSafetensors } from "../src/io/safetensors.ts";
import { loadVisionCheckpoint } from "../src/checkpoint/vision-checkpoint.ts";
import { openDataset } from "../src/data/index.ts";
import { initEngine } from "../src/engine/engine.ts";
import { jit, numpy as np, tree, valueAndGrad } from "../src/engine/jax.ts";
import { localConnectivity, smallWorldConnectivity } from "../src/geometry/connectivity.ts";
import { buildGeometry, fibonacciSphere, geodesicDistance, type GeometrySpec, torusDistance } from "../src/geometry/index.ts";
import { distanceMatrix, geometryMetric } from "../src/geometry/metric.ts";
import { resolveSheetConfig, type SheetConfig } from "../src/model/config.ts";
import { sheetStepFlops } from "../src/model/cost.ts";
import type { SheetParams } from "../src/model/params.ts";
import { initSheet, sheetApply } from "../src/model/sheet.ts";
import { connectivityArray, resolveConnectivity, scatterAttention, type SheetConnectivity } from "../src/model/sheet-connectivity.ts";
import { sparseWiringWeights, wiringCostFromDistances } from "../src/objectives/wiring-cost.ts";
import { meanAttentionMaps } from "../src/analysis/collect.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { extractFeatures } from "../src/train/evaluate.ts";
import { disposeSession } from "../src/train/session.ts";
import { loadTrainedModel } from "../src/train/trained-model.ts";
import { resume, train } from "../src/train/trainer.ts";
import { assertClose, read } from "./assertions.ts";
import { easyImage, tmpDir, writeIdxFolder } from "./data-fixtures.ts";
import { seededValues } from "./naive-sheet.ts";

before(async () => {
  await initEngine();
});

const B = 2;
const GRID = { kind: "grid", height: 2, width: 3 } as const;

function sheetConfig(overrides: Record<string, unknown>): SheetConfig {
  return resolveSheetConfig({ geometry: GRID, dim: 8, qk_dim: 3, mlp_dim: 5, depth: 3, ...overrides }).config;
}

type Host = Record<string, { shape: number[]; values: number[] }>;

/** Random host values for every tensor of `config` (names without "sheet."). */
function hostParams(config: SheetConfig, seed: number): Host {
  const out: Host = {};
  Object.entries(sheetTensorShapes(config)).forEach(([name, shape], i) => {
    const size = shape.reduce((a, b) => a * b, 1);
    out[name.slice("sheet.".length)] = { shape, values: seededValues(seed * 100 + i, size).map((v) => v * 0.8) };
  });
  return out;
}

function toTree(host: Host, dtype: "float32" | "float64"): SheetParams {
  const root: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(host)) {
    const parts = name.split(".");
    let node = root;
    for (const p of parts.slice(0, -1)) {
      node[p] ??= {};
      node = node[p] as Record<string, unknown>;
    }
    const data = dtype === "float64" ? new Float64Array(t.values) : new Float32Array(t.values);
    node[parts[parts.length - 1]] = np.array(data).reshape(t.shape);
  }
  return root as unknown as SheetParams;
}

/** The dense host parameters with the attention bias gathered onto the connections ([..., N, N] -> [..., N, K]). */
function gatherBias(dense: Host, c: SheetConnectivity): Host {
  const out = structuredClone(dense);
  const bias = dense["attn.attn_bias"];
  if (!bias) return out;
  const { n, k, indices } = c;
  const blocks = bias.values.length / (n * n);
  const values: number[] = [];
  for (let b = 0; b < blocks; b++) for (let p = 0; p < n * k; p++) values.push(bias.values[b * n * n + Math.floor(p / k) * n + indices[p]]);
  out["attn.attn_bias"] = { shape: [...bias.shape.slice(0, -1), k], values };
  return out;
}

describe("sparse sheet config", () => {
  test("resolves K, defaults to dense, refuses impossible requests with one line naming the field", async () => {
    assert.deepEqual(sheetConfig({}).connectivity, { kind: "dense" });
    assert.deepEqual(sheetConfig({ connectivity: { kind: "local", k: 4 } }).connectivity, { kind: "local", k: 4 });
    assert.throws(() => sheetConfig({ connectivity: { kind: "local", k: 7 } }), /^Error: invalid config: connectivity\.k is 7 but the sheet has 6 columns/);
    assert.throws(() => sheetConfig({ connectivity: { kind: "small_world", k_local: 4, k_long: 3 } }), /connectivity\.k_local \+ connectivity\.k_long is 7/);
    assert.throws(() => sheetConfig({ connectivity: { kind: "local", k: 2 }, learn_positions: true }), /learned positions need a dense sheet/);
    assert.throws(() => sheetConfig({ connectivity: { kind: "local" } }), /config\.connectivity\.k: /);
    assert.throws(() => sheetConfig({ connectivity: { kind: "ring" } }), /config\.connectivity/);
    const dir = await tmpDir("cf-sparse-cfg-");
    const file = nodePath.join(dir, "c.csv");
    writeFileSync(file, "0,1\n1,2\n2,3\n3,4\n4,5\n5,0\n");
    const c = sheetConfig({ connectivity: { kind: "file", path: file } });
    assert.deepEqual(c.connectivity, { kind: "file", path: file, k: 2 });
    const conn = resolveConnectivity(c, buildGeometry(GRID))!;
    assert.deepEqual(Array.from(conn.indices), [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0]);
    assert.throws(() => sheetConfig({ connectivity: { kind: "file", path: nodePath.join(dir, "missing.csv") } }), /connectivity\.path: .*cannot read it/);
  });

  test("neighbours follow the geometry's own metric (torus wrap-around, sphere, self offset) and small-world rows are distinct", () => {
    const torus = buildGeometry({ kind: "torus", height: 4, width: 4 });
    const idx = localConnectivity(geometryMetric(torus), 5);
    // column 0 (row 0, col 0): itself, then its four wrap-around neighbours 1, 3, 4, 12
    assert.deepEqual(Array.from(idx.subarray(0, 5)), [0, 1, 3, 4, 12]);
    // every row agrees with brute force over the geometry's own distance, computed independently
    for (const [name, spec, d, k] of METRIC_CASES) {
      const g = buildGeometry(spec);
      assert.deepEqual(localConnectivity(geometryMetric(g), k), bruteNearest(d, g.numColumns, k), name);
    }
    for (const decay of [0, 2]) {
      const sw = smallWorldConnectivity(geometryMetric(torus), 3, 4, { seed: 5, decay });
      assert.deepEqual(sw, smallWorldConnectivity(geometryMetric(torus), 3, 4, { seed: 5, decay }));
      const local = localConnectivity(geometryMetric(torus), 3);
      for (let i = 0; i < 16; i++) {
        const row = Array.from(sw.subarray(i * 7, i * 7 + 7));
        assert.deepEqual(row.slice(0, 3), Array.from(local.subarray(i * 3, i * 3 + 3)));
        assert.equal(new Set(row).size, 7, `row ${i} has repeated sources`);
      }
    }
  });
});

/** Distances computed independently of src/geometry/metric.ts, per geometry. */
const torusD = (h: number, w: number) => (i: number, j: number) => torusDistance(h, w, Math.floor(i / w), i % w, Math.floor(j / w), j % w);
const gridD = (w: number, s: number) => (i: number, j: number) => Math.sqrt((Math.floor(i / w) - Math.floor(j / w)) ** 2 + ((i % w) - (j % w)) ** 2 + s * s);
const sphereD = (n: number) => {
  const p = fibonacciSphere(n);
  return (i: number, j: number) => (i === j ? 0 : geodesicDistance(p.subarray(3 * i, 3 * i + 3), p.subarray(3 * j, 3 * j + 3), 1));
};
const METRIC_CASES: [string, GeometrySpec, (i: number, j: number) => number, number][] = [
  ["torus 5 x 7 (odd)", { kind: "torus", height: 5, width: 7 }, torusD(5, 7), 9],
  ["torus 6 x 4 (even: ties across the wrap)", { kind: "torus", height: 6, width: 4 }, torusD(6, 4), 13],
  ["torus 1 x 9", { kind: "torus", height: 1, width: 9 }, torusD(1, 9), 5],
  ["torus 2 x 3, k = N", { kind: "torus", height: 2, width: 3 }, torusD(2, 3), 6],
  ["grid 5 x 6, self offset 1.5", { kind: "grid", height: 5, width: 6, self_offset: 1.5 }, gridD(6, 1.5), 7],
  ["sphere 60", { kind: "sphere", num_columns: 60 }, sphereD(60), 8],
];

/** Row i = [i, then the k - 1 other columns by ascending (float32 distance, index)]. */
function bruteNearest(d: (i: number, j: number) => number, n: number, k: number): Int32Array {
  const out = new Int32Array(n * k);
  for (let i = 0; i < n; i++) {
    const others = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i);
    others.sort((a, b) => Math.fround(d(i, a)) - Math.fround(d(i, b)) || a - b);
    out.set([i, ...others.slice(0, k - 1)], i * k);
  }
  return out;
}

test("small-world long-range draws follow max(d, floor)^-decay in the geometry's metric", () => {
  const cases: [string, GeometrySpec, (i: number, j: number) => number, number][] = [
    ["grid 6 x 6", { kind: "grid", height: 6, width: 6 }, gridD(6, 0), 14],
    ["torus 6 x 6 (images across the wrap)", { kind: "torus", height: 6, width: 6 }, torusD(6, 6), 0],
    ["grid 6 x 6, self offset 2", { kind: "grid", height: 6, width: 6, self_offset: 2 }, gridD(6, 2), 0],
    ["sphere 36", { kind: "sphere", num_columns: 36 }, sphereD(36), 7],
  ];
  const [kLocal, draws] = [5, 3000];
  for (const [name, spec, d, i] of cases) {
    const g = buildGeometry(spec);
    const n = g.numColumns;
    const local = Array.from(bruteNearest(d, n, kLocal).subarray(i * kLocal, (i + 1) * kLocal));
    const floor = d(i, local[kLocal - 1]);
    const counts = new Float64Array(n);
    for (let seed = 0; seed < draws; seed++) counts[smallWorldConnectivity(geometryMetric(g), kLocal, 1, { seed, decay: 2 })[i * (kLocal + 1) + kLocal]]++;
    const tv = (law: (d: number) => number): number => {
      const w = Float64Array.from({ length: n }, (_, j) => (local.includes(j) ? 0 : law(Math.max(d(i, j), floor))));
      const total = w.reduce((a, b) => a + b, 0);
      return w.reduce((acc, wj, j) => acc + Math.abs(counts[j] / draws - wj / total) / 2, 0);
    };
    // 3000 draws over 31 outcomes: sampling noise gives TV ~ 0.03; a wrong law gives > 0.1
    assert.ok(tv((x) => x ** -2) < 0.06, `${name}: decay 2 (TV ${tv((x) => x ** -2).toFixed(3)})`);
    if (spec.self_offset === undefined) assert.ok(tv(() => 1) > 0.1, `${name}: positive control, decay-2 draws are not uniform`);
  }
  const g = buildGeometry({ kind: "torus", height: 6, width: 6 });
  const counts = new Float64Array(36);
  for (let seed = 0; seed < draws; seed++) counts[smallWorldConnectivity(geometryMetric(g), kLocal, 1, { seed, decay: 0 })[kLocal]]++;
  const local = new Set(bruteNearest(torusD(6, 6), 36, kLocal).subarray(0, kLocal));
  const tvUniform = counts.reduce((acc, c, j) => acc + Math.abs(c / draws - (local.has(j) ? 0 : 1 / 31)) / 2, 0);
  assert.ok(tvUniform < 0.06, `decay 0 is uniform (TV ${tvUniform.toFixed(3)})`);
});

describe("a sparse sheet with K = N equals the dense sheet", () => {
  const cases: [string, Record<string, unknown>][] = [
    ["the Columnformer (recurrent, untied, 1 head)", {}],
    ["a stack, 2 heads, value/output projections, tied attention", { recurrent: false, heads: 2, value_proj: true, untie_attn: false }],
    ["no attention bias, no skip", { attn_bias: false, skip_attn: false }],
  ];
  for (const [name, overrides] of cases) {
    test(name, async () => {
      const dense = sheetConfig(overrides);
      const sparse = sheetConfig({ ...overrides, connectivity: { kind: "local", k: 6 } });
      const geometry = buildGeometry(GRID);
      const conn = resolveConnectivity(sparse, geometry)!;
      const host = hostParams(dense, 3);
      const n = 6;
      const x0 = seededValues(11, B * n * dense.dim);
      const input = () => np.array(new Float32Array(x0)).reshape([B, n, dense.dim]);
      const a = sheetApply(toTree(host, "float32"), input(), dense);
      const s = sheetApply(toTree(gatherBias(host, conn), "float32"), input(), sparse, connectivityArray(conn));
      assert.deepEqual(s.attn.shape, [B, sparse.depth, n, n]);
      assertClose(await read(s.x), await read(a.x), 1e-5, "x");
      const denseAttn = await read(a.attn);
      const sparseAttn = await read(s.attn);
      // reorder: sparse entry (i, t) is dense entry (i, indices[i, t])
      assertClose(scatterAttention(sparseAttn, conn), denseAttn, 1e-6, "attn");
    });
  }

  test("initialisation: the local bias over K connections is the dense bias gathered (stack)", async () => {
    const dense = sheetConfig({ recurrent: false });
    const sparse = sheetConfig({ recurrent: false, connectivity: { kind: "local", k: 4 } });
    const geometry = buildGeometry(GRID);
    const conn = resolveConnectivity(sparse, geometry)!;
    const pd = initSheet(dense, geometry, 0);
    const ps = initSheet(sparse, geometry, 0, conn);
    assert.deepEqual(ps.attn.attn_bias!.shape, [3, 6, 4]);
    const want = gatherBias({ "attn.attn_bias": { shape: [3, 6, 6], values: await read(pd.attn.attn_bias!.ref) } }, conn);
    assertClose(await read(ps.attn.attn_bias!.ref), want["attn.attn_bias"].values, 0, "bias");
    assertClose(await read(ps.attn.q.weight.ref), await read(pd.attn.q.weight.ref), 0, "q (same seed, same weights)");
    tree.dispose([pd, ps]);
    assert.equal(sheetParameterCount(dense) - sheetParameterCount(sparse), 3 * 6 * (6 - 4));
  });
});

describe("sparse sheet gradients against central finite differences (float64)", () => {
  const cases: [string, Record<string, unknown>][] = [
    ["local K = 3, the Columnformer", { connectivity: { kind: "local", k: 3 } }],
    ["small-world 2 + 2, a stack with 2 heads and value projections", { connectivity: { kind: "small_world", k_local: 2, k_long: 2, seed: 1 }, recurrent: false, heads: 2, value_proj: true }],
  ];
  for (const [name, overrides] of cases) {
    test(name, async () => {
      const config = sheetConfig({ ...overrides, depth: 2 });
      const conn = resolveConnectivity(config, buildGeometry(GRID))!;
      const host = hostParams(config, 9);
      const n = 6;
      const k = conn.k;
      const x0 = seededValues(4, B * n * config.dim);
      const target = seededValues(6, B * n * config.dim);
      const w = seededValues(8, n * k);
      const input = () => np.array(new Float64Array(x0)).reshape([B, n, config.dim]);
      const lossFn = (params: SheetParams, x: np.Array): np.Array => {
        const { x: y, attn } = sheetApply(params, x, config, connectivityArray(conn));
        const t = np.array(new Float64Array(target)).reshape([B, n, config.dim]);
        return np.square(y.sub(t)).mean().add(attn.mul(np.array(new Float64Array(w)).reshape([n, k])).mean());
      };
      const [, grads] = valueAndGrad(lossFn)(toTree(host, "float64"), input()) as unknown as [np.Array, SheetParams];
      // the jitted gradient (as in training) runs and agrees (gathers must feed multiplies under jit)
      const jitted = jit(valueAndGrad(lossFn));
      const [, jitGrads] = jitted(toTree(host, "float64"), input()) as unknown as [np.Array, SheetParams];
      const [eagerLeaves] = tree.flatten(tree.ref(grads) as unknown as tree.JsTree<np.Array>);
      const [jitLeaves] = tree.flatten(jitGrads as unknown as tree.JsTree<np.Array>);
      for (let t = 0; t < eagerLeaves.length; t++) assertClose(await read(jitLeaves[t]), await read(eagerLeaves[t]), 1e-6, `jit leaf ${t}`);
      jitted.dispose();
      const evalLoss = async (leaf: string, index: number, delta: number): Promise<number> => {
        const h = structuredClone(host);
        h[leaf].values[index] += delta;
        return (await lossFn(toTree(h, "float64"), input()).data())[0];
      };
      // jax-js's float64 exp is float32-accurate (~5e-8) and not smooth: eps 1e-3 keeps that noise small
      const eps = 1e-3;
      for (const leaf of Object.keys(host)) {
        const g = await read(leaf.split(".").reduce((o: Record<string, unknown>, key) => o[key] as Record<string, unknown>, grads as unknown as Record<string, unknown>) as unknown as np.Array);
        for (const index of [0, Math.floor(g.length / 2), g.length - 1]) {
          const fd = ((await evalLoss(leaf, index, eps)) - (await evalLoss(leaf, index, -eps))) / (2 * eps);
          assert.ok(Math.abs(fd - g[index]) <= 2e-4 + 2e-3 * Math.abs(fd), `${leaf}[${index}]: autodiff ${g[index]} vs finite difference ${fd}`);
        }
      }
    });
  }
});

describe("wiring cost over K connections", () => {
  test("equals the dense cost when K = N (l1, p 1 and 2; cross-entropy), for the same maps", async () => {
    const geometry = buildGeometry({ kind: "torus", height: 3, width: 3 });
    const n = 9;
    const config = resolveSheetConfig({ geometry: geometry.spec, connectivity: { kind: "local", k: n } }).config;
    const conn = resolveConnectivity(config, geometry)!;
    const raw = seededValues(21, 2 * n * n).map((v) => Math.exp(2 * v));
    const dense = new Float32Array(raw.length);
    for (let r = 0; r < 2 * n; r++) {
      const z = raw.slice(r * n, (r + 1) * n).reduce((s, v) => s + v, 0);
      for (let j = 0; j < n; j++) dense[r * n + j] = raw[r * n + j] / z;
    }
    // the same maps in sparse layout: entry (i, t) = dense (i, indices[i, t])
    const sparse = new Float32Array(2 * n * n);
    for (let m = 0; m < 2; m++) for (let p = 0; p < n * n; p++) sparse[m * n * n + p] = dense[m * n * n + Math.floor(p / n) * n + conn.indices[p]];
    for (const spec of [{ form: "l1" as const, lambda: 1 }, { form: "l1" as const, lambda: 1, p: 2 }, { form: "cross_entropy" as const, lambda: 1, sigma: 1.5 }]) {
      const want = (await read(wiringCostFromDistances(np.array(dense).reshape([2, n, n]), np.array(distanceMatrix(geometry)).reshape([n, n]), spec)))[0];
      const weights = sparseWiringWeights(geometryMetric(geometry), conn.distances, n, conn.k, spec);
      let got = 0;
      for (let m = 0; m < 2; m++) for (let p = 0; p < n * n; p++) got += sparse[m * n * n + p] * weights[p];
      assertClose([got / (2 * n)], [want], 1e-5, spec.form);
    }
  });
});

describe("sparse checkpoints and FLOPs", () => {
  test("round trip keeps the indices; a checkpoint's indices win over recomputation; bad indices are refused", async () => {
    const dir = await tmpDir("cf-sparse-ckpt-");
    const config = sheetConfig({ connectivity: { kind: "small_world", k_local: 2, k_long: 2, seed: 3, decay: 1 } });
    const geometry = buildGeometry(GRID);
    const built = resolveConnectivity(config, geometry)!;
    // a different valid pattern: every row's sources rotated by one column
    const custom = Int32Array.from(built.indices, (j) => (j + 1) % 6);
    const conn = resolveConnectivity(config, geometry, custom)!;
    const params = initSheet(config, geometry, 1, conn);
    const file = nodePath.join(dir, "s.safetensors");
    await saveSheetCheckpoint(file, config, geometry, params, { connectivity: conn });
    const raw = await readSafetensors(file);
    assert.equal(raw.tensors["sheet.connectivity"].dtype, "I32");
    assert.deepEqual(raw.tensors["sheet.connectivity"].shape, [6, 4]);
    assert.deepEqual(raw.tensors["sheet.attn.attn_bias"].shape, [6, 4]);
    const loaded = await loadSheetCheckpoint(file);
    assert.deepEqual(loaded.connectivity!.indices, custom);
    assert.deepEqual(loaded.config, config);
    const x = np.array(new Float32Array(seededValues(2, B * 6 * 8))).reshape([B, 6, 8]);
    const a = sheetApply(params, x.ref, config, connectivityArray(conn));
    const b = sheetApply(loaded.params, x, loaded.config, connectivityArray(loaded.connectivity!));
    assertClose(await read(b.x), await read(a.x), 0, "x");
    assertClose(await read(b.attn), await read(a.attn), 0, "attn");

    const corrupt = async (name: string, data: Int32Array | null, shape = [6, 4]): Promise<string> => {
      const f = await readSafetensors(file);
      const tensors = { ...f.tensors };
      if (data) tensors["sheet.connectivity"] = { dtype: "I32", shape, data };
      else delete tensors["sheet.connectivity"];
      const out = nodePath.join(dir, name);
      await writeSafetensors(out, tensors, f.metadata);
      return out;
    };
    const outOfRange = custom.slice();
    outOfRange[5] = 6;
    const repeated = custom.slice();
    repeated[1] = repeated[0];
    await assert.rejects(loadSheetCheckpoint(await corrupt("range.safetensors", outOfRange)), /sheet\.connectivity.*out of range 0\.\.5/);
    await assert.rejects(loadSheetCheckpoint(await corrupt("dup.safetensors", repeated)), /sheet\.connectivity.*twice/);
    await assert.rejects(loadSheetCheckpoint(await corrupt("shape.safetensors", custom.slice(0, 18), [6, 3])), /sheet\.connectivity/);
    await assert.rejects(loadSheetCheckpoint(await corrupt("missing.safetensors", null)), /"sheet\.connectivity" is missing/);
  });

  test("FLOPs: scores and mixing cost N * K instead of N * N", () => {
    const dense = sheetStepFlops(sheetConfig({ heads: 2, value_proj: true }));
    const sparse = sheetStepFlops(sheetConfig({ heads: 2, value_proj: true, connectivity: { kind: "local", k: 2 } }));
    assert.equal(sparse.scores, (dense.scores * 2) / 6);
    assert.equal(sparse.mix, (dense.mix * 2) / 6);
    assert.equal(sparse.mlp, dense.mlp);
    assert.equal(sparse.qk, dense.qk);
  });
});

// ---------------------------------------------------------------------------
// End to end: training, collection for the analysis, the forward command
// ---------------------------------------------------------------------------

const SIZE = 8;

describe("end to end", () => {
  test("MIM with local K = 3 trains; checkpoints keep the indices; collection scatters [N, K] into [N, N]", async () => {
    const dataDir = await tmpDir("cf-sparse-data-");
    const split = (count: number, offset: number) => {
      const labels = Array.from({ length: count }, (_, i) => i % 2);
      return { images: labels.map((l, i) => easyImage(l, offset + i)), labels };
    };
    await writeIdxFolder(dataDir, split(64, 0), split(32, 500), false);
    const root = await tmpDir("cf-sparse-run-");
    const cfg = parseTrainConfig({
      sheet: { geometry: { kind: "stacked", widths: [2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2, connectivity: { kind: "local", k: 3 } },
      vision: { image_size: SIZE, patch_size: 4, channels: 1, task: "mim" },
      data: { kind: "idx", path: dataDir },
      wiring: { lambda: 0.01 },
      batch_size: 16,
      steps: 20,
      eval_every: 10,
      eval_images: 32,
      checkpoint_every: 10,
      optim: { lr: 1e-2 },
    });
    const summary = await train(cfg, root, { verbose: false });
    const log = readFileSync(nodePath.join(root, "log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, number>);
    const first = log[0].loss;
    const final = summary.final.mim_loss!;
    assert.ok(final < 0.9 * first, `held-out MIM loss ${final} did not fall enough below the step-1 loss ${first}`);
    assert.ok(Number.isFinite(summary.final.wiring_cost!) && summary.final.wiring_cost! > 0);

    const last = nodePath.join(root, "checkpoints/last.safetensors");
    const ckpt = await loadVisionCheckpoint(last);
    assert.deepEqual(ckpt.params.sheet.attn.attn_bias!.shape, [8, 3]);
    const geometry = buildGeometry(cfg.sheet.geometry as never);
    assert.deepEqual(ckpt.connectivity!.indices, bruteNearest((i, j) => distanceMatrix(geometry)[i * 8 + j], 8, 3));
    tree.dispose(ckpt.params);

    const model = await loadTrainedModel(last);
    try {
      assert.deepEqual(model.session.connectivity!.indices, ckpt.connectivity!.indices);
      const ds = await openDataset(cfg.data, "test");
      const activity = await collectActivity(model.session, model.checkpoint.params, ds, 20);
      const n = 8;
      assert.equal(activity.attention.length, 2 * n * n);
      assert.equal(activity.states.length, 20 * n * 8);
      const allowed = new Set(Array.from(ckpt.connectivity!.indices, (j, p) => Math.floor(p / 3) * n + j));
      for (let s = 0; s < 2; s++) {
        for (let i = 0; i < n; i++) {
          let row = 0;
          for (let j = 0; j < n; j++) {
            const v = activity.attention[s * n * n + i * n + j];
            row += v;
            if (!allowed.has(i * n + j)) assert.equal(v, 0, `attention outside the connections at step ${s}, (${i}, ${j})`);
          }
          assertClose([row], [1], 1e-5, `row ${i} of step ${s}`);
        }
      }
      const maps = await meanAttentionMaps(model.session, model.checkpoint.params, ds, 20);
      assertClose(maps, activity.attention, 1e-6, "meanAttentionMaps");
      // probe features: the final states of the output area (columns 4..7), as collected
      const features = await extractFeatures(model.session, model.checkpoint.params, ds, 20, "flat");
      assert.equal(features.dim, 4 * 8);
      const want = Array.from({ length: 20 }, (_, b) => Array.from(activity.states.subarray(b * n * 8 + 4 * 8, (b + 1) * n * 8))).flat();
      assertClose(features.features, want, 1e-5, "features");
    } finally {
      tree.dispose(model.checkpoint.params);
      disposeSession(model.session);
    }
  });

  test("a connectivity file: resume and loading use the checkpoint's indices, even after the file changed or went away", async () => {
    const dataDir = await tmpDir("cf-sparse-data2-");
    const split = (count: number, offset: number) => {
      const labels = Array.from({ length: count }, (_, i) => i % 2);
      return { images: labels.map((l, i) => easyImage(l, offset + i)), labels };
    };
    await writeIdxFolder(dataDir, split(16, 0), split(16, 500), false);
    const dir = await tmpDir("cf-sparse-file-");
    const file = nodePath.join(dir, "c.json");
    const original = Array.from({ length: 8 }, (_, i) => [i, (i + 1) % 8]);
    writeFileSync(file, JSON.stringify({ indices: original }));
    const root = nodePath.join(dir, "run");
    const cfg = parseTrainConfig({
      sheet: { geometry: { kind: "stacked", widths: [2, 2] }, dim: 4, qk_dim: 2, mlp_dim: 4, depth: 2, connectivity: { kind: "file", path: file } },
      vision: { image_size: SIZE, patch_size: 4, channels: 1, task: "mim" },
      data: { kind: "idx", path: dataDir },
      batch_size: 8,
      steps: 4,
      eval_every: 100,
      eval_images: 8,
      checkpoint_every: 2,
    });
    await train(cfg, root, { verbose: false, stopAfter: 2 });
    // another pattern with the same K: a resumed run must keep the checkpoint's
    writeFileSync(file, JSON.stringify({ indices: Array.from({ length: 8 }, (_, i) => [i, (i + 7) % 8]) }));
    await resume(root, { verbose: false });
    const last = nodePath.join(root, "checkpoints/last.safetensors");
    const ckpt = await loadVisionCheckpoint(last);
    assert.equal(ckpt.step, 4);
    assert.deepEqual(Array.from(ckpt.connectivity!.indices), original.flat());
    tree.dispose(ckpt.params);
    rmSync(file);
    const model = await loadTrainedModel(last);
    assert.deepEqual(Array.from(model.session.connectivity!.indices), original.flat());
    tree.dispose(model.checkpoint.params);
    disposeSession(model.session);
  });

  test("columnformer init / forward on a sparse sheet: attn [batch, depth, N, K] and connectivity [N, K]", async () => {
    const dir = await tmpDir("cf-sparse-cli-");
    const configPath = nodePath.join(dir, "sheet.json");
    writeFileSync(configPath, JSON.stringify({ geometry: { kind: "torus", height: 3, width: 3 }, dim: 4, qk_dim: 2, mlp_dim: 6, depth: 2, connectivity: { kind: "local", k: 5 } }));
    const ckpt = nodePath.join(dir, "model.safetensors");
    const input = nodePath.join(dir, "in.safetensors");
    const output = nodePath.join(dir, "out.safetensors");
    const values = new Float32Array(2 * 9 * 4).map((_, i) => Math.cos(i));
    await writeSafetensors(input, { x: { dtype: "F32", shape: [2, 9, 4], data: values } });
    const CLI = nodePath.join(import.meta.dirname, "..", "src", "cli", "main.ts");
    const run = promisify(execFile);
    await run(process.execPath, ["--import", "tsx", CLI, "init", "--config", configPath, "--seed", "2", "--out", ckpt]);
    await run(process.execPath, ["--import", "tsx", CLI, "forward", "--checkpoint", ckpt, "--input", input, "--output", output]);
    const out = await readSafetensors(output);
    assert.deepEqual(out.tensors.attn.shape, [2, 2, 9, 5]);
    assert.deepEqual(out.tensors.connectivity.shape, [9, 5]);
    assert.equal(out.tensors.connectivity.dtype, "I32");
    const { params, config, connectivity } = await loadSheetCheckpoint(ckpt);
    assert.deepEqual(out.tensors.connectivity.data, connectivity!.indices);
    const ref = sheetApply(params, np.array(values).reshape([2, 9, 4]), config, connectivityArray(connectivity!));
    assertClose(Array.from(out.tensors.x.data as Float32Array), await read(ref.x), 1e-6, "x");
    assertClose(Array.from(out.tensors.attn.data as Float32Array), await read(ref.attn), 1e-6, "attn");
  });
});
