/**
 * The webgpu backend of the compiled model (src/engine/backend.ts, src/train/compiled-native.ts
 * on the WebGPU SheetEngine): one training step's metrics and every parameter gradient equal
 * the native backend's (1e-5 / 1e-4, as test/backends.test.ts checks native against jax) with
 * the research levers that reach the sheet's kernels (wiring forms, activation penalty, sparse
 * sheets, inject every, learned positions, spatial correlation); the tiny preset trains 20 AdamW
 * steps (the backends' own train states: native's sheet leaves on the host with the addon's
 * AdamW, webgpu's resident on the GPU with AdamW there) to the same losses, gradient norms and
 * final parameters and moments as on the native backend, within 1e-4 relative, without
 * uploading a parameter after the first step; the resident state equals webgpu's host path
 * (the same engine without `resident`) over micro-batches, clipping and a consistency penalty;
 * and without an adapter `--backend webgpu` says so in one line and runs on the default backend.
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
import { resetTraffic, traffic } from "../src/engine/webgpu/readback.ts";
import type { SheetEngine } from "../src/engine/sheet-engine.ts";
import { compileNative } from "../src/train/compiled-native.ts";
import type { TrainState } from "../src/train/train-state.ts";
import { Rng } from "../src/data/index.ts";
import type { ImageBatch } from "../src/data/index.ts";
import { numpy as np, tree } from "../src/engine/jax.ts";
import { namedLeaves } from "../src/engine/param-tree.ts";
import { connectivityK, resolveSheetConfig } from "../src/model/config.ts";
import { initSheet, sheetApply } from "../src/model/sheet.ts";
import { connectivityArray, resolveConnectivity } from "../src/model/sheet-connectivity.ts";
import { nativeSheetApply } from "../src/model/sheet-native.ts";
import { initVision, type VisionParams } from "../src/model/vision.ts";
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

/** Perturb every leaf so biases, norm affines and the mask token are non-trivial. */
function perturb(params: VisionParams, seed: number): VisionParams {
  const rng = new Rng(seed);
  const [leaves, def] = tree.flatten(params as unknown as tree.JsTree<np.Array>);
  const out = leaves.map((leaf) => leaf.add(np.array(Float32Array.from({ length: leaf.size }, () => (rng.next() - 0.5) * 0.2)).reshape(leaf.shape)));
  return tree.unflatten(def, out) as unknown as VisionParams;
}

/** max |a - b| / max |b| over a leaf. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= num)) num = Number.isNaN(d) ? Infinity : d;
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = v && typeof v === "object" && !Array.isArray(v) && typeof a[k] === "object" ? merge(a[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
  return out;
};

/** gradStep and evalStep of one batch on native (the reference) and webgpu. */
async function compareStep(overrides: Record<string, unknown>, what: string): Promise<void> {
  const base = {
    sheet: { geometry: { kind: "stacked", widths: [2, 3, 2] }, dim: 8, qk_dim: 4, mlp_dim: 6, depth: 3 },
    vision: { image_size: 8, patch_size: 4, channels: 1, task: "mim", num_classes: 3 },
    data: { kind: "mnist" },
    batch_size: 4,
    steps: 10,
  };
  const config = parseTrainConfig(merge(base, overrides));
  await prepareBackend("webgpu");
  const sessions = [createSession(config, { backend: "native" }), createSession(config, { backend: "webgpu" })];
  assert.deepEqual(sessions.map((s) => s.compiled.backend), ["native", "webgpu"]);
  try {
    const params = perturb(initVision(sessions[0].sheet, config.vision, sessions[0].geometry, 3, sessions[0].connectivity), 11);
    const host = hostBatch(config, config.batch_size, 5);
    const [ref, got] = [await sessions[0].compiled.gradStep(params, toDevice(sessions[0], host, maskSeed(1, 1, 0)), 3), await sessions[1].compiled.gradStep(params, toDevice(sessions[1], host, maskSeed(1, 1, 0)), 3)];
    const evalGot = await sessions[1].compiled.evalStep(params, toDevice(sessions[1], host, maskSeed(1, 1, 0)), 3);
    for (const key of Object.keys(ref.metrics) as (keyof typeof ref.metrics)[]) {
      const b = ref.metrics[key];
      assert.ok(Math.abs(got.metrics[key] - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: metric ${key}: webgpu ${got.metrics[key]} vs native ${b}`);
      assert.ok(Math.abs(evalGot[key] - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: webgpu evalStep ${key}: ${evalGot[key]} vs native gradStep ${b}`);
    }
    const gRef = new Map(namedLeaves(ref.grads));
    const gGot = new Map(namedLeaves(got.grads));
    assert.deepEqual([...gGot.keys()], [...gRef.keys()], `${what}: the gradient trees differ`);
    for (const [name, leaf] of gRef) {
      const e = relErr((await gGot.get(name)!.data()) as Float32Array, (await leaf.data()) as Float32Array);
      assert.ok(e <= 1e-4, `${what}: gradient ${name}: relative error ${e.toExponential(2)} > 1e-4`);
    }
    tree.dispose(params);
  } finally {
    sessions.forEach(disposeSession);
  }
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

describe("the sheet alone on the webgpu engine (the forward command's path)", { skip: "error" in gpu && !required ? `no WebGPU adapter: ${"error" in gpu ? gpu.error : ""}` : false }, () => {
  for (const [what, connectivity] of [["dense", { kind: "dense" }], ["sparse local K 4", { kind: "local", k: 4 }]] as const) {
    test(`nativeSheetApply on the WebGPU engine equals sheetApply on jax-js (${what}, 1e-5)`, async () => {
      await initEngine();
      const { config, geometry } = resolveSheetConfig({ geometry: { kind: "grid", height: 3, width: 3 }, dim: 8, qk_dim: 4, mlp_dim: 6, depth: 2, heads: 2, connectivity });
      const conn = connectivityK(config) === null ? null : resolveConnectivity(config, geometry);
      const params = initSheet(config, geometry, 4, conn);
      const x = Float32Array.from({ length: 2 * 9 * 8 }, (_, i) => Math.cos(i));
      const ref = sheetApply(tree.ref(params), np.array(x).reshape([2, 9, 8]), config, conn ? connectivityArray(conn) : undefined);
      const expected = { x: (await ref.x.data()) as Float32Array, attn: (await ref.attn.data()) as Float32Array };
      if (!("engine" in gpu)) throw new Error(gpu.error);
      const got = await nativeSheetApply(gpu.engine, params, x, 2, config, conn);
      tree.dispose(params);
      assert.ok(relErr(got.x, expected.x) <= 1e-5, `x: ${relErr(got.x, expected.x).toExponential(2)}`);
      assert.ok(relErr(got.attn, expected.attn) <= 1e-5, `attn: ${relErr(got.attn, expected.attn).toExponential(2)}`);
    });
  }
});

describe("webgpu and native backends compute the same training step", { skip: skipTraining }, () => {
  const cases: [string, Record<string, unknown>][] = [
    ["MIM, wiring L1 + activation penalty, final norm", { wiring: { lambda: 0.3 }, activation_sparsity: { coef: 0.2 }, vision: { final_norm: true } }],
    ["MIM, wiring cross-entropy, inject every, learned initial state", { wiring: { lambda: 0.2, form: "cross_entropy" }, vision: { inject: "every", learned_init_state: true, init_state_std: 0.1 } }],
    ["classification, spatial pooling, transformer switches", { vision: { task: "classify", pool: "spatial", learned_init_state: true, init_state_std: 0.5 }, sheet: { heads: 2, recurrent: false, untie_norm: false, untie_attn: false, untie_mlp: false, value_proj: true, attn_bias: false } }],
    ["MIM, sparse small world, 2 heads, value projections, no skip", { sheet: { heads: 2, value_proj: true, skip_attn: false, connectivity: { kind: "small_world", k_local: 2, k_long: 2, seed: 1 } }, wiring: { lambda: 0.2 } }],
    ["classification, communicability wiring cost with learned positions", { vision: { task: "classify" }, sheet: { learn_positions: true }, wiring: { lambda: 0.4, form: "communicability" } }],
    ["MIM, spatial correlation on a sparse local K 3 sheet", { sheet: { connectivity: { kind: "local", k: 3 } }, spatial_correlation: { coef: 0.5, neighbourhoods: 2, size: 3 }, wiring: { lambda: 0.2 } }],
  ];
  for (const [what, overrides] of cases) test(what, () => compareStep(overrides, what));
});

describe("the tiny preset trains the same on the webgpu and native backends", { skip: skipTraining }, () => {
  test("20 AdamW steps: equal losses, gradient norms and final state (1e-4 relative); webgpu's stays on the GPU", async (t) => {
    const config = parseTrainConfig({ ...PRESETS.tiny, batch_size: 8, steps: 20 });
    await prepareBackend("webgpu");
    const losses: number[][] = [];
    const norms: number[][] = [];
    const finals: Map<string, Float32Array>[] = [];
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
      const sheetBytes = 4 * namedLeaves(params.sheet).reduce((a, [, leaf]) => a + leaf.size, 0);
      const run: number[] = [];
      const runNorms: number[] = [];
      const start = Date.now();
      for (let step = 0; step < config.steps; step++) {
        const batch = toDevice(session, hostBatch(config, config.batch_size, 100 + step), maskSeed(config.seed, 1, step));
        if (step === 1) resetTraffic();
        await state.accumulate(batch, step);
        await state.update(config.optim.lr);
        const reading = await state.read();
        run.push(reading.metrics.loss);
        runNorms.push(reading.gradNorm);
        assert.ok(reading.finite);
        if (step === 1 && backend === "webgpu") {
          // the resident path: no parameter crossed (only images' states, cotangents and scalars)
          t.diagnostic(`webgpu step 2 traffic: ${JSON.stringify(traffic)}, the sheet's parameters are ${sheetBytes} bytes`);
          assert.ok(traffic.writtenBytes < sheetBytes && traffic.readBytes < sheetBytes, `step 2 moved ${traffic.writtenBytes} / ${traffic.readBytes} bytes, the sheet's parameters are ${sheetBytes}`);
          assert.equal(traffic.maps, 4, "forward, backward, norm, finite: one mapping each");
        }
      }
      t.diagnostic(`${backend}: ${((Date.now() - start) / config.steps).toFixed(0)} ms/step, loss ${run[0].toFixed(5)} -> ${run[19].toFixed(5)}`);
      losses.push(run);
      norms.push(runNorms);
      finals.push(await stateLeaves(state));
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
    let worstNorm = 0;
    for (let i = 0; i < 20; i++) worstNorm = Math.max(worstNorm, Math.abs(norms[1][i] - norms[0][i]) / norms[0][i]);
    assert.ok(worstNorm <= 1e-4, `gradient norms: relative ${worstNorm.toExponential(2)}`);
    const worstLeaf = compareLeaves(finals[1], finals[0], 1e-4, "webgpu vs native after 20 steps");
    t.diagnostic(`largest relative gradient-norm difference ${worstNorm.toExponential(2)}, final parameter/moment leaf ${worstLeaf.toExponential(2)}`);
  });
});

/** Every leaf of a train state's host view (current()): parameters, m and v, by name. */
async function stateLeaves(state: TrainState): Promise<Map<string, Float32Array>> {
  const { params, opt } = await state.current();
  const out = new Map<string, Float32Array>();
  for (const [prefix, t] of [["", params], ["mu.", opt.mu], ["nu.", opt.nu]] as const) {
    for (const [name, leaf] of namedLeaves(t)) out.set(`${prefix}${name}`, (await leaf.ref.data()) as Float32Array);
  }
  return out;
}

/** Assert every leaf of `got` is within `tol` (relErr) of `ref`; returns the largest error. */
function compareLeaves(got: Map<string, Float32Array>, ref: Map<string, Float32Array>, tol: number, what: string): number {
  assert.deepEqual([...got.keys()], [...ref.keys()], `${what}: the leaves differ`);
  let worst = 0;
  for (const [name, values] of ref) {
    const e = relErr(got.get(name)!, values);
    worst = Math.max(worst, e);
    assert.ok(e <= tol, `${what}: ${name}: relative error ${e.toExponential(2)} > ${tol}`);
  }
  return worst;
}

describe("webgpu's resident state equals its host path", { skip: "error" in gpu && !required ? `no WebGPU adapter: ${"error" in gpu ? gpu.error : ""}` : false }, () => {
  test("2 micro-batches, clipping and a consistency penalty over 3 steps: equal norms and state (1e-6); the traffic of each", async (t) => {
    const config = parseTrainConfig({
      sheet: { geometry: { kind: "stacked", widths: [2, 3, 2] }, dim: 8, qk_dim: 4, mlp_dim: 6, depth: 2 },
      vision: { image_size: 8, patch_size: 4, channels: 1, task: "mim" },
      data: { kind: "mnist" },
      batch_size: 3,
      accum_steps: 2,
      steps: 10,
      wiring: { lambda: 0.2 },
      consistency: { coef: 0.3, neighbours: 2 },
      optim: { lr: 1e-2, clip_norm: 0.05 },
    });
    await prepareBackend("webgpu");
    if (!("engine" in gpu)) throw new Error(gpu.error);
    const e = gpu.engine;
    const hostPath: SheetEngine = { createSheet: (c) => e.createSheet(c), adamw: (a) => e.adamw(a), sumSquares: (a) => e.sumSquares(a) };
    const session = createSession(config, { backend: "webgpu" });
    const compiled = [compileNative(session, hostPath, "webgpu"), session.compiled];
    const finals: Map<string, Float32Array>[] = [];
    const norms: number[][] = [];
    try {
      for (const [i, c] of compiled.entries()) {
        const params = perturb(initVision(session.sheet, config.vision, session.geometry, 2), 3);
        const state = await c.trainState(params, adamwInit(params), { adamw: adamwConfig({ ...config.optim, lr: config.optim.lr }), clipNorm: config.optim.clip_norm, noDecay: defaultNoDecay, lrScale: () => 1 });
        const run: number[] = [];
        for (let step = 0; step < 3; step++) {
          if (step === 1) resetTraffic();
          for (let micro = 0; micro < 2; micro++) await state.accumulate(toDevice(session, hostBatch(config, 3, 10 * step + micro), maskSeed(1, 1, step, micro)), step);
          await state.update(1e-2);
          const reading = await state.read();
          run.push(reading.gradNorm);
          assert.ok(reading.finite);
          if (step === 1) t.diagnostic(`${i === 0 ? "host path" : "resident"}: one step's traffic (2 micro-batches, consistency penalty on): ${JSON.stringify(traffic)}`);
        }
        norms.push(run);
        finals.push(await stateLeaves(state));
        state.dispose();
      }
    } finally {
      compiled[0].dispose();
      disposeSession(session);
    }
    assert.ok(norms[0].every((x) => x > 0.05), "the clip should be active in every step");
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(norms[1][i] - norms[0][i]) <= 1e-6 * norms[0][i], `step ${i + 1} gradient norm: resident ${norms[1][i]} vs host ${norms[0][i]}`);
    const worst = compareLeaves(finals[1], finals[0], 1e-6, "resident vs host path after 3 steps");
    t.diagnostic(`largest relative difference: norms ${Math.max(...norms[0].map((x, i) => Math.abs(norms[1][i] - x) / x)).toExponential(2)}, leaves ${worst.toExponential(2)}`);
  });
});
