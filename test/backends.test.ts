/**
 * The two backends of the compiled model (src/train/compiled.ts) compute the same training
 * step: the native one chains jax-js front end -> native sheet -> jax-js readout, the jax one is
 * the whole objective under jit(valueAndGrad) (the reference). Same parameters, same batch:
 * metrics and every parameter gradient must agree, for both tasks and every research lever
 * that touches the step (sparse sheets, inject every, learned initial state and positions,
 * feature consistency, wiring cost forms including communicability, activation penalty,
 * spatial correlation, topo blur). Then the tiny preset trains
 * 20 steps on both backends to the same losses, and encode / predictPatches agree.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, tree } from "../src/engine/jax.ts";
import { loadNativeSheet } from "../src/engine/native-sheet.ts";
import { initVision, type VisionParams } from "../src/model/vision.ts";
import { namedLeaves } from "../src/engine/param-tree.ts";
import { parseTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { PRESETS } from "../src/train/presets.ts";
import { createSession, disposeSession, maskSeed, type Session, toDevice } from "../src/train/session.ts";
import type { ImageBatch } from "../src/data/index.ts";
import { Rng } from "../src/data/index.ts";
import { adamwConfig, adamwInit, adamwUpdate, decayMaskFor, defaultNoDecay } from "../src/optim/adamw.ts";

const native = loadNativeSheet();
const skip = "addon" in native ? false : process.env.CI ? false : `native addon not built: ${native.error}`;

before(async () => {
  await initEngine();
  if (!("addon" in native) && process.env.CI) throw new Error(`CI must build the native addon: ${native.error}`);
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
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

async function compareStep(overrides: Record<string, unknown>, what: string): Promise<void> {
  const base = {
    sheet: { geometry: { kind: "stacked", widths: [2, 3, 2] }, dim: 8, qk_dim: 4, mlp_dim: 6, depth: 3 },
    vision: { image_size: 8, patch_size: 4, channels: 1, task: "mim", num_classes: 3 },
    data: { kind: "mnist" },
    batch_size: 4,
    steps: 10,
  };
  const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = v && typeof v === "object" && !Array.isArray(v) && typeof a[k] === "object" ? merge(a[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
    return out;
  };
  const config = parseTrainConfig(merge(base, overrides));
  const sessions: Session[] = [createSession(config, { backend: "jax" }), createSession(config, { backend: "native" })];
  assert.deepEqual(sessions.map((s) => s.compiled.backend), ["jax", "native"]);
  try {
    const params = perturb(initVision(sessions[0].sheet, config.vision, sessions[0].geometry, 3, sessions[0].connectivity), 11);
    const host = hostBatch(config, config.batch_size, 5);
    const results = [];
    for (const s of sessions) results.push(await s.compiled.gradStep(params, toDevice(s, host, maskSeed(1, 1, 0)), 3));
    const [ref, nat] = results;
    for (const key of Object.keys(ref.metrics) as (keyof typeof ref.metrics)[]) {
      const a = nat.metrics[key];
      const b = ref.metrics[key];
      assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: metric ${key}: native ${a} vs jax ${b}`);
    }
    // evaluation (no gradient) reports the same metrics as the training step
    for (const [i, s] of sessions.entries()) {
      const m = await s.compiled.evalStep(params, toDevice(s, host, maskSeed(1, 1, 0)), 3);
      for (const key of Object.keys(m) as (keyof typeof m)[]) {
        const b = results[i].metrics[key];
        assert.ok(Math.abs(m[key] - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: ${s.backend} evalStep ${key}: ${m[key]} vs gradStep ${b}`);
      }
    }
    const gRef = new Map(namedLeaves(ref.grads));
    const gNat = new Map(namedLeaves(nat.grads));
    assert.deepEqual([...gNat.keys()], [...gRef.keys()], `${what}: the gradient trees differ`);
    for (const [name, leaf] of gRef) {
      const a = (await gNat.get(name)!.data()) as Float32Array;
      const b = (await leaf.data()) as Float32Array;
      const e = relErr(a, b);
      assert.ok(e <= 1e-4, `${what}: gradient ${name}: relative error ${e.toExponential(2)} > 1e-4`);
    }
    tree.dispose(params);
  } finally {
    sessions.forEach(disposeSession);
  }
}

describe("native and jax backends compute the same training step", { skip }, () => {
  const cases: [string, Record<string, unknown>][] = [
    ["MIM, default Columnformer", {}],
    ["MIM, wiring L1 + activation penalty, final norm", { wiring: { lambda: 0.3 }, activation_sparsity: { coef: 0.2 }, vision: { final_norm: true } }],
    ["MIM, wiring cross-entropy, inject every, learned initial state", { wiring: { lambda: 0.2, form: "cross_entropy" }, vision: { inject: "every", learned_init_state: true, init_state_std: 0.1 } }],
    ["classification, average pooling, final norm", { vision: { task: "classify", final_norm: true }, wiring: { lambda: 0.1 } }],
    // a transformer needs its position embedding (learned initial state): without it, tied columns are identical and the pooling gradient is 0 up to rounding
    ["classification, spatial pooling, transformer switches", { vision: { task: "classify", pool: "spatial", learned_init_state: true, init_state_std: 0.5 }, sheet: { heads: 2, recurrent: false, untie_norm: false, untie_attn: false, untie_mlp: false, value_proj: true, attn_bias: false } }],
    ["MIM, sparse local K 3, wiring", { sheet: { connectivity: { kind: "local", k: 3 } }, wiring: { lambda: 0.5 } }],
    ["MIM, sparse small world, 2 heads, value projections, no skip", { sheet: { heads: 2, value_proj: true, skip_attn: false, connectivity: { kind: "small_world", k_local: 2, k_long: 2, seed: 1 } }, wiring: { lambda: 0.2 } }],
    ["MIM, feature consistency", { consistency: { coef: 0.5, neighbours: 2 } }],
    ["MIM, learned positions with wiring and repulsion", { sheet: { learn_positions: true }, wiring: { lambda: 0.4 } }],
    ["MIM, communicability wiring cost (seRNN)", { wiring: { lambda: 0.3, form: "communicability", p: 2 } }],
    ["classification, communicability wiring cost with learned positions", { vision: { task: "classify" }, sheet: { learn_positions: true }, wiring: { lambda: 0.4, form: "communicability" } }],
    ["MIM, spatial correlation (TDANN)", { spatial_correlation: { coef: 0.5, neighbourhoods: 3, size: 4 } }],
    ["classification, spatial correlation, inject every, learned positions", { vision: { task: "classify", inject: "every" }, sheet: { learn_positions: true }, spatial_correlation: { coef: 0.7, neighbourhoods: 2, size: 9 }, wiring: { lambda: 0.1 } }],
    ["MIM, spatial correlation on a sparse local K 3 sheet", { sheet: { connectivity: { kind: "local", k: 3 } }, spatial_correlation: { coef: 0.5, neighbourhoods: 2, size: 3 }, wiring: { lambda: 0.2 } }],
    ["MIM, topo blur (gaussian) with feature consistency", { topo_blur: { coef: 0.5, sigma: 0.8 }, consistency: { coef: 0.3, neighbours: 2 } }],
    ["classification, topo blur (resample), a stack of 2 heads with value projections", { vision: { task: "classify" }, sheet: { recurrent: false, heads: 2, value_proj: true }, topo_blur: { coef: 0.6, kernel: "resample", factor: 2 } }],
  ];
  for (const [what, overrides] of cases) test(what, () => compareStep(overrides, what));
});

describe("the tiny preset trains the same on both backends", { skip }, () => {
  test("20 AdamW steps end with equal losses (1e-4)", async () => {
    const config = parseTrainConfig({ ...PRESETS.tiny, batch_size: 8, steps: 20 });
    const losses: number[][] = [];
    for (const backend of ["jax", "native"] as const) {
      const session = createSession(config, { backend });
      let params = initVision(session.sheet, config.vision, session.geometry, config.seed);
      let opt = adamwInit(params);
      const mask = decayMaskFor(params);
      const optim = adamwConfig({ ...config.optim, lr: config.optim.lr });
      const run: number[] = [];
      for (let step = 0; step < config.steps; step++) {
        const batch = toDevice(session, hostBatch(config, config.batch_size, 100 + step), maskSeed(config.seed, 1, step));
        const { metrics, grads } = await session.compiled.gradStep(params, batch, step);
        run.push(metrics.loss);
        ({ params, state: opt } = adamwUpdate(params, grads, opt, config.optim.lr, optim, mask));
      }
      losses.push(run);
      tree.dispose([params, opt.mu, opt.nu]);
      disposeSession(session);
    }
    const [jax, nat] = losses;
    assert.ok(jax[19] < jax[0], `the loss should fall: ${jax[0]} -> ${jax[19]}`);
    for (let i = 0; i < 20; i++) assert.ok(Math.abs(nat[i] - jax[i]) <= 1e-4 * Math.abs(jax[i]), `step ${i + 1}: native ${nat[i]} vs jax ${jax[i]}`);
  });

  test("encode (states and attention) and predictPatches agree", async () => {
    const config = parseTrainConfig({ ...PRESETS.tiny, batch_size: 4 });
    const sessions = [createSession(config, { backend: "jax" }), createSession(config, { backend: "native" })];
    const params = perturb(initVision(sessions[0].sheet, config.vision, sessions[0].geometry, 1), 2);
    const host = hostBatch(config, 3, 9);
    const out = [];
    for (const s of sessions) {
      const images = () => np.array(host.images).reshape([3, 28, 28, 1]);
      const all = await s.compiled.encode(params, images(), { columns: "all", attention: true });
      const outputArea = await s.compiled.encode(params, images());
      const batch = toDevice(s, host, 7);
      assert.ok(batch.mask, "a MIM batch has a mask");
      const pred = await s.compiled.predictPatches(params, batch.images, batch.mask);
      out.push({ all, outputArea, pred });
    }
    const [ref, nat] = out;
    assert.ok(relErr(nat.all.states, ref.all.states) <= 1e-5, "states of all columns");
    assert.ok(relErr(nat.all.attention!, ref.all.attention!) <= 1e-5, "attention");
    assert.ok(relErr(nat.outputArea.states, ref.outputArea.states) <= 1e-5, "output-area states");
    assert.equal(nat.outputArea.attention, null);
    assert.ok(relErr(nat.pred, ref.pred) <= 1e-5, "predicted patches");
    tree.dispose(params);
    sessions.forEach(disposeSession);
  });
});

describe("memory of the native training step", { skip }, () => {
  /** After a full garbage collection (the test command passes --expose-gc): RSS, and live JS memory (heap + external buffers). */
  const settled = (): { rss: number; live: number } => {
    const gc = (globalThis as { gc?: () => void }).gc;
    assert.ok(gc, "run with node --expose-gc");
    gc();
    const m = process.memoryUsage();
    return { rss: m.rss, live: m.heapUsed + m.external };
  };
  /**
   * Growth (MiB) over the smallest of 3 windows of 200 native gradSteps + AdamW updates, after 400
   * warm-up steps (the Wasm heap and allocator settle over the first few hundred): 1,000 steps in
   * all. `live` (JS heap + external buffers after a GC) is exact accounting of what is still
   * referenced; RSS also sees the Wasm heap and the addon's buffers, but allocator retention and
   * parallel test files move it (+-30 MiB in a window was seen). With `leak`, a 512 KiB host copy
   * of a gradient is kept per step (100 MiB a window): the positive control.
   */
  async function growthMiB(leak: boolean): Promise<{ rss: number; live: number }> {
    const config = parseTrainConfig({
      sheet: { geometry: { kind: "stacked", widths: [4, 4, 4] }, dim: 16, qk_dim: 8, mlp_dim: 16, depth: 2 },
      vision: { image_size: 16, patch_size: 4, channels: 1, task: "mim" },
      data: { kind: "mnist" },
      batch_size: 4,
      wiring: { lambda: 0.1 },
    });
    const session = createSession(config, { backend: "native" });
    let params = initVision(session.sheet, config.vision, session.geometry, 0);
    let opt = adamwInit(params);
    const mask = decayMaskFor(params);
    const optim = adamwConfig({ lr: 1e-3 });
    const host = hostBatch(config, 4, 1);
    const kept: Float32Array[] = [];
    const step = async (i: number) => {
      const { grads } = await session.compiled.gradStep(params, toDevice(session, host, i), i);
      if (leak) {
        const copy = new Float32Array(128 * 1024).fill(1); // every page touched, so resident
        copy.set((await grads.sheet.mlp.fc2.weight.ref.data()) as Float32Array);
        kept.push(copy);
      }
      ({ params, state: opt } = adamwUpdate(params, grads, opt, 1e-3, optim, mask));
    };
    for (let i = 0; i < 400; i++) await step(i);
    const smallest = { rss: Infinity, live: Infinity };
    for (let w = 0; w < 3; w++) {
      const before = settled();
      for (let i = 0; i < 200; i++) await step(i);
      await params.sheet.mlp.fc2.weight.ref.data();
      const after = settled();
      smallest.rss = Math.min(smallest.rss, (after.rss - before.rss) / 2 ** 20);
      smallest.live = Math.min(smallest.live, (after.live - before.live) / 2 ** 20);
    }
    tree.dispose([params, opt.mu, opt.nu]);
    disposeSession(session);
    return smallest;
  }

  test("flat over 1,000 steps (smallest growth of 3 windows of 200)", async () => {
    const growth = await growthMiB(false);
    // the positive control below keeps 100 MiB in every window of the same steps
    assert.ok(growth.live < 8, `live JS memory grew ${growth.live.toFixed(1)} MiB over 200 native steps in every window`);
    assert.ok(growth.rss < 60, `RSS grew ${growth.rss.toFixed(1)} MiB over 200 native steps in every window`);
  });

  test("the check detects a leak (positive control: 512 KiB kept per step)", async () => {
    const growth = await growthMiB(true);
    assert.ok(growth.live > 90, `a 100 MiB leak per window was expected in live memory, it grew ${growth.live.toFixed(1)} MiB`);
    assert.ok(growth.rss > 60, `a 100 MiB leak per window was expected to show in RSS, it grew ${growth.rss.toFixed(1)} MiB`);
  });
});

describe("the addon's AdamW and sum of squares", { skip }, () => {
  test("AdamW equals src/optim/adamw.ts over 3 steps (decayed and undecayed leaves, 1e-6)", async () => {
    const addon = ("addon" in native ? native.addon : null)!;
    const rng = new Rng(4);
    const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
    const sizes = [70_000, 13]; // one leaf over a task chunk (65,536), one tiny
    const host = { params: sizes.map(rand), m: sizes.map((n) => new Float32Array(n)), v: sizes.map((n) => new Float32Array(n)) };
    let params: Record<string, np.Array> = { w: np.array(host.params[0].slice()), b: np.array(host.params[1].slice()) };
    let opt = adamwInit(params);
    const cfg = adamwConfig({ lr: 3e-3, weight_decay: 0.1 });
    const mask = { w: true, b: false };
    for (let step = 1; step <= 3; step++) {
      const grads = sizes.map(rand);
      addon.adamw({ ...host, grads, lr: 3e-3, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: [0.1, 0], step });
      ({ params, state: opt } = adamwUpdate(params, { w: np.array(grads[0]), b: np.array(grads[1]) }, opt, 3e-3, cfg, mask));
    }
    const expected = [(await params.w.data()) as Float32Array, (await params.b.data()) as Float32Array];
    for (let i = 0; i < 2; i++) assert.ok(relErr(host.params[i], expected[i]) <= 1e-6, `leaf ${i}: ${relErr(host.params[i], expected[i])}`);
    tree.dispose([opt.mu, opt.nu]);
  });

  test("sumSquares is the sum of squares in double", () => {
    const addon = ("addon" in native ? native.addon : null)!;
    const a = Float32Array.from({ length: 200_001 }, (_, i) => Math.sin(i) * 3);
    const b = Float32Array.of(1, 2, 3);
    let expected = 0;
    for (const x of a) expected += x * x;
    expected += 14;
    assert.ok(Math.abs(addon.sumSquares([a, b]) - expected) <= 1e-9 * expected);
    assert.throws(() => addon.sumSquares([new Float64Array(3) as unknown as Float32Array]), /must be a Float32Array/);
  });
});

describe("the optimiser state of each backend (train-state.ts)", { skip }, () => {
  test("native (sheet on the host, addon AdamW) and jax train states take the same steps: accumulation, clipping, consistency, learned positions", async () => {
    const config = parseTrainConfig({
      sheet: { geometry: { kind: "stacked", widths: [2, 3, 2] }, dim: 8, qk_dim: 4, mlp_dim: 6, depth: 2, learn_positions: true },
      vision: { image_size: 8, patch_size: 4, channels: 1, task: "mim" },
      data: { kind: "mnist" },
      batch_size: 3,
      accum_steps: 2,
      steps: 10,
      wiring: { lambda: 0.2 },
      consistency: { coef: 0.3, neighbours: 2 },
      optim: { lr: 1e-2, clip_norm: 0.05 },
    });
    const finals: Map<string, Float32Array>[] = [];
    const norms: number[][] = [];
    for (const backend of ["jax", "native"] as const) {
      const session = createSession(config, { backend });
      const params = perturb(initVision(session.sheet, config.vision, session.geometry, 2), 3);
      const state = await session.compiled.trainState(params, adamwInit(params), {
        adamw: adamwConfig({ ...config.optim, lr: config.optim.lr }),
        clipNorm: config.optim.clip_norm,
        noDecay: defaultNoDecay,
        lrScale: (path) => (path === "positions" ? 10 : 1),
      });
      const run: number[] = [];
      for (let step = 0; step < 4; step++) {
        for (let micro = 0; micro < 2; micro++) await state.accumulate(toDevice(session, hostBatch(config, 3, 10 * step + micro), maskSeed(1, 1, step, micro)), step);
        await state.update(1e-2);
        const reading = await state.read();
        assert.equal(reading.steps, 1);
        assert.ok(reading.finite);
        run.push(reading.gradNorm);
      }
      const { params: p, opt } = await state.current();
      assert.equal(opt.step, 4);
      const leaves = new Map<string, Float32Array>();
      for (const [name, leaf] of [...namedLeaves(p), ...namedLeaves(opt.nu).map(([k, v]) => [`nu.${k}`, v] as [string, np.Array])]) leaves.set(name, (await leaf.ref.data()) as Float32Array);
      finals.push(leaves);
      norms.push(run);
      state.dispose();
      disposeSession(session);
    }
    const [ref, nat] = finals;
    assert.deepEqual([...nat.keys()], [...ref.keys()]);
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(norms[1][i] - norms[0][i]) <= 1e-4 * norms[0][i], `step ${i + 1} gradient norm: native ${norms[1][i]} vs jax ${norms[0][i]}`);
    assert.ok(norms[0].every((x) => x > 0.05), "the clip should be active in every step");
    for (const [name, values] of ref) {
      const e = relErr(nat.get(name)!, values);
      assert.ok(e <= 1e-4, `${name} after 4 steps: relative error ${e.toExponential(2)}`);
    }
  });
});
