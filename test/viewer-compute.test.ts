/**
 * The viewer's DOM-free parts, in Node: the forward the page runs on a sparse MIM model
 * (against visionEncode + decodePatches + composeReconstruction), the dense attention rows of a
 * sparse sheet (against scatterAttention), column statistics over images, and the sheet
 * layout of every geometry kind.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { before, test } from "node:test";
import { saveVisionCheckpoint } from "../src/checkpoint/vision-checkpoint.ts";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, tree } from "../src/engine/jax.ts";
import { buildGeometry, type GeometrySpec } from "../src/geometry/index.ts";
import { resolveSheetConfig } from "../src/model/config.ts";
import { connectivityArray, scatterAttention } from "../src/model/sheet-connectivity.ts";
import { decodePatches, initVision, visionEncode } from "../src/model/vision.ts";
import { visionConfigSchema } from "../src/model/vision-config.ts";
import { seededPatchMask, viewerForward } from "../src/viewer/compute/forward.ts";
import { modelFromBytes } from "../src/viewer/compute/load-model.ts";
import { populationStats } from "../src/viewer/compute/population.ts";
import { attentionColumn, attentionRow, quantityValues } from "../src/viewer/compute/quantities.ts";
import { columnAt, sheetDrawing } from "../src/viewer/compute/sheet-layout.ts";
import { composeReconstruction } from "../src/viz/reconstructions.ts";
import { tmpDir } from "./data-fixtures.ts";
import { seededValues } from "./naive-sheet.ts";

before(async () => {
  await initEngine();
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "same length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test("a sparse MIM model: the viewer's forward equals visionEncode + decoder; sparse rows spread into N", async () => {
  const { config: sheet, geometry } = resolveSheetConfig({
    geometry: { kind: "stacked", widths: [2, 3, 2] },
    dim: 8,
    qk_dim: 4,
    mlp_dim: 8,
    depth: 3,
    connectivity: { kind: "local", k: 5 },
  });
  const vision = visionConfigSchema.parse({ image_size: 8, patch_size: 4, channels: 1, task: "mim", inject: "every" });
  const params = initVision(sheet, vision, geometry, 7);
  const file = path.join(await tmpDir("cf-viewer-mim-"), "mim.safetensors");
  await saveVisionCheckpoint(file, sheet, vision, geometry, params, { train_config: JSON.stringify({ mask_ratio: 0.5 }) });
  tree.dispose(params);
  const model = modelFromBytes(new Uint8Array(readFileSync(file)), file);
  assert.equal(model.maskRatio, 0.5);
  const n = sheet.num_columns;
  const image = Float32Array.from(seededValues(3, 64), (v) => (v + 1) / 2);
  const mask = seededPatchMask(4, 0.5, 1);
  assert.equal(mask.reduce((s, v) => s + v, 0), 2, "half the patches masked");
  const f = await viewerForward(model, image, mask);

  const { decoder, head: _h, positions: _p, ...enc } = tree.ref(model.params);
  const ref = visionEncode(enc, np.array(image).reshape([1, 8, 8, 1]), np.array(mask).reshape([1, 4]), sheet, vision, model.layout, false, connectivityArray(model.connectivity!));
  ref.patches.dispose();
  const refAttn = (await ref.attn.data()) as Float32Array;
  const pred = (await decodePatches(decoder!, ref.out).data()) as Float32Array;
  assert.equal(f.width, 5);
  assert.ok(maxAbsDiff(f.attn, refAttn) < 1e-5, "sparse attention maps [depth, N, K]");
  const flags = Array.from(mask, (v) => v > 0.5);
  assert.ok(maxAbsDiff(f.reconstruction!, composeReconstruction(image, pred, flags, 8, 8, 1, 4, true)) < 1e-5, "reconstruction");
  assert.ok(f.masked!.some((v) => v === 0.5), "masked patches shown mid-grey");

  const dense = scatterAttention(f.attn, model.connectivity!); // [depth, N, N]
  for (const [step, i] of [[0, 0], [2, 5]]) {
    assert.deepEqual(Array.from(attentionRow(f, n, step, i, model.connectivity!.indices)), Array.from(dense.subarray((step * n + i) * n, (step * n + i + 1) * n)));
    const column = Array.from({ length: n }, (_, t) => dense[(step * n + t) * n + i]);
    assert.ok(maxAbsDiff(attentionColumn(f, n, step, i, model.connectivity!.indices), column) < 1e-7);
  }
  const received = quantityValues("received", f, n, 1, null, model.connectivity!.indices, new Int32Array(n))!;
  const colSums = Array.from({ length: n }, (_, j) => Array.from({ length: n }, (_, t) => dense[(n + t) * n + j]).reduce((a, b) => a + b, 0));
  assert.ok(maxAbsDiff(received, colSums) < 1e-5, "in-degree = column sums of the dense map");
  tree.dispose(model.params);
});

test("column statistics: energy, preferred class and selectivity by hand", () => {
  // 1 step, 2 columns; column 0 answers class 1 only, column 1 the same to both classes
  const e = (a: number, b: number) => Float32Array.from([a, b]);
  const s = populationStats([e(0, 2), e(0, 2), e(4, 2), e(2, 2)], [0, 0, 1, 1], 2, 1, 2);
  assert.deepEqual(Array.from(s.energy), [1.5, 2]);
  assert.equal(s.preferred[0], 1);
  // class means of column 0: 0 and 3 -> (3 - 1.5) / (3 + 1.5) = 1/3
  assert.ok(Math.abs(s.selectivity[0] - 1 / 3) < 1e-6);
  assert.equal(s.selectivity[1], 0);
  const unlabelled = populationStats([e(1, 1)], [null], 2, 1, 2);
  assert.ok(Number.isNaN(unlabelled.preferred[0]) && Number.isNaN(unlabelled.selectivity[0]));
});

test("sheet layout: every geometry kind draws each column once, inside its panel, found by a click on it", () => {
  const specs: GeometrySpec[] = [
    { kind: "grid", height: 3, width: 4 },
    { kind: "torus", height: 4, width: 4 },
    { kind: "stacked", widths: [2, 3, 4] },
    { kind: "sphere", num_columns: 40 },
    { kind: "custom", positions: [[0, 0], [1, 0], [0, 2], [3, 1]] },
    { kind: "custom", positions: [[0, 0, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1]], areas: [{ name: "a", start: 0, end: 2 }, { name: "b", start: 2, end: 4 }] },
  ];
  for (const spec of specs) {
    const g = buildGeometry(spec);
    const d = sheetDrawing(g);
    assert.equal(d.panels.length, g.areas.length, spec.kind);
    for (let i = 0; i < g.numColumns; i++) {
      const area = g.areas.findIndex((a) => i >= a.start && i < a.end);
      const p = d.panels[area];
      assert.ok(d.x[i] >= p.x - 1e-9 && d.x[i] <= p.x + p.width + 1e-9 && d.y[i] >= -1e-9 && d.y[i] <= p.height + 1e-9, `${spec.kind}: column ${i} inside its panel`);
      assert.equal(columnAt(d, d.x[i], d.y[i]), i, `${spec.kind}: a click on column ${i} finds it`);
    }
    for (let a = 1; a < d.panels.length; a++) assert.ok(d.panels[a].x >= d.panels[a - 1].x + d.panels[a - 1].width, "panels side by side");
  }
  // learned positions replace the grid
  const g = buildGeometry({ kind: "grid", height: 2, width: 2 });
  const d = sheetDrawing(g, Float32Array.from([0, 0, 5, 0, 0, 1, 5, 1]));
  assert.equal(d.cells, false);
  assert.ok(d.x[1] - d.x[0] > 3 * (d.y[2] - d.y[0]), "drawn at the learned positions (wide, flat)");
});
