/**
 * `columnformer grow` (src/workflows/grow.ts): the parent map and grown geometry of stacked [2, 2, 2]
 * -> [2, 4, 2] by hand; the attention-bias rule on a hand case; a grown model computes what the
 * old one did (a random-init recurrent classifier with learned initial state and spatial pooling;
 * a tiny trained MIM stack with heads and value projections); errors; the CLI with --steps 1.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import * as nodePath from "node:path";
import { promisify } from "node:util";
import { before, describe, test } from "node:test";
import { loadVisionCheckpoint } from "../src/checkpoint/vision-checkpoint.ts";
import { openDataset } from "../src/data/index.ts";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, tree } from "../src/engine/jax.ts";
import { buildGeometry } from "../src/geometry/index.ts";
import { resolveSheetConfig } from "../src/model/config.ts";
import { classify, decodePatches, initVision, type VisionParams, visionEncode, visionLayout } from "../src/model/vision.ts";
import { visionConfigSchema } from "../src/model/vision-config.ts";
import { parseTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { extractFeatures } from "../src/train/evaluate.ts";
import { checkGrowable, gatherColumns, growAttentionBias, growParams, growRun, planGrow } from "../src/workflows/grow.ts";
import { disposeSession } from "../src/train/session.ts";
import { loadTrainedModel } from "../src/train/trained-model.ts";
import { train } from "../src/train/trainer.ts";
import { assertClose } from "./assertions.ts";
import { easyImage, tmpDir, writeIdxFolder } from "./data-fixtures.ts";
import { seededValues } from "./naive-sheet.ts";

before(async () => {
  await initEngine();
});

const IO = { input_area: null, output_area: null };

describe("pure parts", () => {
  test("planGrow: stacked [2, 2, 2] -> [2, 4, 2], parents and copies by hand", () => {
    const g = buildGeometry({ kind: "stacked", widths: [2, 2, 2], offset: 3 });
    const plan = planGrow(g, IO, 2);
    assert.deepEqual(plan.areas, ["area1"]);
    assert.deepEqual(plan.spec, { kind: "stacked", widths: [2, 4, 2], offset: 3 });
    assert.equal(plan.oldColumns, 12);
    assert.equal(plan.newColumns, 24);
    const area1 = [4, 4, 5, 5, 4, 4, 5, 5, 6, 6, 7, 7, 6, 6, 7, 7];
    assert.deepEqual(Array.from(plan.parent), [0, 1, 2, 3, ...area1, 8, 9, 10, 11]);
    assert.deepEqual(Array.from(plan.copies), [1, 1, 1, 1, 4, 4, 4, 4, 1, 1, 1, 1]);
    // the new positions come from the geometry: area1 is a 4 x 4 grid at z = 3
    const ng = buildGeometry(plan.spec);
    assert.equal(ng.numColumns, 24);
    assert.deepEqual(ng.areas.map((a) => [a.name, a.start, a.end]), [["area0", 0, 4], ["area1", 4, 20], ["area2", 20, 24]]);
    assert.deepEqual(Array.from(ng.positions.subarray(3 * 4, 3 * 5)), [-2, -2, 3]);
    // factor 3, explicit areas, the output area moved: [2, 2, 2, 2] with output area1 grows area2 only when asked
    const g4 = buildGeometry({ kind: "stacked", widths: [2, 2, 2, 2] });
    const p3 = planGrow(g4, { input_area: null, output_area: "area1" }, 3, ["area3"]);
    assert.deepEqual((p3.spec as { widths: number[] }).widths, [2, 2, 2, 6]);
    assert.deepEqual(planGrow(g4, { input_area: null, output_area: "area1" }, 2).areas, ["area2", "area3"]);
  });

  test("growAttentionBias and gatherColumns by hand", () => {
    // old N = 2, new column 2 copies old column 1
    const parent = Int32Array.from([0, 1, 1]);
    const copies = Int32Array.from([1, 2]);
    const l2 = Math.log(2);
    // two blocks: bias[b] = [[0, 1], [2, 3]] + 10 b
    const bias = [0, 1, 2, 3, 10, 11, 12, 13];
    const expected = [0, 1 - l2, 1 - l2, 2, 3 - l2, 3 - l2, 2, 3 - l2, 3 - l2];
    assertClose(growAttentionBias(bias, parent, copies), [...expected, ...expected.map((v) => v + 10)], 1e-6, "bias");
    // a copied row's softmax gives each copy half of what the parent got
    const g = gatherColumns([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2], 1, parent);
    assert.deepEqual(g.shape, [2, 3, 2]);
    assert.deepEqual(Array.from(g.data), [1, 2, 3, 4, 3, 4, 5, 6, 7, 8, 7, 8]);
  });

  test("errors: input / output area, a single grid, sparse, factor < 2, unknown area", () => {
    const g = buildGeometry({ kind: "stacked", widths: [2, 2, 2] });
    assert.throws(() => planGrow(g, IO, 2, ["area0"]), /area "area0" is the input area; its grid is tied to the patch grid/);
    assert.throws(() => planGrow(g, IO, 2, ["area2"]), /area "area2" is the output area/);
    assert.throws(() => planGrow(g, IO, 2, ["area7"]), /no area named "area7"/);
    assert.throws(() => planGrow(g, IO, 1), /--factor must be an integer >= 2, got 1/);
    assert.throws(() => planGrow(g, IO, 1.5), /--factor must be an integer >= 2/);
    assert.throws(() => planGrow(buildGeometry({ kind: "grid", height: 4, width: 4 }), IO, 2), /both the input and the output area.*change the patch grid/);
    assert.throws(() => planGrow(buildGeometry({ kind: "torus", height: 4, width: 4 }), IO, 2), /a torus geometry has one area/);
    assert.throws(() => planGrow(buildGeometry({ kind: "stacked", widths: [2, 2] }), IO, 2), /every area of this geometry is the input or the output area/);
    const sparse = resolveSheetConfig({ geometry: { kind: "stacked", widths: [2, 2, 2] }, connectivity: { kind: "local", k: 3 } }).config;
    assert.throws(() => checkGrowable(sparse), /sparse .*not supported yet/);
    const noBias = resolveSheetConfig({ geometry: { kind: "stacked", widths: [2, 2, 2] }, attn_bias: false }).config;
    assert.throws(() => checkGrowable(noBias), /no attention bias/);
  });
});

// ---------------------------------------------------------------------------
// The grown model computes what the old one did
// ---------------------------------------------------------------------------

const SIZE = 8;

async function host(a: np.Array): Promise<Float32Array> {
  return (await a.data()) as Float32Array;
}

test("a random-init recurrent classifier (learned init state, spatial pool, inject every): same output states and logits", async () => {
  const { config: sheet, geometry } = resolveSheetConfig({
    geometry: { kind: "stacked", widths: [2, 2, 2] },
    dim: 8,
    qk_dim: 4,
    mlp_dim: 8,
    depth: 3,
    attn_bias_sigma: 1,
  });
  const vision = visionConfigSchema.parse({ image_size: SIZE, patch_size: 4, task: "classify", num_classes: 3, pool: "spatial", learned_init_state: true, init_state_std: 0.5, inject: "every" });
  const params = initVision(sheet, vision, geometry, 7);
  params.head!.pool!.dispose();
  params.head!.pool = np.array(Float32Array.from(seededValues(5, 12))).reshape([3, 4]);
  const plan = planGrow(geometry, vision, 2);
  const grown = await growParams(params, sheet, vision, visionLayout(vision, geometry), plan);
  const { config: newSheet, geometry: newGeometry } = resolveSheetConfig({ ...sheet, geometry: plan.spec, num_columns: undefined });
  assert.equal(newSheet.num_columns, 24);
  assert.deepEqual(grown.init_state!.shape, [24, 8]);
  assert.deepEqual(grown.sheet.attn.attn_bias!.shape, [24, 24]);
  assert.deepEqual(grown.sheet.mlp.fc1.weight.shape, [24, 8, 8]);
  // new column 5 (area1, row 0, col 1) copies old column 4
  const oldFc1 = await host(params.sheet.mlp.fc1.weight.ref);
  const newFc1 = await host(grown.sheet.mlp.fc1.weight.ref);
  assert.deepEqual(Array.from(newFc1.subarray(5 * 64, 6 * 64)), Array.from(oldFc1.subarray(4 * 64, 5 * 64)));
  const images = np.array(Float32Array.from(seededValues(11, 4 * SIZE * SIZE))).reshape([4, SIZE, SIZE, 1]);
  const run = async (p: VisionParams, s: typeof sheet, g: typeof geometry) => {
    const layout = visionLayout(vision, g);
    const enc = visionEncode(
      { patch_embed: tree.ref(p.patch_embed), mask_token: p.mask_token.ref, init_state: p.init_state?.ref, sheet: tree.ref(p.sheet) },
      images.ref,
      null,
      s,
      vision,
      layout,
    );
    enc.attn.dispose();
    enc.patches.dispose();
    const logits = classify(tree.ref(p.head!), enc.out.ref);
    return { out: await host(enc.out), logits: await host(logits) };
  };
  const a = await run(params, sheet, geometry);
  const b = await run(grown, newSheet, newGeometry);
  assertClose(b.out, a.out, 1e-4, "output-area states");
  assertClose(b.logits, a.logits, 1e-4, "logits");
  tree.dispose([params, grown, images]);
});

describe("a tiny trained MIM stack", () => {
  let root = "";
  let config: TrainConfig;

  before(async () => {
    const dataDir = await tmpDir("cf-grow-data-");
    const split = (count: number, offset: number) => {
      const labels = Array.from({ length: count }, (_, i) => i % 2);
      return { images: labels.map((l, i) => easyImage(l, offset + i)), labels };
    };
    await writeIdxFolder(dataDir, split(32, 0), split(16, 500), false);
    root = await tmpDir("cf-grow-run-");
    // a stack (bias [depth, N, N]) with 2 heads and value projections: N = 12
    config = parseTrainConfig({
      sheet: { geometry: { kind: "stacked", widths: [2, 2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2, recurrent: false, heads: 2, value_proj: true },
      vision: { image_size: SIZE, patch_size: 4, channels: 1, task: "mim", learned_init_state: true, init_state_std: 0.02 },
      data: { kind: "idx", path: dataDir },
      batch_size: 8,
      steps: 4,
      eval_every: 100,
      eval_images: 16,
      checkpoint_every: 100,
      optim: { lr: 1e-2 },
    });
    await train(config, root, { verbose: false });
  });

  test("grow --steps 0: the grown model's MIM loss, predictions and output states equal the old one's", async () => {
    const out = nodePath.join(await tmpDir("cf-grow-0-"), "grown");
    const result = await growRun(root, out, { factor: 2, steps: 0, verbose: false });
    assert.equal(result.trained, null);
    assert.equal(result.num_columns_after, 24);
    assert.deepEqual(result.geometry_after, { kind: "stacked", widths: [2, 4, 2] });
    assertClose([result.grown.mim_loss!], [result.before.mim_loss!], 1e-4, "MIM loss");
    const stored = JSON.parse(readFileSync(nodePath.join(out, "config.json"), "utf8")) as { steps: number; sheet: { geometry: unknown } };
    assert.equal(stored.steps, 1, "config.json gets the default steps (a quarter of 4)");
    assert.deepEqual(stored.sheet.geometry, { kind: "stacked", widths: [2, 4, 2] });
    const old = await loadTrainedModel(nodePath.join(root, "checkpoints/last.safetensors"));
    const grown = await loadTrainedModel(nodePath.join(out, "init.safetensors"));
    try {
      assert.equal(grown.checkpoint.step, 0);
      assert.deepEqual(grown.checkpoint.params.sheet.attn.attn_bias!.shape, [2, 24, 24]);
      assert.deepEqual(grown.checkpoint.params.sheet.attn.q.weight.shape, [2, 24, 8, 8]);
      const ds = await openDataset(config.data, "test");
      const fo = await extractFeatures(old.session, old.checkpoint.params, ds, 16, "flat");
      const fg = await extractFeatures(grown.session, grown.checkpoint.params, ds, 16, "flat");
      assertClose(fg.features, fo.features, 1e-4, "output-area states");
      // MIM predictions with a mask
      const images = np.array(Float32Array.from(seededValues(3, 2 * SIZE * SIZE))).reshape([2, SIZE, SIZE, 1]);
      const mask = np.array(Float32Array.from([1, 0, 0, 1, 0, 1, 1, 0])).reshape([2, 4]);
      const predict = async (m: typeof old) => {
        const p = m.checkpoint.params;
        const enc = visionEncode(
          { patch_embed: tree.ref(p.patch_embed), mask_token: p.mask_token.ref, init_state: p.init_state?.ref, sheet: tree.ref(p.sheet) },
          images.ref,
          mask.ref,
          m.session.sheet,
          m.session.vision,
          m.session.layout,
        );
        enc.attn.dispose();
        enc.patches.dispose();
        return host(decodePatches(tree.ref(p.decoder!), enc.out));
      };
      assertClose(await predict(grown), await predict(old), 1e-4, "MIM predictions");
      tree.dispose([images, mask]);
    } finally {
      for (const m of [old, grown]) {
        tree.dispose(m.checkpoint.params);
        disposeSession(m.session);
      }
    }
    // the same directory again: the grown model is kept; --areas of the input area is refused before writing
    await growRun(root, out, { factor: 2, steps: 0, verbose: false });
    await assert.rejects(growRun(root, out, { factor: 3, steps: 0, verbose: false }), /grown differently|holds a different run|differs/);
    await assert.rejects(growRun(root, nodePath.join(out, "x"), { factor: 2, areas: ["area0"], steps: 0, verbose: false }), /is the input area/);
    await assert.rejects(growRun(root, nodePath.join(out, "y"), { factor: 2, steps: 0, overrides: ["sheet.dim=4"], verbose: false }), /must not change the model/);
  });

  test("columnformer grow --factor 2 --steps 1: writes a run that trains", async () => {
    const out = nodePath.join(await tmpDir("cf-grow-cli-"), "grown");
    const CLI = nodePath.join(import.meta.dirname, "..", "src", "cli", "main.ts");
    const run = promisify(execFile);
    const env = { ...process.env, COLUMNFORMER_THREADS: "1" };
    const { stdout } = await run(process.execPath, ["--import", "tsx", CLI, "grow", root, "--factor", "2", "--steps", "1", "--out", out, "--quiet"], { env });
    assert.match(stdout, /\| before growing \| 12 \|/);
    assert.match(stdout, /\| grown \(x2: area1\) \| 24 \|/);
    const ckpt = await loadVisionCheckpoint(nodePath.join(out, "checkpoints/last.safetensors"));
    assert.equal(ckpt.step, 1);
    assert.equal(ckpt.sheet.num_columns, 24);
    tree.dispose(ckpt.params);
    const result = JSON.parse(readFileSync(nodePath.join(out, "grow.json"), "utf8")) as { trained: { mim_loss: number }; steps: number };
    assert.equal(result.steps, 1);
    assert.ok(Number.isFinite(result.trained.mim_loss));
    await assert.rejects(run(process.execPath, ["--import", "tsx", CLI, "grow", root, "--factor", "1", "--out", nodePath.join(out, "z")], { env }), /--factor must be an integer >= 2/);
  });
});
