/**
 * The WebGPU engine's host AdamW and sum of squares (src/engine/webgpu/host-optim.ts: what it
 * runs when the native addon is not built) against src/optim/adamw.ts on jax-js over 3 steps
 * with decayed and undecayed leaves and a gradient scale, and against the addon's when it is
 * built; the sum of squares against a loop in double. No GPU needed.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, tree } from "../src/engine/jax.ts";
import { loadNativeSheet } from "../src/engine/native-sheet.ts";
import { hostAdamW, hostSumSquares } from "../src/engine/webgpu/host-optim.ts";
import { Rng } from "../src/data/index.ts";
import { adamwConfig, adamwInit, adamwUpdate } from "../src/optim/adamw.ts";
import { relErr } from "./sheet-reference.ts";

before(async () => {
  await initEngine();
});

test("host AdamW equals src/optim/adamw.ts (1e-6) and the addon's AdamW over 3 steps", async () => {
  const rng = new Rng(4);
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
  const sizes = [5_000, 13];
  const start = sizes.map(rand);
  const fresh = () => ({ params: start.map((p) => p.slice()), m: sizes.map((n) => new Float32Array(n)), v: sizes.map((n) => new Float32Array(n)) });
  const host = fresh();
  const viaAddon = fresh();
  const native = loadNativeSheet();
  let params: Record<string, np.Array> = { w: np.array(start[0].slice()), b: np.array(start[1].slice()) };
  let opt = adamwInit(params);
  const cfg = adamwConfig({ lr: 3e-3, weight_decay: 0.1 });
  const gradScale = 0.5;
  for (let step = 1; step <= 3; step++) {
    const grads = sizes.map(rand);
    const args = { lr: 3e-3, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: [0.1, 0], step, gradScale };
    hostAdamW({ ...host, grads, ...args });
    if ("addon" in native) native.addon.adamw({ ...viaAddon, grads, ...args });
    const scaled = { w: np.array(grads[0]).mul(gradScale), b: np.array(grads[1]).mul(gradScale) };
    ({ params, state: opt } = adamwUpdate(params, scaled, opt, 3e-3, cfg, { w: true, b: false }));
  }
  const expected = [(await params.w.data()) as Float32Array, (await params.b.data()) as Float32Array];
  for (let i = 0; i < 2; i++) {
    assert.ok(relErr(host.params[i], expected[i]) <= 1e-6, `leaf ${i}: ${relErr(host.params[i], expected[i])}`);
    assert.ok(relErr(host.params[i], start[i]) > 1e-4, `leaf ${i} did not move`);
    if ("addon" in native) assert.ok(relErr(host.params[i], viaAddon.params[i]) <= 1e-6, `leaf ${i} differs from the addon's AdamW`);
  }
  tree.dispose([opt.mu, opt.nu]);
  assert.throws(() => hostAdamW({ ...host, grads: [new Float32Array(3)], lr: 1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: [0, 0], step: 1 }), /grads has 1 leaves/);
});

test("host sumSquares is the sum of squares in double", () => {
  const a = Float32Array.from({ length: 20_001 }, (_, i) => Math.sin(i) * 3);
  let expected = 14;
  for (const x of a) expected += x * x;
  assert.ok(Math.abs(hostSumSquares([a, Float32Array.of(1, 2, 3)]) - expected) <= 1e-12 * expected);
  assert.throws(() => hostSumSquares([new Float64Array(3) as unknown as Float32Array]), /must be Float32Arrays/);
});
