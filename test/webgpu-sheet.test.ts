/**
 * The WebGPU sheet (src/engine/webgpu/) against the jax-js model in float64, as
 * test/native-sheet.test.ts checks the native addon: final states, every step's head-mean
 * attention, attnMean, the wiring cost, L1 and Hoyer within 1e-5 relative, and the gradients of
 *   L = sum(x_final * R) + wc * wiringCost(attn, W, 1) + ac * mean_s mean|x_s|
 * with respect to every parameter leaf, x0 and the drive within 1e-4 relative (errors are
 * max |webgpu - reference| / max |reference| over each tensor; the reference is
 * test/sheet-reference.ts, independent of the code under test). Then: repeated calls are
 * bit-identical, a resident state's forward and backward give the host calls' results with the
 * gradients summed on the GPU, an evaluation forward does not leave a tape, and bad arguments throw.
 *
 * On a machine without a GPU the adapter is Mesa's llvmpipe through Dawn's OpenGL ES backend
 * (scripts/install-webgpu-adapter.sh). Without any adapter the file skips with the reason,
 * except when env COLUMNFORMER_WEBGPU_REQUIRED=1 (.ci/run sets it once that script succeeded):
 * then no adapter is a failure.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { type NativeSheetConfig, sheetLeaves } from "../src/engine/native-sheet.ts";
import { loadWebGPUEngine, type WebGPUEngine } from "../src/engine/webgpu/engine.ts";
import { hostAdamW } from "../src/engine/webgpu/host-optim.ts";
import { checkLimits, type WebGPUSheet } from "../src/engine/webgpu/sheet.ts";
import { type Case, makeProblem, type Problem, reference, relErr, strided } from "./sheet-reference.ts";

const required = process.env.COLUMNFORMER_WEBGPU_REQUIRED === "1";
const loaded = await loadWebGPUEngine();
const skip = "engine" in loaded ? false : required ? false : `no WebGPU adapter: ${loaded.error}`;
const engine = (): WebGPUEngine => {
  if (!("engine" in loaded)) throw new Error(`COLUMNFORMER_WEBGPU_REQUIRED=1 but ${loaded.error}`);
  return loaded.engine;
};

before(async () => {
  await initEngine();
  if (!("engine" in loaded) && required) throw new Error(`COLUMNFORMER_WEBGPU_REQUIRED=1 but ${loaded.error}`);
});

/** Largest errors seen per kind of check, printed at the end. */
const seen: Record<string, number> = {};
function check(kind: string, what: string, err: number, tol: number): void {
  seen[kind] = Math.max(seen[kind] ?? 0, err);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(2)} > ${tol}`);
}

interface Run {
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

function paramsOf(pr: Problem): Float32Array[] {
  return sheetLeaves(pr.ncfg).map((name) => {
    const leaf = pr.leaves[name];
    assert.ok(leaf, `leaf ${name} missing from the parameter tree`);
    return leaf.values;
  });
}

/** One training forward and its backward; outputs start as NaN so anything unwritten fails. */
async function runSheet(sheet: WebGPUSheet, pr: Problem): Promise<Run> {
  const params = paramsOf(pr);
  const n = pr.config.num_columns;
  const w = pr.conn ? pr.conn.k : n;
  const attn = new Float32Array(pr.b * pr.config.depth * n * w).fill(Number.NaN);
  const f = await sheet.forward({ params, x0: pr.x0, drive: pr.drive, connectivity: pr.conn ? pr.conn.indices : null, wiringWeights: pr.wiring, batch: pr.b, train: true, attn });
  const grads = params.map((p) => new Float32Array(p.length).fill(Number.NaN));
  const dx0 = new Float32Array(pr.x0.length).fill(Number.NaN);
  const ddrive = pr.drive ? new Float32Array(pr.x0.length).fill(Number.NaN) : null;
  await sheet.backward({ dx: pr.r, wiringCoef: pr.wiring ? pr.wc : 0, activationCoef: pr.ac, grads, dx0, ddrive });
  return { x: f.x, attn, attnMean: f.attnMean, wiring: f.wiring, l1: f.l1, hoyer: f.hoyer, grads, dx0, ddrive };
}

/** `chunk`: batch elements per attention chunk (default: the whole batch fits). */
async function compareCase(c: Case, seed = 5, chunk?: number): Promise<void> {
  const pr = await makeProblem(c, seed);
  const ref = await reference(pr);
  const n = pr.config.num_columns;
  const mapBytes = chunk === undefined ? undefined : chunk * pr.config.heads * n * (pr.conn ? pr.conn.k : n) * 4;
  const sheet = engine().createSheet(pr.ncfg, { mapBytes });
  try {
    const got = await runSheet(sheet, pr);
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
    if (pr.wiring) check("forward wiring/l1/hoyer", `${c.what}: wiring`, Math.abs(got.wiring - wire) / Math.abs(wire), 1e-5);
    else assert.equal(got.wiring, 0, `${c.what}: wiring without wiring weights`);
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

// the cases of test/native-sheet.test.ts, then sizes past one GEMM tile (32) and one K slice
// (16) and rows wider than 8 features, where the workgroup kernels do more than one pass
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
  {
    what: "larger: N 36 D 20 qk 6 mlp 40, 2 heads, value_proj, stack, batch 2",
    overrides: { geometry: { kind: "grid", height: 6, width: 6 }, dim: 20, qk_dim: 6, mlp_dim: 40, depth: 2, heads: 2, value_proj: true, recurrent: false },
    batch: 2,
  },
  {
    what: "larger sparse: N 36 D 20 K 9, 4 heads, tied attention, recurrent",
    overrides: { geometry: { kind: "grid", height: 6, width: 6 }, dim: 20, qk_dim: 5, mlp_dim: 24, depth: 2, heads: 4, connectivity: { kind: "local", k: 9 }, untie_attn: false },
    batch: 2,
  },
];

describe("webgpu sheet against the jax-js model (float64 reference)", { skip }, () => {
  test("the adapter", (t) => {
    t.diagnostic(engine().info().device);
  });
  for (const c of CASES) test(c.what, async () => compareCase(c));
  // the batch in chunks of attention maps (large sheets): 3 = 1 + 1 + 1 and 3 = 2 + 1
  for (const [i, chunk] of [[0, 1], [1, 2], [8, 2], [11, 1]] as const) {
    test(`${CASES[i].what} (attention in chunks of ${chunk} batch element${chunk === 1 ? "" : "s"})`, async () => compareCase(CASES[i], 6, chunk));
  }

  test("largest errors seen (max |a - b| / max |b|)", (t) => {
    for (const [k, v] of Object.entries(seen)) t.diagnostic(`${k}: ${v.toExponential(2)}`);
  });
});

test("a device below the kernels' limits is refused with the limit named (no adapter needed)", () => {
  const roomy = { maxStorageBuffersPerShaderStage: 8, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256 } as unknown as GPUSupportedLimits;
  checkLimits(roomy);
  // WebGPU compatibility mode's defaults: 4 storage buffers, 128 invocations
  assert.throws(() => checkLimits({ ...roomy, maxStorageBuffersPerShaderStage: 4 }), /maxStorageBuffersPerShaderStage is 4; the sheet's kernels need 6/);
  assert.throws(() => checkLimits({ ...roomy, maxComputeInvocationsPerWorkgroup: 128 }), /maxComputeInvocationsPerWorkgroup is 128; the sheet's kernels need 256/);
});

describe("webgpu sheet: repeated calls, the tape, bad arguments", { skip }, () => {
  const small: Case = { what: "defaults, value_proj, 2 heads", overrides: { value_proj: true, heads: 2 } };

  test("the same calls twice give bit-identical results, and a second sheet agrees", async () => {
    const pr = await makeProblem(small, 7);
    const a = engine().createSheet(pr.ncfg);
    const b = engine().createSheet(pr.ncfg);
    try {
      const r1 = await runSheet(a, pr);
      const r2 = await runSheet(a, pr);
      const r3 = await runSheet(b, pr);
      for (const other of [r2, r3]) {
        assert.deepEqual(other.x, r1.x);
        assert.deepEqual(other.attn, r1.attn);
        assert.deepEqual(other.dx0, r1.dx0);
        other.grads.forEach((g, i) => {
          assert.deepEqual(g, r1.grads[i], `gradient ${i}`);
        });
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  const sparse: Case = { what: "sparse local K 4, inject_every", overrides: { connectivity: { kind: "local", k: 4 } }, injectEvery: true };
  for (const c of [small, sparse]) test(`with a resident state (${c.what}): the host forward's results; two backwards accumulate g1 + g2; AdamW as on the host (1e-6)`, async (t) => {
    const pr = await makeProblem(c, 7);
    const sheet = engine().createSheet(pr.ncfg);
    const params = paramsOf(pr);
    const zeros = () => params.map((p) => new Float32Array(p.length));
    const state = engine().resident({ params, m: zeros(), v: zeros() });
    try {
      // two micro-batches: the problem's x0, then half of it
      const inputs = [pr.x0, pr.x0.map((v) => v * 0.5)];
      const host: Run[] = [];
      for (const x0 of inputs) host.push(await runSheet(sheet, { ...pr, x0 }));
      for (const [i, x0] of inputs.entries()) {
        const args = { x0, drive: pr.drive, connectivity: pr.conn ? pr.conn.indices : null, wiringWeights: pr.wiring, batch: pr.b, train: true, attn: null };
        const f = await state.forward(sheet, args);
        assert.deepEqual(f.x, host[i].x, `micro-batch ${i}: x`);
        assert.deepEqual(f.attnMean, host[i].attnMean, `micro-batch ${i}: attnMean`);
        const dx0 = new Float32Array(x0.length);
        const ddrive = pr.drive ? new Float32Array(x0.length) : null;
        const bw = { dx: pr.r, wiringCoef: pr.wiring ? pr.wc : 0, activationCoef: pr.ac, dx0, ddrive };
        if (i === 0) await assert.rejects(sheet.backward({ ...bw, grads: zeros() }), /the taped forward read other parameters/);
        await state.backward(sheet, bw);
        assert.deepEqual(dx0, host[i].dx0, `micro-batch ${i}: dx0`);
      }
      const acc = host[0].grads.map((g, l) => g.map((x, e) => x + host[1].grads[l][e])); // float32 sums, as the accumulator's
      let expected = 0;
      for (const g of acc) for (const x of g) expected += x * x;
      const got = await state.gradSquares();
      assert.ok(Math.abs(got - expected) <= 1e-5 * expected, `sum of squares: GPU ${got} vs ${expected}`);
      const args = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: params.map((_, l) => (l % 2 ? 0.05 : 0)), step: 1, gradScale: 0.5 };
      const ref = { params: params.map((p) => p.slice()), m: zeros(), v: zeros() };
      hostAdamW({ ...ref, grads: acc, ...args });
      await state.adamw(args);
      const out = { params: zeros(), m: zeros(), v: zeros() };
      await state.read(out);
      let worst = 0;
      for (const k of ["params", "m", "v"] as const) {
        out[k].forEach((x, l) => {
          const e = relErr(x, ref[k][l]);
          worst = Math.max(worst, e);
          assert.ok(e <= 1e-6, `${k}[${l}]: ${e.toExponential(2)}`);
        });
      }
      t.diagnostic(`resident AdamW of the accumulated gradient vs the host's: ${worst.toExponential(2)}`);
      // a second resident state: the sheet records against it and drops the first one's programs
      const again = engine().resident({ params: out.params, m: out.m, v: out.v });
      try {
        const f = await again.forward(sheet, { x0: pr.x0, drive: pr.drive, connectivity: pr.conn ? pr.conn.indices : null, wiringWeights: pr.wiring, batch: pr.b, train: false, attn: null });
        const h = await sheet.forward({ params: out.params, x0: pr.x0, drive: pr.drive, connectivity: pr.conn ? pr.conn.indices : null, wiringWeights: pr.wiring, batch: pr.b, train: false, attn: null });
        assert.deepEqual(f.x, h.x);
      } finally {
        again.dispose();
      }
    } finally {
      state.dispose();
      sheet.dispose();
    }
  });

  test("an evaluation forward leaves no tape; backward then throws; a smaller batch works", async () => {
    const pr = await makeProblem(small, 8);
    const sheet = engine().createSheet(pr.ncfg);
    try {
      const params = paramsOf(pr);
      const args = { params, x0: pr.x0, drive: null, connectivity: null, wiringWeights: pr.wiring, batch: pr.b, attn: null };
      const train = await sheet.forward({ ...args, train: true });
      const evalRun = await sheet.forward({ ...args, train: false });
      assert.deepEqual(evalRun.x, train.x);
      const bw = { dx: pr.r, wiringCoef: 0, activationCoef: 0, grads: params.map((p) => new Float32Array(p.length)), dx0: new Float32Array(pr.x0.length), ddrive: null };
      await assert.rejects(sheet.backward(bw), /no training forward/);
      // batch 1: the first batch element's states, as in the full batch (columns do not mix across the batch)
      const per = pr.config.num_columns * pr.config.dim;
      const one = await sheet.forward({ ...args, x0: pr.x0.slice(0, per), batch: 1, train: false });
      assert.ok(relErr(one.x, train.x.slice(0, per)) < 1e-6, "batch 1 differs from the first element of the batch");
    } finally {
      sheet.dispose();
    }
  });

  test("bad arguments reject with one clear line", async () => {
    const pr = await makeProblem(small, 9);
    const sheet = engine().createSheet(pr.ncfg);
    const params = paramsOf(pr);
    const args = { params, x0: pr.x0, drive: null, connectivity: null, wiringWeights: null, batch: pr.b, train: true, attn: null };
    try {
      await assert.rejects(sheet.forward({ ...args, batch: pr.ncfg.batch + 1 }), /batch must be an integer from 1 to config.batch/);
      await assert.rejects(sheet.forward({ ...args, x0: pr.x0.subarray(1) }), /x0 has \d+ values, expected/);
      await assert.rejects(sheet.forward({ ...args, params: params.slice(1) }), /params has \d+ arrays, expected/);
      const nan = pr.x0.slice();
      nan[3] = Number.NaN;
      await assert.rejects(sheet.forward({ ...args, x0: nan }), /x0 holds NaN at index 3/);
      assert.throws(() => engine().createSheet({ ...pr.ncfg, heads: 4 } as NativeSheetConfig), /divisible by config.heads/);
    } finally {
      sheet.dispose();
    }
    await assert.rejects(sheet.forward(args), /disposed/);
  });
});
