/**
 * The WebGPU resident training state (src/engine/webgpu/resident.ts): AdamW on the GPU against
 * the host AdamW (native/adamw.cc's float32 arithmetic, host-optim.ts) and src/optim/adamw.ts on
 * jax-js over 4 steps with decayed and undecayed leaves and a gradient scale; the fixed-order sum
 * of squares of the accumulator against a float64 loop at sizes around the chunk and workgroup
 * sizes; accumulation of host gradients as float32 sums; the finiteness check; and what crosses
 * to the host. Needs an adapter: skips without one unless COLUMNFORMER_WEBGPU_REQUIRED=1.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { Rng } from "../src/data/index.ts";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, tree } from "../src/engine/jax.ts";
import { loadWebGPUEngine } from "../src/engine/webgpu/engine.ts";
import { hostAdamW } from "../src/engine/webgpu/host-optim.ts";
import { resetTraffic, traffic } from "../src/engine/webgpu/readback.ts";
import { adamwConfig, adamwInit, adamwUpdate } from "../src/optim/adamw.ts";
import { relErr } from "./sheet-reference.ts";

const required = process.env.COLUMNFORMER_WEBGPU_REQUIRED === "1";
const gpu = await loadWebGPUEngine();
const skip = "error" in gpu && !required ? `no WebGPU adapter: ${gpu.error}` : false;

before(async () => {
  await initEngine();
  if ("error" in gpu && required) throw new Error(`COLUMNFORMER_WEBGPU_REQUIRED=1 but ${gpu.error}`);
});

const engine = () => {
  if (!("engine" in gpu)) throw new Error(gpu.error);
  return gpu.engine;
};

describe("the WebGPU resident training state", { skip }, () => {
  test("AdamW on the GPU equals the host AdamW and src/optim/adamw.ts over 4 steps (decay on and off, gradScale 0.37)", async (t) => {
    const rng = new Rng(7);
    const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * s);
    const sizes = [1, 63, 64, 65, 5_000];
    const decay = [true, false, true, false, true];
    const wd = 0.1;
    const lr = 3e-3;
    const gradScale = 0.37;
    const start = sizes.map((n) => rand(n));
    const host = { params: start.map((p) => p.slice()), m: sizes.map((n) => new Float32Array(n)), v: sizes.map((n) => new Float32Array(n)) };
    const state = engine().resident(host);
    const cfg = adamwConfig({ lr, weight_decay: wd });
    const key = (i: number) => `l${i}`;
    let params: Record<string, np.Array> = Object.fromEntries(start.map((p, i) => [key(i), np.array(p.slice())]));
    let opt = adamwInit(params);
    const mask = Object.fromEntries(decay.map((d, i) => [key(i), d]));
    try {
      for (let step = 1; step <= 4; step++) {
        const grads = sizes.map((n) => rand(n, 2));
        const args = { lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: decay.map((d) => (d ? wd : 0)), step, gradScale };
        hostAdamW({ ...host, grads, ...args });
        await state.accumulate(grads);
        await state.adamw(args);
        const scaled = Object.fromEntries(grads.map((g, i) => [key(i), np.array(g).mul(gradScale)]));
        ({ params, state: opt } = adamwUpdate(params, scaled, opt, lr, cfg, mask));
      }
      const got = { params: sizes.map((n) => new Float32Array(n)), m: sizes.map((n) => new Float32Array(n)), v: sizes.map((n) => new Float32Array(n)) };
      await state.read(got);
      let worstHost = 0;
      let worstJax = 0;
      for (let i = 0; i < sizes.length; i++) {
        const jax = {
          params: (await params[key(i)].ref.data()) as Float32Array,
          m: (await opt.mu[key(i)].ref.data()) as Float32Array,
          v: (await opt.nu[key(i)].ref.data()) as Float32Array,
        };
        for (const k of ["params", "m", "v"] as const) {
          const eh = relErr(got[k][i], host[k][i]);
          const ej = relErr(got[k][i], jax[k]);
          worstHost = Math.max(worstHost, eh);
          worstJax = Math.max(worstJax, ej);
          assert.ok(eh <= 1e-6, `leaf ${i} ${k}: GPU vs host AdamW ${eh.toExponential(2)}`);
          assert.ok(ej <= 1e-6, `leaf ${i} ${k}: GPU vs src/optim/adamw.ts ${ej.toExponential(2)}`);
        }
        assert.ok(relErr(got.params[i], start[i]) > 1e-4, `leaf ${i} did not move`);
      }
      t.diagnostic(`largest relative error: vs host AdamW ${worstHost.toExponential(2)}, vs src/optim/adamw.ts ${worstJax.toExponential(2)}`);
      // adamw cleared the accumulator
      assert.equal(await state.gradSquares(), 0);
    } finally {
      state.dispose();
      tree.dispose([params, opt.mu, opt.nu]);
    }
  });

  test("the sum of squares of the accumulator equals a float64 loop (sizes around 64 and 4096), accumulation sums in float32", async (t) => {
    const rng = new Rng(3);
    const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
    let worst = 0;
    for (const sizes of [[1], [63], [64], [65], [4095], [4096], [4097], [262_145], [3, 4096, 1, 70_001, 64]]) {
      const zeros = () => sizes.map((n) => new Float32Array(n));
      const state = engine().resident({ params: sizes.map(rand), m: zeros(), v: zeros() });
      try {
        const g1 = sizes.map(rand);
        const g2 = sizes.map(rand);
        await state.accumulate(g1);
        await state.accumulate(g2);
        let expected = 0;
        g1.forEach((a, l) => {
          const sum = new Float32Array(a.length);
          for (let i = 0; i < a.length; i++) {
            sum[i] = a[i] + g2[l][i]; // the float32 sum the accumulator holds
            expected += sum[i] * sum[i];
          }
        });
        const got = await state.gradSquares();
        const e = Math.abs(got - expected) / expected;
        worst = Math.max(worst, e);
        assert.ok(e <= 1e-5, `sizes ${sizes}: GPU ${got} vs float64 ${expected} (relative ${e.toExponential(2)})`);
        assert.equal(await state.finite(), true);
      } finally {
        state.dispose();
      }
    }
    t.diagnostic(`largest relative error of the sum of squares: ${worst.toExponential(2)}`);
  });

  test("finite() sees a NaN or an infinity in any leaf; bad arguments throw", async () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const params = [new Float32Array(100), new Float32Array(5000)];
      params[1][4321] = bad;
      const state = engine().resident({ params, m: params.map((p) => new Float32Array(p.length)), v: params.map((p) => new Float32Array(p.length)) });
      try {
        assert.equal(await state.finite(), false, `${bad}`);
      } finally {
        state.dispose();
      }
    }
    assert.throws(() => engine().resident({ params: [new Float32Array(3)], m: [new Float32Array(2)], v: [new Float32Array(3)] }), /m must be one Float32Array per parameter leaf/);
    const state = engine().resident({ params: [new Float32Array(3)], m: [new Float32Array(3)], v: [new Float32Array(3)] });
    await assert.rejects(state.accumulate([new Float32Array(2)]), /one Float32Array per leaf/);
    const notWebGPU = { forward: () => Promise.reject(new Error("unreachable")), backward: () => undefined, dispose: () => undefined };
    await assert.rejects(state.forward(notWebGPU, { x0: new Float32Array(1), drive: null, connectivity: null, wiringWeights: null, batch: 1, train: false, attn: null }), /runs only WebGPU sheets/);
    await assert.rejects(state.adamw({ lr: 1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: [], step: 1 }), /weightDecay must be an array with one number per leaf/);
    state.dispose();
    await assert.rejects(state.gradSquares(), /disposed/);
  });

  test("an update moves one float per norm and a few scalars per AdamW; read() maps once", async () => {
    const sizes = [10_000, 300];
    const zeros = () => sizes.map((n) => new Float32Array(n));
    const state = engine().resident({ params: sizes.map((n) => new Float32Array(n).fill(0.5)), m: zeros(), v: zeros() });
    try {
      await state.accumulate(sizes.map((n) => new Float32Array(n).fill(1)));
      resetTraffic();
      assert.equal(await state.gradSquares(), 10_300);
      await state.adamw({ lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: [0.1, 0], step: 1 });
      assert.ok(await state.finite());
      assert.deepEqual(traffic, { writes: 1, writtenBytes: 4 * (9 + 2), submits: 3, maps: 2, readBytes: 8 });
      const host = { params: zeros(), m: zeros(), v: zeros() };
      await state.read(host);
      assert.equal(traffic.maps, 3);
      // one step of AdamW from m = v = 0 moves every parameter by lr (the decayed leaf first shrinks by 1 - lr wd)
      assert.ok(Math.abs(host.params[0][0] - (0.5 * (1 - 0.01) - 0.1)) < 1e-6, `${host.params[0][0]}`);
      assert.ok(Math.abs(host.params[1][0] - (0.5 - 0.1)) < 1e-6, `${host.params[1][0]}`);
    } finally {
      state.dispose();
    }
  });
});
