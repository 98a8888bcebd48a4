import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { blockUntilReady, numpy as np } from "../src/engine/jax.ts";
import { initEngine } from "../src/engine/engine.ts";
import {
  ADAMW_DEFAULTS,
  adamwCompileCount,
  adamwConfig,
  adamwInit,
  adamwUpdate,
  decayMaskFor,
  defaultNoDecay,
  type AdamWConfig,
  type AdamWState,
} from "../src/optim/adamw.ts";
import { constantSchedule, cosineSchedule } from "../src/optim/schedule.ts";
import { clipByGlobalNorm, globalNorm } from "../src/optim/clip.ts";

before(async () => {
  await initEngine();
});

/** Read an array to a plain number list (consumes it). */
async function read(a: np.Array): Promise<number[]> {
  return Array.from(await a.data(), Number);
}

function assertClose(actual: number[], expected: number[], what: string, rtol = 1e-5, atol = 1e-7): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((a, i) => {
    const e = expected[i];
    assert.ok(Math.abs(a - e) <= atol + rtol * Math.abs(e), `${what}[${i}]: got ${a}, expected ${e}`);
  });
}

// --- Naive scalar reference (plain JS, float64, independent of jax-js) ------

interface RefConfig {
  b1: number;
  b2: number;
  eps: number;
  wd: number;
}

/** PyTorch AdamW, one element at a time. Returns p, m, v after every step. */
function refAdamW(
  p0: number[],
  grads: number[][],
  lrs: number[],
  c: RefConfig,
  decay: boolean,
): { p: number[]; m: number[]; v: number[] }[] {
  const p = [...p0];
  const m = p0.map(() => 0);
  const v = p0.map(() => 0);
  const out: { p: number[]; m: number[]; v: number[] }[] = [];
  for (let t = 1; t <= grads.length; t++) {
    const lr = lrs[t - 1];
    for (let i = 0; i < p.length; i++) {
      const g = grads[t - 1][i];
      if (decay) p[i] = p[i] - lr * c.wd * p[i];
      m[i] = c.b1 * m[i] + (1 - c.b1) * g;
      v[i] = c.b2 * v[i] + (1 - c.b2) * g * g;
      const mhat = m[i] / (1 - c.b1 ** t);
      const vhat = v[i] / (1 - c.b2 ** t);
      p[i] = p[i] - (lr * mhat) / (Math.sqrt(vhat) + c.eps);
    }
    out.push({ p: [...p], m: [...m], v: [...v] });
  }
  return out;
}

type Toy = { layer: { weight: np.Array; bias: np.Array } };

describe("AdamW", () => {
  const cfg: AdamWConfig = adamwConfig({ lr: 0.01, weight_decay: 0.1 });
  const rc: RefConfig = { b1: cfg.beta1, b2: cfg.beta2, eps: cfg.eps, wd: cfg.weight_decay };
  const w0 = [1.0, -2.0, 0.5, 3.0, -0.25, 0.0];
  const b0 = [0.1, -0.3, 0.0];
  const gw = [
    [0.5, -1.0, 2.0, 0.0, 0.125, -3.0],
    [-0.5, 0.25, 1.0, 0.75, -2.0, 0.0],
  ];
  const gb = [
    [0.5, 0.0, -4.0],
    [-0.25, 1.5, -4.0],
  ];
  const lrs = [0.01, 0.005]; // lr changes between steps (as from a schedule)

  function toy(w: number[], b: number[]): Toy {
    return { layer: { weight: np.array(w).reshape([2, 3]), bias: np.array(b) } };
  }

  test("defaults and config validation", () => {
    assert.deepEqual({ ...ADAMW_DEFAULTS }, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.05 });
    assert.equal(adamwConfig({ lr: 1e-3 }).beta2, 0.95);
    assert.throws(() => adamwConfig({ lr: 1e-3, beta1: 1 }), RangeError);
    assert.throws(() => adamwConfig({ lr: 1e-3, weight_decay: -1 }), RangeError);
  });

  test("two steps match a hand-written scalar reference (decayed weight, undecayed bias)", async () => {
    let params = toy(w0, b0);
    const mask = decayMaskFor(params);
    assert.deepEqual(mask, { layer: { weight: true, bias: false } });
    let state: AdamWState<Toy> = adamwInit(params);
    assert.equal(state.step, 0);
    assert.equal(params.layer.weight.refCount, 1, "adamwInit borrows params");
    const refW = refAdamW(w0, gw, lrs, rc, true);
    const refB = refAdamW(b0, gb, lrs, rc, false);

    for (let s = 0; s < 2; s++) {
      const grads = toy(gw[s], gb[s]);
      const old = params;
      ({ params, state } = adamwUpdate(params, grads, state, lrs[s], cfg, mask));
      assert.equal(state.step, s + 1);
      assert.equal(old.layer.weight.refCount, 0, "old params consumed");
      assert.equal(grads.layer.bias.refCount, 0, "grads consumed");

      assertClose(await read(params.layer.weight.ref), refW[s].p, `step ${s + 1} weight`);
      assertClose(await read(params.layer.bias.ref), refB[s].p, `step ${s + 1} bias`);
      assertClose(await read(state.mu.layer.weight.ref), refW[s].m, `step ${s + 1} mu`);
      assertClose(await read(state.nu.layer.bias.ref), refB[s].v, `step ${s + 1} nu`);
    }
    // Hand-computed literals for single elements.
    // Step 1, bias[0] (no decay), g = 0.5, lr = 0.01: mhat = 0.5, vhat = 0.25 -> p = 0.1 - 0.01 = 0.09.
    // (Without bias correction it would be 0.1 - 0.01 * 0.05 / sqrt(0.0125) = 0.09553.)
    assertClose([refB[0].p[0]], [0.09], "ref step 1 bias[0]", 0, 1e-9);
    // Step 1, weight[0] (decay): 1 - 0.01 * 0.1 * 1 = 0.999, then - 0.01 -> 0.989.
    assertClose([refW[0].p[0]], [0.989], "ref step 1 weight[0]", 0, 1e-9);
    // Step 2, bias[0], g = -0.25, lr = 0.005: m = 0.02, v = 0.015, mhat = 0.02 / 0.19,
    // vhat = 0.015 / 0.0975 -> p = 0.09 - 0.005 * 0.1052632 / 0.3922323 = 0.0886581528.
    assertClose([refB[1].p[0]], [0.0886581528], "ref step 2 bias[0]", 0, 1e-9);
    const bias = await read(params.layer.bias);
    assertClose([bias[0]], [0.0886581528], "jax step 2 bias[0]");
    // Zero gradient and zero moments give a zero Adam step (eps keeps it finite).
    assertClose([bias[1]], [refB[1].p[1]], "bias[1]");
    const weight = await read(params.layer.weight);
    assert.ok(weight.every(Number.isFinite));
    for (const t of [state.mu, state.nu]) for (const a of [t.layer.weight, t.layer.bias]) a.dispose();
  });

  test("changing lr or step does not recompile", async () => {
    let params = toy(w0, b0);
    const mask = decayMaskFor(params);
    let state = adamwInit(params);
    ({ params, state } = adamwUpdate(params, toy(gw[0], gb[0]), state, 0.01, cfg, mask));
    const compiled = adamwCompileCount();
    for (let s = 0; s < 6; s++) {
      ({ params, state } = adamwUpdate(params, toy(gw[1], gb[1]), state, 0.001 * (s + 1), cfg, mask));
    }
    await read(params.layer.weight.ref);
    assert.equal(adamwCompileCount(), compiled);
    for (const a of [params.layer.weight, params.layer.bias, state.mu.layer.weight, state.mu.layer.bias]) a.dispose();
    for (const a of [state.nu.layer.weight, state.nu.layer.bias]) a.dispose();
  });

  test("mismatched trees throw without consuming anything", () => {
    const params = toy(w0, b0);
    const state = adamwInit(params);
    const bad = { layer: { weight: np.zeros([2, 3]) } } as unknown as Toy;
    assert.throws(() => adamwUpdate(params, bad, state, 0.01, cfg, decayMaskFor(params)), TypeError);
    const wrongShape = { layer: { weight: np.zeros([3, 2]), bias: np.zeros([3]) } };
    assert.throws(() => adamwUpdate(params, wrongShape, state, 0.01, cfg, decayMaskFor(params)), TypeError);
    assert.throws(() => adamwUpdate(params, toy(w0, b0), state, 0.01, cfg, { layer: true }), TypeError);
    assert.equal(params.layer.weight.refCount, 1);
    assert.equal(state.mu.layer.weight.refCount, 1);
    for (const a of [params.layer.weight, params.layer.bias, bad.layer.weight, wrongShape.layer.weight]) a.dispose();
    wrongShape.layer.bias.dispose();
    for (const t of [state.mu, state.nu]) for (const a of [t.layer.weight, t.layer.bias]) a.dispose();
  });
});

describe("decay mask", () => {
  test("default rule on a sample tree", () => {
    const z = (...shape: number[]) => np.zeros(shape);
    const params = {
      patch_embed: { weight: z(8, 48), bias: z(8) },
      pos_embed: z(16),
      sheet: {
        norm1: { weight: z(4, 8), bias: z(4, 8) },
        attn: { q: { weight: z(4, 8, 8), bias: z(4, 8) }, attn_bias: z(2, 4, 4) },
        mlp: { fc1: { weight: z(4, 16, 8), bias: z(4, 16) } },
      },
      layers: [{ weight: z(3, 3) }],
    };
    const mask = decayMaskFor(params, defaultNoDecay);
    assert.deepEqual(mask, {
      patch_embed: { weight: true, bias: false },
      pos_embed: false,
      sheet: {
        norm1: { weight: false, bias: false },
        attn: { q: { weight: true, bias: false }, attn_bias: false },
        mlp: { fc1: { weight: true, bias: false } },
      },
      layers: [{ weight: true }],
    });
    const seen: string[] = [];
    decayMaskFor(params, (path, shape) => {
      seen.push(`${path}:${shape.length}`);
      return false;
    });
    assert.deepEqual(seen, [
      "patch_embed.weight:2",
      "patch_embed.bias:1",
      "pos_embed:1",
      "sheet.norm1.weight:2",
      "sheet.norm1.bias:2",
      "sheet.attn.q.weight:3",
      "sheet.attn.q.bias:2",
      "sheet.attn.attn_bias:3",
      "sheet.mlp.fc1.weight:3",
      "sheet.mlp.fc1.bias:2",
      "layers.0.weight:2",
    ]);
    assert.equal(defaultNoDecay("sheet.norm_out.scale", [4, 8]), true);
    assert.equal(defaultNoDecay("sheet.attn.k.weight", [4, 8, 8]), false);
    assert.equal(defaultNoDecay("x", []), true);
    const leaves: np.Array[] = [
      params.patch_embed.weight, params.patch_embed.bias, params.pos_embed,
      params.sheet.norm1.weight, params.sheet.norm1.bias, params.sheet.attn.q.weight,
      params.sheet.attn.q.bias, params.sheet.attn.attn_bias, params.sheet.mlp.fc1.weight,
      params.sheet.mlp.fc1.bias, params.layers[0].weight,
    ];
    for (const a of leaves) {
      assert.equal(a.refCount, 1, "decayMaskFor borrows");
      a.dispose();
    }
  });
});

describe("schedules", () => {
  const close = (a: number, e: number) => assert.ok(Math.abs(a - e) <= 1e-12 + 1e-9 * Math.abs(e), `${a} vs ${e}`);

  test("cosine: warm-up, peak, mid-cosine, floor", () => {
    // peak 1e-3, W = 10, T = 110, floor = 0.05 * 1e-3 = 5e-5.
    const lr = cosineSchedule({ peak_lr: 1e-3, warmup_steps: 10, total_steps: 110 });
    close(lr(0), 1e-4); // 1e-3 * 1/10
    close(lr(4), 5e-4); // 1e-3 * 5/10
    close(lr(9), 1e-3); // last warm-up step reaches the peak
    close(lr(10), 1e-3); // cosine starts at the peak
    close(lr(35), 8.608757210636101e-4); // progress 1/4: 5e-5 + 9.5e-4 * (1 + cos(pi/4)) / 2
    close(lr(60), 5.25e-4); // progress 1/2: halfway between peak and floor
    close(lr(110), 5e-5);
    close(lr(10_000), 5e-5);
    for (let s = 11; s <= 110; s++) assert.ok(lr(s) <= lr(s - 1), "monotone after warm-up");
  });

  test("cosine: options and validation", () => {
    const lr = cosineSchedule({ peak_lr: 2, warmup_steps: 0, total_steps: 4, final_lr_fraction: 0 });
    close(lr(0), 2);
    close(lr(2), 1);
    close(lr(4), 0);
    assert.throws(() => cosineSchedule({ peak_lr: 1, warmup_steps: 5, total_steps: 4 }), RangeError);
    assert.throws(() => cosineSchedule({ peak_lr: 1, warmup_steps: 0, total_steps: 4, final_lr_fraction: 2 }), RangeError);
    assert.throws(() => lr(-1), RangeError);
    assert.throws(() => lr(0.5), RangeError);
  });

  test("constant", () => {
    const lr = constantSchedule(3e-4);
    close(lr(0), 3e-4);
    close(lr(12345), 3e-4);
  });
});

describe("global-norm clipping", () => {
  // Leaves [3, 4] and [[0, 12]]: norm = sqrt(9 + 16 + 144) = 13.
  const make = () => ({ a: np.array([3, 4]), b: { c: np.array([[0, 12]]) } });

  test("globalNorm borrows and is exact", async () => {
    const g = make();
    const n = globalNorm(g);
    assert.deepEqual(n.shape, []);
    assertClose(await read(n), [13], "norm");
    assert.equal(g.a.refCount, 1);
    assertClose(await read(g.a), [3, 4], "a untouched");
    g.b.c.dispose();
    assertClose(await read(globalNorm({})), [0], "empty tree");
  });

  test("below the threshold leaves grads unchanged", async () => {
    const g = make();
    const { grads, norm } = clipByGlobalNorm(g, 20);
    assert.equal(g.a.refCount, 0, "input consumed");
    assertClose(await read(norm), [13], "pre-clip norm");
    assert.deepEqual(await read(grads.a), [3, 4]);
    assert.deepEqual(await read(grads.b.c), [0, 12]);
  });

  test("above the threshold scales to exactly maxNorm", async () => {
    const { grads, norm } = clipByGlobalNorm(make(), 6.5);
    assertClose(await read(norm), [13], "pre-clip norm");
    const scale = 6.5 / (13 + 1e-6);
    const clippedNorm = globalNorm(grads);
    assertClose(await read(clippedNorm), [6.5], "post-clip norm", 1e-6);
    assertClose(await read(grads.a), [3 * scale, 4 * scale], "a");
    assertClose(await read(grads.b.c), [0, 12 * scale], "c");
    // maxNorm may be an Array (consumed) and is traced: no new compile per value.
    const m = np.array(1.3);
    const r = clipByGlobalNorm(make(), m);
    assert.equal(m.refCount, 0);
    assertClose(await read(r.grads.a), [0.3, 0.4], "a", 1e-5);
    r.grads.b.c.dispose();
    r.norm.dispose();
    assert.throws(() => clipByGlobalNorm({}, 0), RangeError);
  });
});

describe("memory", () => {
  // jax-js's Wasm allocator bump-allocates and grows its WebAssembly.Memory
  // through `memory.grow()`; freed buffers are reused from free lists. So leaked
  // (live, realised) buffers show up as page growth. Count pages grown.
  // (No WebAssembly typings under this tsconfig's libs: describe the bit we use.)
  type GrowableMemory = { grow(delta: number): number };
  const wasm = (globalThis as unknown as { WebAssembly: { Memory: { prototype: GrowableMemory } } }).WebAssembly;
  const proto = wasm.Memory.prototype;
  const originalGrow = proto.grow;
  let grownBytes = 0;
  before(() => {
    proto.grow = function (this: GrowableMemory, delta: number): number {
      grownBytes += delta * 65536;
      return originalGrow.call(this, delta);
    };
  });
  after(() => {
    proto.grow = originalGrow;
  });

  const N = 256; // 256x256 float32 = 256 KiB per weight-sized buffer
  type Big = { sheet: { fc: { weight: np.Array; bias: np.Array }; norm1: { weight: np.Array } } };
  const big = (v: number): Big => ({
    sheet: { fc: { weight: np.full([N, N], v), bias: np.full([N], v) }, norm1: { weight: np.full([4, N], v) } },
  });
  const disposeBig = (t: Big) => {
    for (const a of [t.sheet.fc.weight, t.sheet.fc.bias, t.sheet.norm1.weight]) a.dispose();
  };

  test("the probe sees a deliberate leak", async () => {
    const before = grownBytes;
    const leaked: np.Array[] = [];
    // Data-backed arrays (np.full() alone stays a lazy expression with no buffer).
    for (let i = 0; i < 20; i++) leaked.push(np.array(new Float32Array(N * N).fill(i)).reshape([N, N]));
    await blockUntilReady(leaked);
    assert.ok(grownBytes - before >= 16 * N * N * 4, `probe saw only ${grownBytes - before} bytes`);
    for (const a of leaked) a.dispose();
  });

  test("200 clip + update steps keep memory flat", async () => {
    const cfg = adamwConfig({ lr: 1e-3 });
    const schedule = cosineSchedule({ peak_lr: 1e-3, warmup_steps: 20, total_steps: 250 });
    let params = big(0.5);
    const mask = decayMaskFor(params);
    let state = adamwInit(params);
    const step = async () => {
      const { grads, norm } = clipByGlobalNorm(big(0.01), 1.0);
      const lr = schedule(state.step);
      ({ params, state } = adamwUpdate(params, grads, state, lr, cfg, mask));
      if (state.step % 50 === 0) assert.ok(Number.isFinite((await norm.data())[0]));
      else norm.dispose();
      await blockUntilReady([params, state.mu, state.nu]);
    };
    for (let i = 0; i < 10; i++) await step(); // warm-up: compile, fill free lists
    const compiles = adamwCompileCount();
    const start = grownBytes;
    const rssStart = process.memoryUsage().rss;
    for (let i = 0; i < 200; i++) await step();
    const grown = grownBytes - start;
    // One leaked 256 KiB buffer per step would be 50 MiB; allow 2 MiB of slack.
    assert.ok(grown <= 2 * 1024 * 1024, `Wasm memory grew by ${grown} bytes over 200 steps`);
    assert.equal(adamwCompileCount(), compiles, "no recompiles as lr changes");
    const rssGrowth = process.memoryUsage().rss - rssStart;
    assert.ok(rssGrowth < 64 * 1024 * 1024, `rss grew by ${rssGrowth} bytes`);
    const w = await read(params.sheet.fc.weight.ref);
    assert.ok(w.every(Number.isFinite) && w[0] < 0.5, "weights moved");
    disposeBig(params);
    disposeBig(state.mu);
    disposeBig(state.nu);
  });
});
