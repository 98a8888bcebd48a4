/** Parameter counts and FLOPs per image against counts done by hand. */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { sheetParameterCount } from "../src/checkpoint/checkpoint.ts";
import { countParameters } from "../src/engine/param-tree.ts";
import { visionParameterCount } from "../src/checkpoint/vision-checkpoint.ts";
import { initEngine } from "../src/engine/engine.ts";
import { tree } from "../src/engine/jax.ts";
import { resolveSheetConfig } from "../src/model/config.ts";
import { flopsPerImage, sheetStepFlops } from "../src/model/cost.ts";
import { initSheet } from "../src/model/sheet.ts";
import { initVision, visionLayout } from "../src/model/vision.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { PRESETS } from "../src/train/presets.ts";

before(async () => {
  await initEngine();
});

function tiny(overrides: { sheet?: Record<string, unknown>; vision?: Record<string, unknown> } = {}) {
  const raw = PRESETS.tiny;
  const config = parseTrainConfig({ ...raw, sheet: { ...raw.sheet, ...overrides.sheet }, vision: { ...raw.vision, ...overrides.vision } });
  const { config: sheet, geometry } = resolveSheetConfig(config.sheet);
  return { sheet, vision: config.vision, geometry, layout: visionLayout(config.vision, geometry) };
}

describe("parameter counts", () => {
  test("tiny preset (MIM): 1,628,521 by hand, and the initialised model agrees", () => {
    // N 147, D 64, qk 16, mlp 64; P 49 patches of 4x4x1 = 16 pixels; 49 output columns
    const sheet =
      2 * 147 * 64 + // norm1
      (147 * 16 * 64 + 147 * 16) + // q
      147 * 16 * 64 + // k
      147 * 147 + // attention bias
      2 * 147 * 64 + // norm2
      (147 * 64 * 64 + 147 * 64) + // fc1
      147 * 64 * 64; // fc2
    const front = 64 * 16 + 64 + 64; // patch embedding + mask token
    const finalNorm = 2 * 64; // LayerNorm weight and bias before the readout (vision.final_norm)
    const decoder = 49 * 16 * 64 + 49 * 16;
    assert.equal(sheet + front + finalNorm + decoder, 1_628_521);
    const t = tiny();
    assert.equal(visionParameterCount(t.sheet, t.vision, t.layout), 1_628_521);
    const params = initVision(t.sheet, t.vision, t.geometry, 0);
    assert.equal(countParameters(params), 1_628_521);
    tree.dispose(params);
  });
  test("a tied transformer stack: 3 blocks of 363 by hand", () => {
    const { config } = resolveSheetConfig({
      geometry: { kind: "grid", height: 2, width: 3 },
      dim: 8, qk_dim: 3, heads: 2, mlp_dim: 5, depth: 3,
      recurrent: false, untie_norm: false, untie_attn: false, untie_mlp: false, value_proj: true, attn_bias: false,
    });
    // per block: norms 2 x (8 + 8), q 6x8 + 6, k 6x8, v and o 8x8 + 8 each, fc1 5x8 + 5, fc2 8x5
    const block = 32 + 54 + 48 + 72 + 72 + 45 + 40;
    assert.equal(block, 363);
    assert.equal(sheetParameterCount(config), 3 * 363);
    const { geometry } = resolveSheetConfig(config);
    const params = initSheet(config, geometry, 0);
    assert.equal(countParameters(params), 3 * 363);
    tree.dispose(params);
  });
});

describe("FLOPs per image", () => {
  test("tiny preset (MIM): 26,072,704 by hand", () => {
    const perStep =
      2 * 147 * 64 * 16 * 2 + // q and k
      2 * 147 * 147 * 16 + // scores
      2 * 147 * 147 * 64 + // mixing values
      2 * 147 * 64 * 64 * 2; // fc1 and fc2
    assert.equal(perStep, 6_468_000);
    const embed = 2 * 49 * 16 * 64;
    const decoder = 2 * 49 * 64 * 16;
    assert.equal(embed + 4 * perStep + decoder, 26_072_704);
    const t = tiny();
    assert.equal(flopsPerImage(t.sheet, t.vision, t.layout), 26_072_704);
  });
  test("untying changes parameters, not FLOPs; heads and value projections add what they should", () => {
    const untied = tiny();
    const tied = tiny({ sheet: { untie_norm: false, untie_attn: false, untie_mlp: false } });
    assert.equal(flopsPerImage(tied.sheet, tied.vision, tied.layout), flopsPerImage(untied.sheet, untied.vision, untied.layout));
    assert.ok(visionParameterCount(tied.sheet, tied.vision, tied.layout) < visionParameterCount(untied.sheet, untied.vision, untied.layout));
    const t = tiny({ sheet: { heads: 4, value_proj: true } });
    const parts = sheetStepFlops(t.sheet);
    assert.equal(parts.qk, 2 * 2 * 147 * 64 * 64); // 4 heads x 16 = 64 query/key features
    assert.equal(parts.vo, 2 * 2 * 147 * 64 * 64);
    assert.equal(parts.scores, 2 * 147 * 147 * 64);
    assert.equal(parts.mix, 2 * 147 * 147 * 64); // heads split the values: unchanged
  });
  test("classification readout: average pooling, then spatial pooling", () => {
    const avg = tiny({ vision: { task: "classify" } });
    const body = 2 * 49 * 16 * 64 + 4 * 6_468_000;
    assert.equal(flopsPerImage(avg.sheet, avg.vision, avg.layout), body + 2 * 64 * 10);
    const spatial = tiny({ vision: { task: "classify", pool: "spatial" } });
    assert.equal(flopsPerImage(spatial.sheet, spatial.vision, spatial.layout), body + 2 * 64 * 10 + 2 * 10 * 49 * 64);
  });
});
