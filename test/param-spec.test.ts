/**
 * Parameter specs: one declaration per module feeds init, checkpoint shapes and counts. The
 * PRNG derivation is pinned by drawing leaves by hand (threefry splits written out here, not
 * read from the specs), so a reordered spec or a renamed stream cannot silently change every
 * seed's initialisation.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { sheetParameterCount, sheetTensorShapes } from "../src/checkpoint/checkpoint.ts";
import { visionParameterCount, visionTensorShapes } from "../src/checkpoint/vision-checkpoint.ts";
import { initEngine } from "../src/engine/engine.ts";
import { type numpy as np, random } from "../src/engine/jax.ts";
import { sheetLeaves } from "../src/engine/native-sheet.ts";
import { namedLeaves } from "../src/engine/param-tree.ts";
import { splitKey } from "../src/engine/prng.ts";
import { resolveSheetConfig } from "../src/model/config.ts";
import { initParams, type ParamSpec } from "../src/model/param-spec.ts";
import { sheetParamSpecs } from "../src/model/sheet.ts";
import { initVision, visionLayout } from "../src/model/vision.ts";
import { visionConfigSchema } from "../src/model/vision-config.ts";

await initEngine();

const data = async (a: np.Array) => Array.from((await a.data()) as Float32Array);

test("init draws each random leaf from its own split of the seed (written out by hand)", async () => {
  const { config: sheet, geometry } = resolveSheetConfig({ geometry: { kind: "grid", height: 2, width: 2 }, dim: 8, qk_dim: 4, mlp_dim: 8, value_proj: true });
  const vision = visionConfigSchema.parse({ image_size: 8, patch_size: 4, task: "classify", num_classes: 3, learned_init_state: true, init_state_std: 0.5 });
  const params = initVision(sheet, vision, geometry, 11);
  // seed -> [sheet, patch_embed, mask_token, head]; sheet -> [attn, mlp]; attn -> [q, k, v, o]; mlp -> [fc1, fc2]
  const [kSheet, kEmbed, kMask, kHead] = splitKey(random.key(11), 4);
  const [kAttn, kMlp] = splitKey(kSheet, 2);
  const [, , kv] = splitKey(kAttn, 4);
  const [, k2] = splitKey(kMlp, 2);
  const u = (key: np.Array, shape: number[], fanIn: number) => random.uniform(key, shape, { minval: -(fanIn ** -0.5), maxval: fanIn ** -0.5 });
  assert.deepEqual(await data(params.sheet.attn.v!.weight.ref), await data(u(kv, [4, 8, 8], 8)), "sheet.attn.v.weight");
  assert.deepEqual(await data(params.sheet.mlp.fc2.weight.ref), await data(u(k2, [4, 8, 8], 8)), "sheet.mlp.fc2.weight");
  assert.deepEqual(await data(params.patch_embed.weight.ref), await data(u(kEmbed, [8, 16], 16)), "patch_embed.weight");
  assert.deepEqual(await data(params.mask_token.ref), await data(random.normal(kMask, [8]).mul(0.02)), "mask_token");
  assert.deepEqual(await data(params.head!.weight.ref), await data(u(kHead, [3, 8], 8)), "head.weight");
  assert.deepEqual(await data(params.init_state!.ref), await data(random.normal(random.key(11 + 1_000_003), [4, 8]).mul(0.5)), "init_state: its own stream");
  assert.deepEqual(await data(params.sheet.norm1.weight.ref), new Array(32).fill(1), "norm weights start at 1");
  assert.deepEqual(await data(params.head!.bias.ref), [0, 0, 0], "biases start at 0");
  // the checkpoint's shapes and the counts are the initialised tree's
  const layout = visionLayout(vision, geometry);
  const leaves = namedLeaves(params);
  assert.deepEqual(Object.fromEntries(leaves.map(([name, leaf]) => [name, leaf.shape])), { ...visionTensorShapes(sheet, vision, layout), ...sheetTensorShapes(sheet) });
  assert.equal(visionParameterCount(sheet, vision, layout), leaves.reduce((s, [, leaf]) => s + leaf.size, 0));
  // by hand: norms 2 * 2 * 4 * 8; q 4 * (4 * 8 + 4), k 4 * 4 * 8; v, o 2 * 4 * (8 * 8 + 8); fc1 4 * (8 * 8 + 8); fc2 4 * 8 * 8; the attention bias (on by default) 4 * 4
  assert.equal(sheetParameterCount(sheet), 128 + 144 + 128 + 576 + 288 + 256 + 16);
  for (const [, leaf] of leaves) leaf.dispose();
});

test("initParams refuses a missing or reused stream and disposes unused keys", () => {
  const leaf = (path: string, stream: string): ParamSpec => ({ path, shape: [2], init: { kind: "uniform", bound: 1, stream }, columnAxis: null });
  assert.throws(() => initParams([leaf("a", "s")], {}), /no PRNG stream "s"/);
  assert.throws(() => initParams([leaf("a", "s"), leaf("b", "s")], { s: random.key(0) }), /stream "s" is drawn from twice/);
  const tree = initParams([leaf("x.a", "s")], { s: random.key(0), unused: random.key(1) });
  assert.deepEqual(Object.keys(tree), ["x"]);
});

test("the native addon's leaf order (its ABI, declared in the engine layer) is the sheet's parameter spec order", () => {
  for (const value_proj of [false, true]) {
    for (const attn_bias of [false, true]) {
      for (const untie of [false, true]) {
        const { config } = resolveSheetConfig({
          geometry: { kind: "grid", width: 3, height: 3 },
          dim: 8,
          qk_dim: 4,
          mlp_dim: 8,
          depth: 2,
          heads: value_proj ? 2 : 1,
          value_proj,
          attn_bias,
          untie_norm: untie,
          untie_attn: untie,
          untie_mlp: untie,
        });
        const what = JSON.stringify({ value_proj, attn_bias, untie });
        assert.deepEqual(sheetLeaves(config), sheetParamSpecs(config).map((s) => s.path), what);
      }
    }
  }
});
