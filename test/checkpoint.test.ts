import assert from "node:assert/strict";
import { mkdtempSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, test } from "node:test";
import { loadSheetCheckpoint, saveSheetCheckpoint, sheetParameterCount } from "../src/checkpoint/checkpoint.ts";
import { countParameters } from "../src/engine/param-tree.ts";
import { readSafetensors, writeSafetensors } from "../src/io/safetensors.ts";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, tree } from "../src/engine/jax.ts";
import { resolveSheetConfig } from "../src/model/config.ts";
import { initSheet, sheetApply } from "../src/model/sheet.ts";

before(async () => {
  await initEngine();
});

const dir = mkdtempSync(path.join(os.tmpdir(), "cf-ckpt-"));
const { config, geometry } = resolveSheetConfig({
  geometry: { kind: "stacked", widths: [2, 3] },
  dim: 6,
  qk_dim: 3,
  mlp_dim: 5,
  depth: 2,
});

test("state-dict names, layouts and metadata follow the reference model", async () => {
  const file = path.join(dir, "a.safetensors");
  const params = initSheet(config, geometry, 1);
  await saveSheetCheckpoint(file, config, geometry, params);
  tree.dispose(params);
  const st = await readSafetensors(file);
  const n = 13;
  const expected: Record<string, number[]> = {
    "sheet.norm1.weight": [n, 6],
    "sheet.norm1.bias": [n, 6],
    "sheet.attn.q.weight": [n, 3, 6],
    "sheet.attn.q.bias": [n, 3],
    "sheet.attn.k.weight": [n, 3, 6],
    "sheet.attn.attn_bias": [n, n],
    "sheet.norm2.weight": [n, 6],
    "sheet.norm2.bias": [n, 6],
    "sheet.mlp.fc1.weight": [n, 5, 6],
    "sheet.mlp.fc1.bias": [n, 5],
    "sheet.mlp.fc2.weight": [n, 6, 5],
    dist: [n, n],
  };
  assert.deepEqual(Object.keys(st.tensors).sort(), Object.keys(expected).sort());
  for (const [name, shape] of Object.entries(expected)) {
    assert.deepEqual(st.tensors[name].shape, shape, name);
    assert.equal(st.tensors[name].dtype, "F32", name);
  }
  assert.equal(st.metadata.format, "columnformer");
  const meta = JSON.parse(st.metadata.config);
  for (const field of ["num_columns", "dim", "qk_dim", "mlp_dim", "depth", "skip_attn", "attn_scale", "norm_eps", "geometry"]) {
    assert.ok(field in meta, `config field ${field}`);
  }
  assert.equal(meta.num_columns, 13);
  assert.equal(meta.attn_scale, 3 ** -0.5);
  // init: weights within U(-in^-1/2, in^-1/2), biases zero, norms one/zero, local attention bias
  const q = st.tensors["sheet.attn.q.weight"].data as Float32Array;
  assert.ok(q.every((v) => Math.abs(v) <= 6 ** -0.5), "q weight bound");
  assert.ok(Math.max(...q) > 0.8 * 6 ** -0.5, "q weight spread");
  assert.ok((st.tensors["sheet.mlp.fc1.bias"].data as Float32Array).every((v) => v === 0));
  assert.ok((st.tensors["sheet.norm2.weight"].data as Float32Array).every((v) => v === 1));
  const bias = st.tensors["sheet.attn.attn_bias"].data as Float32Array;
  const dist = st.tensors.dist.data as Float32Array;
  for (let i = 0; i < bias.length; i++) {
    assert.ok(Math.abs(bias[i] - Math.max(-(dist[i] ** 2) / 8, -8)) < 1e-6, `attn_bias[${i}]`);
  }
  // areas 2x2 at z=0 and 3x3 at z=2: column 0 (-1,-1,0) to column 4 (-1.5,-1.5,2)
  assert.ok(Math.abs(dist[0 * n + 4] - Math.sqrt(0.25 + 0.25 + 4)) < 1e-6);
  const fresh = initSheet(config, geometry, 0);
  assert.equal(countParameters(fresh), sheetParameterCount(config));
  tree.dispose(fresh);
});

test("round trip: save, load, identical outputs", async () => {
  const file = path.join(dir, "b.safetensors");
  const params = initSheet(config, geometry, 5);
  await saveSheetCheckpoint(file, config, geometry, params);
  const loaded = await loadSheetCheckpoint(file);
  assert.deepEqual(loaded.config, config);
  const x = np.array(new Float32Array(2 * 13 * 6).map((_, i) => Math.sin(i))).reshape([2, 13, 6]);
  const a = sheetApply(params, x.ref, config);
  const b = sheetApply(loaded.params, x, loaded.config);
  assert.deepEqual(await a.x.data(), await b.x.data());
  assert.deepEqual(await a.attn.data(), await b.attn.data());
});

test("a checkpoint with a missing, misshaped or mistyped tensor is refused by name", async () => {
  const good = path.join(dir, "c.safetensors");
  const params = initSheet(config, geometry, 2);
  await saveSheetCheckpoint(good, config, geometry, params);
  tree.dispose(params);
  const st = await readSafetensors(good);
  const variants: [string, (t: typeof st.tensors) => void, RegExp][] = [
    ["missing", (t) => delete t["sheet.mlp.fc2.weight"], /sheet\.mlp\.fc2\.weight/],
    ["misshaped", (t) => (t["sheet.attn.k.weight"] = { dtype: "F32", shape: [13, 18], data: new Float32Array(13 * 18) }), /sheet\.attn\.k\.weight/],
    ["mistyped", (t) => (t["sheet.norm1.bias"] = { dtype: "F64", shape: [13, 6], data: new Float64Array(13 * 6) }), /sheet\.norm1\.bias/],
  ];
  for (const [what, mutate, pattern] of variants) {
    const tensors = { ...st.tensors };
    mutate(tensors);
    const bad = path.join(dir, `bad-${what}.safetensors`);
    await writeSafetensors(bad, tensors, st.metadata);
    await assert.rejects(loadSheetCheckpoint(bad), pattern, what);
  }
  const notOurs = path.join(dir, "other.safetensors");
  await writeSafetensors(notOurs, st.tensors, { format: "pt" });
  await assert.rejects(loadSheetCheckpoint(notOurs), /not a columnformer checkpoint/);
  assert.ok(!readdirSync(dir).some((f) => f.includes(".tmp")), "no temp files left");
});
