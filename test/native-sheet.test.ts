/**
 * The native sheet kernels (native/, src/engine/native-sheet.ts) against the jax-js model.
 *
 * Reference: the jax-js sheet step by step (src/model/sheet.ts sheetStep, with the drive added
 * before every later step as visionEncode does for inject "every") in FLOAT64, and its
 * gradients by valueAndGrad of
 *   L = sum(x_final * R) + wc * wiringCost(attn, W, 1) + ac * mean_s mean|x_s|,
 * with the same (float32-rounded) parameters and inputs as the addon. Parameters come from
 * initSheet and every leaf is then perturbed, so biases and norm affines are non-trivial.
 * Errors are max |native - reference| / max |reference| over each tensor.
 *
 * Then: the SIMD paths and thread counts agree, repeated calls are bit-identical, a directional
 * finite difference of the addon's own loss, bad arguments throw one clear line, and RSS stays
 * flat over 1,000 forward+backward calls (with a positive control).
 *
 * Without the addon (not built) the file skips, except under CI, where that is a failure.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { loadNativeSheet, type NativeAddon, type NativeSheet, type NativeSheetConfig, sheetLeaves } from "../src/engine/native-sheet.ts";
import { seededValues } from "./naive-sheet.ts";
import { type Case, f32, makeProblem, type Problem, reference, relErr, strided } from "./sheet-reference.ts";

const loaded = loadNativeSheet();
const skip = "addon" in loaded ? false : process.env.CI ? false : `native addon not built: ${loaded.error}`;
const addon = (): NativeAddon => {
  if (!("addon" in loaded)) throw new Error(`CI must build the native addon: ${loaded.error}`);
  return loaded.addon;
};

before(async () => {
  await initEngine();
  if (!("addon" in loaded) && process.env.CI) throw new Error(`CI must build the native addon: ${loaded.error}`);
});

/** Largest errors seen per kind of check, printed at the end. */
const seen: Record<string, number> = {};
function check(kind: string, what: string, err: number, tol: number): void {
  seen[kind] = Math.max(seen[kind] ?? 0, err);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(2)} > ${tol}`);
}

interface NativeRun {
  x: Float32Array;
  attn: Float32Array;
  attnMean: Float32Array;
  wiring: number;
  l1: number;
  hoyer: number;
  grads: Float32Array[];
  dx0: Float32Array;
  ddrive: Float32Array | null;
}

function runNative(sheet: NativeSheet, pr: Problem): NativeRun {
  const names = sheetLeaves(pr.ncfg);
  const n = pr.config.num_columns;
  const w = pr.conn ? pr.conn.k : n;
  const params = names.map((name) => {
    const leaf = pr.leaves[name];
    assert.ok(leaf, `leaf ${name} missing from the parameter tree`);
    return leaf.values;
  });
  const attn = new Float32Array(pr.b * pr.config.depth * n * w);
  const f = sheet.forward({ params, x0: pr.x0, drive: pr.drive, connectivity: pr.conn ? pr.conn.indices : null, wiringWeights: pr.wiring, batch: pr.b, train: true, attn });
  const grads = params.map((p) => new Float32Array(p.length).fill(Number.NaN));
  const dx0 = new Float32Array(pr.x0.length).fill(Number.NaN);
  const ddrive = pr.drive ? new Float32Array(pr.x0.length).fill(Number.NaN) : null;
  sheet.backward({ dx: pr.r, wiringCoef: pr.wiring ? pr.wc : 0, activationCoef: pr.ac, grads, dx0, ddrive });
  return { x: f.x, attn, attnMean: f.attnMean, wiring: f.wiring, l1: f.l1, hoyer: f.hoyer, grads, dx0, ddrive };
}

async function compareCase(c: Case, seed = 5): Promise<void> {
  const pr = await makeProblem(c, seed);
  const ref = await reference(pr);
  // the CPU's widest instruction set (a batch this small defaults to 4 lanes); the paths test
  // below checks that the others agree
  const sheet = addon().createSheet({ ...pr.ncfg, simd: addon().info().simd as "avx512" | "avx2" | "generic" });
  try {
    const got = runNative(sheet, pr);
    const { b } = pr;
    const n = pr.config.num_columns;
    const w = pr.conn ? pr.conn.k : n;
    const depth = pr.config.depth;
    check("forward x", `${c.what}: x`, relErr(got.x, ref.x), 1e-5);
    check("forward attn", `${c.what}: attn`, relErr(got.attn, ref.attn), 1e-5);
    // attnMean = mean over (batch, step) of the attention; wiring = sum(attnMean * W) / N
    const mean = new Float64Array(n * w);
    for (let t = 0; t < b * depth; t++) for (let p = 0; p < n * w; p++) mean[p] += ref.attn[t * n * w + p] / (b * depth);
    check("forward attnMean", `${c.what}: attnMean`, relErr(got.attnMean, mean), 1e-5);
    const wire = pr.wiring ? mean.reduce((acc, v, p) => acc + v * pr.wiring![p], 0) / n : 0;
    check("forward wiring/l1/hoyer", `${c.what}: wiring`, Math.abs(got.wiring - wire) / Math.max(Math.abs(wire), 1e-30), 1e-5);
    check("forward wiring/l1/hoyer", `${c.what}: l1`, Math.abs(got.l1 - ref.l1) / ref.l1, 1e-5);
    check("forward wiring/l1/hoyer", `${c.what}: hoyer`, Math.abs(got.hoyer - ref.hoyer) / ref.hoyer, 1e-5);
    sheetLeaves(pr.ncfg).forEach((name, i) => {
      assert.ok(ref.grads[name], `reference gradient ${name} missing`);
      check("gradient leaves", `${c.what}: d ${name}`, relErr(got.grads[i], ref.grads[name]), 1e-4);
    });
    check("gradient dx0/ddrive", `${c.what}: dx0`, relErr(got.dx0, ref.dx0), 1e-4);
    if (ref.ddrive) check("gradient dx0/ddrive", `${c.what}: ddrive`, relErr(got.ddrive!, ref.ddrive), 1e-4);
  } finally {
    sheet.dispose();
  }
}

const CASES: Case[] = [
  { what: "columnformer defaults (untied, recurrent, 1 head, bias, skip), dense wiring", overrides: {} },
  { what: "transformer: all tied, stack, 2 heads, value_proj, no bias", overrides: { untie_norm: false, untie_attn: false, untie_mlp: false, recurrent: false, heads: 2, value_proj: true, attn_bias: false } },
  { what: "only norm tied, stack, 2 heads, no skip_attn", overrides: { untie_norm: false, recurrent: false, heads: 2, skip_attn: false } },
  { what: "only attention tied, value_proj, inject_every", overrides: { untie_attn: false, value_proj: true }, injectEvery: true },
  { what: "only MLP tied, stack, no wiring weights, batch 1", overrides: { untie_mlp: false, recurrent: false }, wiring: false, batch: 1 },
  { what: "odd sizes N 7 D 6 qk 3 mlp 5, 2 heads, value_proj, stack", overrides: { geometry: { kind: "grid", height: 1, width: 7 }, heads: 2, value_proj: true, recurrent: false } },
  { what: "N 9, D 8, qk 4, 2 heads, no bias, no skip, inject_every, no activation term", overrides: { geometry: { kind: "grid", height: 3, width: 3 }, dim: 8, qk_dim: 4, heads: 2, attn_bias: false, skip_attn: false }, injectEvery: true, ac: 0 },
  { what: "sparse local K 3 < N, bias, sparse wiring", overrides: { connectivity: { kind: "local", k: 3 } } },
  { what: "sparse local K 4, stack, 2 heads, value_proj, tied attention, inject_every", overrides: { connectivity: { kind: "local", k: 4 }, recurrent: false, heads: 2, value_proj: true, untie_attn: false }, injectEvery: true },
  { what: "sparse K = N (all sources), tied norm and MLP", overrides: { connectivity: { kind: "local", k: 6 }, untie_norm: false, untie_mlp: false } },
  { what: "sparse hand-made sources N 7 K 4, no bias, no skip", overrides: { geometry: { kind: "grid", height: 1, width: 7 }, connectivity: { kind: "local", k: 4 }, attn_bias: false, skip_attn: false }, indices: strided },
  { what: "value_proj, everything untied, recurrent, 2 heads, inject_every", overrides: { value_proj: true, heads: 2 }, injectEvery: true },
  { what: "depth 1, 3 heads (dh 2, qk 2), value_proj", overrides: { depth: 1, heads: 3, qk_dim: 2, value_proj: true } },
  { what: "sparse hand-made sources, 2 heads, no wiring, batch 2", overrides: { geometry: { kind: "grid", height: 1, width: 7 }, connectivity: { kind: "local", k: 5 }, heads: 2 }, indices: strided, wiring: false, batch: 2 },
];

/** Run `f` with COLUMNFORMER_DEFER set (read by createSheet): recurrent sheets then keep each step's output cotangents and form the weight gradients at the end (the default only when that moves less memory, i.e. for wide columns). */
async function withDeferral<T>(on: boolean, f: () => Promise<T> | T): Promise<T> {
  const before = process.env.COLUMNFORMER_DEFER;
  process.env.COLUMNFORMER_DEFER = on ? "1" : "0";
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env.COLUMNFORMER_DEFER;
    else process.env.COLUMNFORMER_DEFER = before;
  }
}

describe("native sheet against the jax-js model (float64 reference)", { skip }, () => {
  for (const c of CASES) test(c.what, async () => compareCase(c));
  // recurrent cases covering q/k, v/o, the MLP, sparse and inject_every with the deferred weight gradients
  for (const i of [0, 11, 7]) {
    const c = CASES[i];
    assert.ok(c.overrides.recurrent !== false);
    test(`${c.what} (weight gradients deferred to the end)`, async () => withDeferral(true, () => compareCase(c, 6)));
  }

  test("largest errors seen (max |a - b| / max |b|)", (t) => {
    for (const [k, v] of Object.entries(seen)) t.diagnostic(`${k}: ${v.toExponential(2)}`);
  });
});

/** A problem without jax-js: random parameters of a config's leaf sizes. */
function hostProblem(ncfg: NativeSheetConfig, b: number, seed: number) {
  const names = sheetLeaves(ncfg);
  const n = ncfg.columns;
  const w = ncfg.sources > 0 ? ncfg.sources : n;
  const lead = (untied: boolean) => (ncfg.recurrent ? 1 : ncfg.depth) * (untied ? n : 1);
  const d = ncfg.dim;
  const hq = ncfg.heads * ncfg.qk_dim;
  const own: Record<string, [number, boolean]> = {
    "norm1.weight": [d, ncfg.untie_norm],
    "norm1.bias": [d, ncfg.untie_norm],
    "attn.q.weight": [hq * d, ncfg.untie_attn],
    "attn.q.bias": [hq, ncfg.untie_attn],
    "attn.k.weight": [hq * d, ncfg.untie_attn],
    "attn.v.weight": [d * d, ncfg.untie_attn],
    "attn.v.bias": [d, ncfg.untie_attn],
    "attn.o.weight": [d * d, ncfg.untie_attn],
    "attn.o.bias": [d, ncfg.untie_attn],
    "attn.attn_bias": [n * w, false],
    "norm2.weight": [d, ncfg.untie_norm],
    "norm2.bias": [d, ncfg.untie_norm],
    "mlp.fc1.weight": [ncfg.mlp_dim * d, ncfg.untie_mlp],
    "mlp.fc1.bias": [ncfg.mlp_dim, ncfg.untie_mlp],
    "mlp.fc2.weight": [d * ncfg.mlp_dim, ncfg.untie_mlp],
  };
  const params = names.map((name, i) => {
    const [size, untied] = own[name];
    const count = size * lead(untied);
    const scale = name.includes("weight") && !name.startsWith("norm") ? 1 / Math.sqrt(name === "mlp.fc2.weight" ? ncfg.mlp_dim : d) : 0.3;
    return f32(seededValues(seed * 50 + i, count).map((v) => (name.startsWith("norm") && name.endsWith("weight") ? 1 + 0.3 * v : scale * v)));
  });
  const size = b * n * d;
  const connectivity = ncfg.sources > 0 ? strided(n, ncfg.sources) : null;
  return {
    params,
    x0: f32(seededValues(seed + 1, size)),
    drive: ncfg.inject_every ? f32(seededValues(seed + 2, size)) : null,
    connectivity,
    wiringWeights: f32(seededValues(seed + 3, n * w).map((v) => 1 + v)),
    dx: f32(seededValues(seed + 4, size)),
    b,
  };
}

function runHost(sheet: NativeSheet, ncfg: NativeSheetConfig, hp: ReturnType<typeof hostProblem>, wc = 0.5, ac = 0.2): Float32Array[] {
  const n = ncfg.columns;
  const w = ncfg.sources > 0 ? ncfg.sources : n;
  const attn = new Float32Array(hp.b * ncfg.depth * n * w);
  const f = sheet.forward({ params: hp.params, x0: hp.x0, drive: hp.drive, connectivity: hp.connectivity, wiringWeights: hp.wiringWeights, batch: hp.b, train: true, attn });
  const grads = hp.params.map((p) => new Float32Array(p.length));
  const dx0 = new Float32Array(hp.x0.length);
  const ddrive = hp.drive ? new Float32Array(hp.x0.length) : null;
  sheet.backward({ dx: hp.dx, wiringCoef: wc, activationCoef: ac, grads, dx0, ddrive });
  return [f.x, attn, f.attnMean, f32([f.wiring, f.l1, f.hoyer]), ...grads, dx0, ...(ddrive ? [ddrive] : [])];
}

const MEDIUM: NativeSheetConfig = {
  batch: 19, columns: 37, dim: 24, qk_dim: 5, heads: 2, mlp_dim: 21, depth: 2, recurrent: false, untie_norm: true, untie_attn: true,
  untie_mlp: false, value_proj: true, attn_bias: true, skip_attn: true, attn_scale: 0.4, norm_eps: 1e-5, sources: 0, inject_every: true,
};

describe("native sheet: paths, determinism, finite differences, errors, memory", { skip }, () => {
  const isas = (): ("avx512" | "avx2" | "generic")[] => {
    const best = addon().info().simd;
    return best === "avx512" ? ["avx512", "avx2", "generic"] : best === "avx2" ? ["avx2", "generic"] : ["generic"];
  };

  for (const [sparse, recurrent, defer] of [[false, false, false], [true, false, false], [false, true, false], [false, true, true]]) {
    const what = `${sparse ? "sparse K 9" : "dense"}, ${recurrent ? "recurrent" : "stack"}${defer ? ", deferred weight gradients" : ""}, B 17 of 19, N 37, D 24`;
    test(`every SIMD path gives the same results, 1 and 2 threads bit-identical (${what})`, (t) => withDeferral(defer, () => {
      const ncfg = { ...MEDIUM, sources: sparse ? 9 : 0, recurrent };
      const hp = hostProblem(ncfg, 17, 9);
      let base: Float32Array[] | null = null;
      let worst = 0;
      for (const simd of isas()) {
        let oneThread: Float32Array[] | null = null;
        for (const threads of [1, 2]) {
          const sheet = addon().createSheet({ ...ncfg, simd, threads });
          const out = runHost(sheet, ncfg, hp);
          sheet.dispose();
          // sums go through fixed chunks reduced in order: the thread count changes no bit
          if (oneThread) {
            out.forEach((o, i) => {
              assert.deepEqual(new Uint32Array(o.buffer), new Uint32Array(oneThread![i].buffer), `${simd}: output ${i} differs between 1 and 2 threads`);
            });
          } else oneThread = out;
          if (!base) base = out;
          else
            out.forEach((o, i) => {
              const e = relErr(o, base![i]);
              worst = Math.max(worst, e);
              assert.ok(e <= 1e-6, `${simd} x ${threads} threads, output ${i}: relative error ${e.toExponential(2)} against ${isas()[0]} x 1 thread`);
            });
        }
      }
      t.diagnostic(`largest difference between paths: ${worst.toExponential(2)} (${isas().join(", ")} x 1, 2 threads)`);
    }));
  }

  test("the same call twice gives bit-identical results (2 threads)", () => {
    const hp = hostProblem(MEDIUM, 19, 3);
    const sheet = addon().createSheet({ ...MEDIUM, threads: 2 });
    const a = runHost(sheet, MEDIUM, hp);
    const b = runHost(sheet, MEDIUM, hp);
    sheet.dispose();
    a.forEach((x, i) => {
      assert.deepEqual(new Uint32Array(b[i].buffer), new Uint32Array(x.buffer), `output ${i} differs between two calls`);
    });
  });

  test("directional finite difference of the addon's own loss (float32, tiny sheet)", (t) => {
    const ncfg: NativeSheetConfig = { ...MEDIUM, batch: 2, columns: 5, dim: 4, qk_dim: 2, mlp_dim: 3, heads: 2, depth: 2, untie_mlp: true };
    const hp = hostProblem(ncfg, 2, 21);
    const sheet = addon().createSheet({ ...ncfg, threads: 1 });
    const wc = 0.5;
    // smooth loss: no activation term (|x| has kinks)
    const loss = (params: Float32Array[], x0: Float32Array, drive: Float32Array): number => {
      const f = sheet.forward({ params, x0, drive, connectivity: null, wiringWeights: hp.wiringWeights, batch: 2, train: false, attn: null });
      let s = 0;
      for (let i = 0; i < f.x.length; i++) s += f.x[i] * hp.dx[i];
      return s + wc * f.wiring;
    };
    const dirs = hp.params.map((p, i) => f32(seededValues(700 + i, p.length)));
    const dx0Dir = f32(seededValues(800, hp.x0.length));
    const ddDir = f32(seededValues(801, hp.x0.length));
    sheet.forward({ params: hp.params, x0: hp.x0, drive: hp.drive, connectivity: null, wiringWeights: hp.wiringWeights, batch: 2, train: true, attn: null });
    const grads = hp.params.map((p) => new Float32Array(p.length));
    const dx0 = new Float32Array(hp.x0.length);
    const ddrive = new Float32Array(hp.x0.length);
    sheet.backward({ dx: hp.dx, wiringCoef: wc, activationCoef: 0, grads, dx0, ddrive });
    let analytic = 0;
    grads.forEach((g, i) => {
      g.forEach((v, j) => {
        analytic += v * dirs[i][j];
      });
    });
    dx0.forEach((v, j) => {
      analytic += v * dx0Dir[j];
    });
    ddrive.forEach((v, j) => {
      analytic += v * ddDir[j];
    });
    const eps = 3e-3;
    const at = (e: number) =>
      loss(
        hp.params.map((p, i) => f32(Array.from(p, (v, j) => v + e * dirs[i][j]))),
        f32(Array.from(hp.x0, (v, j) => v + e * dx0Dir[j])),
        f32(Array.from(hp.drive!, (v, j) => v + e * ddDir[j])),
      );
    const fd = (at(eps) - at(-eps)) / (2 * eps);
    sheet.dispose();
    t.diagnostic(`directional derivative: backward ${analytic.toFixed(6)}, finite difference ${fd.toFixed(6)}`);
    assert.ok(Math.abs(fd - analytic) <= 2e-3 * Math.max(1, Math.abs(analytic)), `backward ${analytic} vs finite difference ${fd}`);
  });

  test("bad arguments throw one clear line and the process survives", () => {
    const ncfg: NativeSheetConfig = { ...MEDIUM, batch: 3, columns: 6, sources: 3 };
    const hp = hostProblem(ncfg, 3, 4);
    const sheet = addon().createSheet(ncfg);
    const fwd = (over: Record<string, unknown>) => () =>
      sheet.forward({ params: hp.params, x0: hp.x0, drive: hp.drive, connectivity: hp.connectivity, wiringWeights: hp.wiringWeights, batch: 3, train: true, attn: null, ...over });
    const oneLine = (re: RegExp) => (e: unknown) => e instanceof Error && !e.message.includes("\n") && re.test(e.message);
    assert.throws(
      () => sheet.backward({ dx: hp.dx, wiringCoef: 0, activationCoef: 0, grads: [], dx0: new Float32Array(hp.dx.length), ddrive: null }),
      oneLine(/backward: no training forward.*train: true/),
    );
    assert.throws(fwd({ x0: new Float32Array(5) }), oneLine(/forward: x0 has 5 values, expected 432/));
    assert.throws(fwd({ batch: 4 }), oneLine(/forward: batch must be an integer from 1 to config.batch = 3/));
    const bad = hp.params.map((p) => p.slice());
    bad[2][7] = Number.NaN;
    assert.throws(fwd({ params: bad }), oneLine(/forward: params\[2\] \(attn.q.weight\) holds NaN at index 7/));
    const inf = hp.x0.slice();
    inf[3] = Infinity;
    assert.throws(fwd({ x0: inf }), oneLine(/forward: x0 holds Inf at index 3/));
    const idx = hp.connectivity!.slice();
    idx[4] = 6;
    assert.throws(fwd({ connectivity: idx }), oneLine(/forward: connectivity\[4\] = 6 \(row 1\) is outside 0..5/));
    idx[4] = -1;
    assert.throws(fwd({ connectivity: idx }), oneLine(/forward: connectivity\[4\] = -1/));
    assert.throws(fwd({ connectivity: null }), oneLine(/forward: connectivity must be an Int32Array \[6, 3\]/));
    assert.throws(fwd({ params: hp.params.slice(1) }), oneLine(/forward: params has 14 arrays, expected 15/));
    assert.throws(fwd({ drive: null }), oneLine(/forward: drive is required with config.inject_every/));
    assert.throws(fwd({ wiringWeights: new Float32Array(36) }), oneLine(/forward: wiringWeights has 36 values, expected 18/));
    assert.throws(fwd({ attn: new Float32Array(2) }), oneLine(/forward: attn has 2 values/));
    // a good training forward, then bad backward arguments
    fwd({})();
    const grads = hp.params.map((p) => new Float32Array(p.length));
    const bwd = (over: Record<string, unknown>) => () =>
      sheet.backward({ dx: hp.dx, wiringCoef: 0.1, activationCoef: 0.1, grads, dx0: new Float32Array(hp.dx.length), ddrive: new Float32Array(hp.dx.length), ...over });
    assert.throws(bwd({ dx: new Float32Array(3) }), oneLine(/backward: dx has 3 values, expected 432/));
    assert.throws(bwd({ grads: grads.slice(2) }), oneLine(/backward: grads has 13 arrays, expected 15/));
    assert.throws(bwd({ wiringCoef: Number.NaN }), oneLine(/backward: wiringCoef must be a finite number/));
    assert.throws(bwd({ ddrive: null }), oneLine(/backward: ddrive is required/));
    bwd({})();
    // an evaluation forward discards the tape
    fwd({ train: false })();
    assert.throws(bwd({}), oneLine(/backward: no training forward/));
    sheet.dispose();
    assert.throws(fwd({}), oneLine(/forward: the sheet was disposed/));
    assert.throws(() => addon().createSheet({ ...ncfg, dim: 7 }), oneLine(/config.dim \(7\) must be divisible by config.heads \(2\)/));
    assert.throws(() => addon().createSheet({ ...ncfg, columns: 0 }), oneLine(/config.columns must be an integer >= 1/));
    assert.throws(() => addon().createSheet({ ...ncfg, sources: 7 }), oneLine(/config.sources \(7\) must be at most config.columns \(6\)/));
    assert.throws(() => addon().createSheet({ ...ncfg, simd: "sse9" as "generic" }), oneLine(/config.simd is "sse9"; use avx512, avx2 or generic/));
  });

  /** RSS after a full GC (the test command passes --expose-gc). */
  function settledRss(): number {
    const gc = (globalThis as { gc?: () => void }).gc;
    assert.ok(gc, "run with node --expose-gc");
    gc();
    return process.memoryUsage().rss;
  }

  /** Smallest RSS growth of `windows` windows of `iterations` forward+backward calls; `leak` keeps 128 KiB per call. */
  function rssGrowthMiB(iterations: number, leak: boolean, windows = 3): number {
    const ncfg: NativeSheetConfig = { ...MEDIUM, batch: 4, columns: 16, dim: 16, mlp_dim: 16, qk_dim: 4, depth: 2 };
    const hp = hostProblem(ncfg, 4, 8);
    const sheet = addon().createSheet(ncfg);
    const kept: Float32Array[] = [];
    const run = () => {
      const out = runHost(sheet, ncfg, hp);
      if (leak) kept.push(new Float32Array(32768).fill(out[0][0])); // 128 KiB per call
    };
    for (let i = 0; i < 100; i++) run();
    let smallest = Infinity;
    for (let w = 0; w < windows; w++) {
      const before = settledRss();
      for (let i = 0; i < iterations; i++) run();
      smallest = Math.min(smallest, (settledRss() - before) / 2 ** 20);
    }
    sheet.dispose();
    kept.length = 0;
    return smallest;
  }

  test("RSS stays flat over 1,000 forward+backward calls (smallest growth of 3 windows of 334)", (t) => {
    const growth = rssGrowthMiB(334, false);
    t.diagnostic(`RSS growth ${growth.toFixed(1)} MiB`);
    // the positive control below leaks ~42 MiB in every window of the same calls
    assert.ok(growth < 10, `RSS grew ${growth.toFixed(1)} MiB in every window of 334 calls`);
  });

  test("the memory check detects a leak (positive control: 128 KiB kept per call)", (t) => {
    const growth = rssGrowthMiB(334, true);
    t.diagnostic(`RSS growth with the leak ${growth.toFixed(1)} MiB`);
    assert.ok(growth > 20, `a 42 MiB leak per window was expected to show, RSS grew ${growth.toFixed(1)} MiB`);
  });

  test("a sheet that is never disposed is freed by the garbage collector", async () => {
    const ncfg: NativeSheetConfig = { ...MEDIUM, batch: 16, columns: 64, dim: 64, mlp_dim: 64 }; // ~ 10 MiB of buffers each
    const settle = async () => {
      for (let i = 0; i < 3; i++) {
        settledRss();
        await new Promise((r) => setImmediate(r));
      }
      return settledRss();
    };
    for (let i = 0; i < 3; i++) addon().createSheet(ncfg);
    const before = await settle();
    for (let i = 0; i < 30; i++) addon().createSheet(ncfg);
    const growth = ((await settle()) - before) / 2 ** 20;
    assert.ok(growth < 150, `30 undisposed sheets kept ${growth.toFixed(0)} MiB`);
  });
});
