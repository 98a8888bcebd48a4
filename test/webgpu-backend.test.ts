/**
 * The webgpu backend of the compiled model (src/engine/backend.ts, src/train/compiled-native.ts
 * on the WebGPU SheetEngine): the tiny preset trains 20 AdamW steps (the backends' own train
 * states: the sheet's leaves on the host, the engine's AdamW) to the same losses as on the
 * native backend, within 1e-4 relative; and without an adapter `--backend webgpu` says so in
 * one line and runs on the default backend.
 *
 * The training test needs an adapter and the native addon: without an adapter it skips with the
 * reason unless env COLUMNFORMER_WEBGPU_REQUIRED=1 (.ci/run sets it once
 * scripts/install-webgpu-adapter.sh succeeded); without the addon it skips unless CI is set.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chooseBackend, prepareBackend } from "../src/engine/backend.ts";
import { initEngine } from "../src/engine/engine.ts";
import { loadNativeSheet } from "../src/engine/native-sheet.ts";
import { loadWebGPUEngine } from "../src/engine/webgpu/engine.ts";
import { Rng } from "../src/data/index.ts";
import type { ImageBatch } from "../src/data/index.ts";
import { initVision } from "../src/model/vision.ts";
import { adamwConfig, adamwInit, defaultNoDecay } from "../src/optim/adamw.ts";
import { parseTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { PRESETS } from "../src/train/presets.ts";
import { createSession, disposeSession, maskSeed, toDevice } from "../src/train/session.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const required = process.env.COLUMNFORMER_WEBGPU_REQUIRED === "1";
const gpu = await loadWebGPUEngine();
const native = loadNativeSheet();
const skipTraining =
  "error" in gpu && !required ? `no WebGPU adapter: ${gpu.error}` : "error" in native && !process.env.CI ? `native addon not built: ${native.error}` : false;

before(async () => {
  await initEngine();
  if ("error" in gpu && required) throw new Error(`COLUMNFORMER_WEBGPU_REQUIRED=1 but ${gpu.error}`);
  if ("error" in native && process.env.CI) throw new Error(`CI must build the native addon: ${native.error}`);
});

/** A random batch of `b` images (and labels) for a config. */
function hostBatch(config: TrainConfig, b: number, seed: number): ImageBatch {
  const rng = new Rng(seed);
  const s = config.vision.image_size;
  const images = Float32Array.from({ length: b * s * s * config.vision.channels }, () => rng.next());
  const labels = Int32Array.from({ length: b }, (_, i) => i % config.vision.num_classes);
  return { images, labels, size: b, indices: Array.from({ length: b }, (_, i) => i) };
}

describe("choosing the webgpu backend", () => {
  test("without an adapter, one line says so and the run uses the default backend", () => {
    // a Dawn backend Linux does not have: no adapter, whatever the machine
    const script = `
      const { prepareBackend, chooseBackend } = await import(${JSON.stringify(pathToFileURL(path.join(root, "src/engine/backend.ts")).href)});
      await prepareBackend();
      const r = chooseBackend();
      console.log(JSON.stringify({ backend: r.backend, engine: r.engine !== null }));`;
    const out = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, COLUMNFORMER_BACKEND: "webgpu", COLUMNFORMER_WEBGPU_FLAGS: "backend=d3d12" },
    });
    assert.equal(out.status, 0, out.stderr);
    const expected = "addon" in native ? "native" : "jax";
    assert.deepEqual(JSON.parse(out.stdout.trim().split("\n").at(-1)!), { backend: expected, engine: expected === "native" });
    const ours = out.stderr.split("\n").filter((l) => l.startsWith("columnformer:"));
    assert.equal(ours.length, 1, `expected one line from columnformer, got:\n${out.stderr}`);
    assert.match(ours[0], new RegExp(`^columnformer: backend webgpu was requested but no WebGPU adapter \\(.*\\); running on ${expected === "native" ? "native" : "jax-js"}$`));
  });

  test("with an adapter, webgpu runs the sheet on the WebGPU engine", { skip: "error" in gpu && !required ? `no WebGPU adapter: ${"error" in gpu ? gpu.error : ""}` : false }, async () => {
    await prepareBackend("webgpu");
    const r = chooseBackend("webgpu");
    assert.equal(r.backend, "webgpu");
    assert.ok(r.engine && "engine" in gpu && r.engine === gpu.engine);
    assert.equal(r.addon, null);
  });
});

describe("the tiny preset trains the same on the webgpu and native backends", { skip: skipTraining }, () => {
  test("20 AdamW steps: equal losses (1e-4 relative)", async (t) => {
    const config = parseTrainConfig({ ...PRESETS.tiny, batch_size: 8, steps: 20 });
    await prepareBackend("webgpu");
    const losses: number[][] = [];
    for (const backend of ["native", "webgpu"] as const) {
      const session = createSession(config, { backend });
      assert.equal(session.compiled.backend, backend);
      const params = initVision(session.sheet, config.vision, session.geometry, config.seed);
      const state = await session.compiled.trainState(params, adamwInit(params), {
        adamw: adamwConfig({ ...config.optim, lr: config.optim.lr }),
        clipNorm: config.optim.clip_norm,
        noDecay: defaultNoDecay,
        lrScale: () => 1,
      });
      const run: number[] = [];
      const start = Date.now();
      for (let step = 0; step < config.steps; step++) {
        const batch = toDevice(session, hostBatch(config, config.batch_size, 100 + step), maskSeed(config.seed, 1, step));
        run.push((await state.accumulate(batch, step)).loss);
        await state.update(config.optim.lr);
      }
      t.diagnostic(`${backend}: ${((Date.now() - start) / config.steps).toFixed(0)} ms/step, loss ${run[0].toFixed(5)} -> ${run[19].toFixed(5)}`);
      losses.push(run);
      state.dispose();
      disposeSession(session);
    }
    const [nat, wg] = losses;
    assert.ok(nat[19] < nat[0], `the loss should fall: ${nat[0]} -> ${nat[19]}`);
    let worst = 0;
    for (let i = 0; i < 20; i++) {
      const e = Math.abs(wg[i] - nat[i]) / Math.abs(nat[i]);
      worst = Math.max(worst, e);
      assert.ok(e <= 1e-4, `step ${i + 1}: webgpu ${wg[i]} vs native ${nat[i]} (relative ${e.toExponential(2)})`);
    }
    t.diagnostic(`largest relative loss difference: ${worst.toExponential(2)}`);
  });
});
