import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, tree, valueAndGrad } from "../src/engine/jax.ts";
import { columnAttention } from "../src/model/attention.ts";
import { columnLinear } from "../src/model/column-linear.ts";
import type { SheetConfig } from "../src/model/config.ts";
import { columnLayerNorm } from "../src/model/layer-norm.ts";
import { columnMlp } from "../src/model/mlp.ts";
import type { SheetParams } from "../src/model/params.ts";
import { sheetApply } from "../src/model/sheet.ts";
import { gelu, layerNorm, linear, type Mat, type NaiveSheet, type Nested, naiveSheet, nest, seededValues } from "./naive-sheet.ts";
import { assertClose, read } from "./assertions.ts";

before(async () => {
  await initEngine();
});

const N = 4;
const D = 3;
const QK = 2;
const MLP = 5;
const B = 2;

/** Host-side random values for every parameter, shared by the naive and the real model. */
function hostParams(seed: number): Record<string, { shape: number[]; values: number[] }> {
  const shapes: Record<string, number[]> = {
    "norm1.weight": [N, D],
    "norm1.bias": [N, D],
    "attn.q.weight": [N, QK, D],
    "attn.q.bias": [N, QK],
    "attn.k.weight": [N, QK, D],
    "attn.attn_bias": [N, N],
    "norm2.weight": [N, D],
    "norm2.bias": [N, D],
    "mlp.fc1.weight": [N, MLP, D],
    "mlp.fc1.bias": [N, MLP],
    "mlp.fc2.weight": [N, D, MLP],
  };
  const out: Record<string, { shape: number[]; values: number[] }> = {};
  let s = seed;
  for (const [name, shape] of Object.entries(shapes)) {
    const count = shape.reduce((a, b) => a * b, 1);
    // norm weights around 1, everything else in [-1, 1)
    const values = seededValues(s++, count).map((v) => (name.endsWith("norm1.weight") || name.endsWith("norm2.weight") ? 1 + 0.5 * v : v));
    out[name] = { shape, values };
  }
  return out;
}

function toNaive(h: ReturnType<typeof hostParams>): NaiveSheet {
  const g = <T extends Nested>(name: string) => nest<T>(h[name].values, h[name].shape);
  return {
    n: N,
    d: D,
    qk: QK,
    mlp: MLP,
    norm1: { weight: g("norm1.weight"), bias: g("norm1.bias") },
    q: { weight: g("attn.q.weight"), bias: g("attn.q.bias") },
    k: { weight: g("attn.k.weight") },
    attnBias: g("attn.attn_bias"),
    norm2: { weight: g("norm2.weight"), bias: g("norm2.bias") },
    fc1: { weight: g("mlp.fc1.weight"), bias: g("mlp.fc1.bias") },
    fc2: { weight: g("mlp.fc2.weight") },
  };
}

type DType = "float32" | "float64";
function arr(values: number[], shape: number[], dtype: DType): np.Array {
  const data = dtype === "float64" ? new Float64Array(values) : new Float32Array(values);
  return np.array(data).reshape(shape);
}

function toParams(h: ReturnType<typeof hostParams>, dtype: DType): SheetParams {
  const a = (name: string) => arr(h[name].values, h[name].shape, dtype);
  return {
    norm1: { weight: a("norm1.weight"), bias: a("norm1.bias") },
    attn: { q: { weight: a("attn.q.weight"), bias: a("attn.q.bias") }, k: { weight: a("attn.k.weight") }, attn_bias: a("attn.attn_bias") },
    norm2: { weight: a("norm2.weight"), bias: a("norm2.bias") },
    mlp: { fc1: { weight: a("mlp.fc1.weight"), bias: a("mlp.fc1.bias") }, fc2: { weight: a("mlp.fc2.weight") } },
  };
}

function config(overrides: Partial<SheetConfig> = {}): SheetConfig {
  return {
    geometry: { kind: "grid", height: 2, width: 2 },
    num_columns: N,
    dim: D,
    qk_dim: QK,
    heads: 1,
    mlp_dim: MLP,
    depth: 3,
    recurrent: true,
    untie_norm: true,
    untie_attn: true,
    untie_mlp: true,
    value_proj: false,
    attn_bias: true,
    skip_attn: true,
    attn_scale: QK ** -0.5,
    norm_eps: 1e-5,
    attn_bias_init: "local",
    attn_bias_sigma: 2,
    learn_positions: false,
    ...overrides,
  };
}


const inputValues = seededValues(99, B * N * D).map((v) => 2 * v);
const inputNested = (): Mat[] => nest(inputValues, [B, N, D]);

describe("column ops against naive loops", () => {
  const h = hostParams(1);
  const naive = toNaive(h);

  test("per-column linear", async () => {
    const { mlp, ...rest } = toParams(h, "float32");
    tree.dispose(rest);
    const y = columnLinear(mlp.fc1, arr(inputValues, [B, N, D], "float32"));
    tree.dispose(mlp.fc2);
    assert.deepEqual(y.shape, [B, N, MLP]);
    const expected = inputNested().flatMap((s) => s.flatMap((xn, n) => linear(naive.fc1.weight[n], xn, naive.fc1.bias[n])));
    assertClose(await read(y), expected, 1e-5, "linear");
  });

  test("per-column LayerNorm", async () => {
    const { norm1, ...rest } = toParams(h, "float32");
    tree.dispose(rest);
    const y = columnLayerNorm(norm1, arr(inputValues, [B, N, D], "float32"), 1e-5);
    const expected = inputNested().flatMap((s) => s.flatMap((xn, n) => layerNorm(xn, naive.norm1.weight[n], naive.norm1.bias[n], 1e-5)));
    assertClose(await read(y), expected, 1e-5, "layernorm");
  });

  test("per-column MLP with exact GELU", async () => {
    const { mlp, ...rest } = toParams(h, "float32");
    tree.dispose(rest);
    const y = columnMlp(mlp, arr(inputValues, [B, N, D], "float32"));
    const expected = inputNested().flatMap((s) =>
      s.flatMap((xn, n) => linear(naive.fc2.weight[n], linear(naive.fc1.weight[n], xn, naive.fc1.bias[n]).map(gelu))),
    );
    assertClose(await read(y), expected, 1e-5, "mlp");
  });

  test("GELU is the exact erf form, not the tanh approximation", () => {
    // gelu(1) = 0.5 * (1 + erf(1/sqrt2)) = 0.841344746...; tanh form gives 0.841191990...
    assert.ok(Math.abs(gelu(1) - 0.8413447460685429) < 1e-12);
  });

  test("attention: values, rows sum to 1", async () => {
    const { attn: attnParams, ...rest } = toParams(h, "float32");
    tree.dispose(rest);
    const scale = 0.7;
    const { out, attn } = columnAttention(attnParams, arr(inputValues, [B, N, D], "float32"), scale);
    const rows = await read(attn.ref.sum(-1));
    assertClose(rows, new Array(B * N).fill(1), 1e-6, "row sums");
    // naive: attention on the raw input (norm is outside attention)
    const expAttn: number[] = [];
    const expOut: number[] = [];
    for (const s of inputNested()) {
      const q = s.map((xn, n) => linear(naive.q.weight[n], xn, naive.q.bias[n]));
      const k = s.map((xn, n) => linear(naive.k.weight[n], xn));
      for (let i = 0; i < N; i++) {
        const sc = k.map((kj, j) => scale * kj.reduce((a, v, c) => a + v * q[i][c], 0) + naive.attnBias[i][j]);
        const z = sc.reduce((a, v) => a + Math.exp(v), 0);
        const row = sc.map((v) => Math.exp(v) / z);
        expAttn.push(...row);
        for (let c = 0; c < D; c++) expOut.push(row.reduce((a, w, j) => a + w * s[j][c], 0));
      }
    }
    assertClose(await read(attn), expAttn, 1e-5, "attn");
    assertClose(await read(out), expOut, 1e-5, "attn out");
  });

  for (const skip of [true, false]) {
    test(`whole sheet, depth 3, skip_attn=${skip}`, async () => {
      const cfg = config({ skip_attn: skip, attn_scale: 0.9 });
      const { x, attn } = sheetApply(toParams(h, "float32"), arr(inputValues, [B, N, D], "float32"), cfg);
      assert.deepEqual(x.shape, [B, N, D]);
      assert.deepEqual(attn.shape, [B, cfg.depth, N, N]);
      const ref = naiveSheet(naive, inputNested(), cfg.depth, 0.9, skip, 1e-5);
      assertClose(await read(x), ref.x.flat(2), 1e-4, "states");
      assertClose(await read(attn), ref.attn.flat(3), 1e-5, "attention maps");
    });
  }
});

describe("gradients against central finite differences (float64)", () => {
  test("d loss / d every parameter kind, and d loss / d input", async () => {
    const h = hostParams(7);
    const cfg = config({ depth: 2 });
    const target = seededValues(5, B * N * D);
    const lossFn = (params: SheetParams, x: np.Array): np.Array => {
      const { x: y, attn } = sheetApply(params, x, cfg);
      const t = arr(target, [B, N, D], "float64");
      // states and attention both feed the loss, so every path is exercised
      return np.square(y.sub(t)).mean().add(attn.mul(arr(seededValues(6, N * N), [N, N], "float64")).mean());
    };
    const [value, [gParams, gInput]] = valueAndGrad(lossFn, { argnums: [0, 1] })(
      toParams(h, "float64"),
      arr(inputValues, [B, N, D], "float64"),
    ) as unknown as [np.Array, [SheetParams, np.Array]];
    const loss0 = (await value.data())[0];
    assert.ok(Number.isFinite(loss0));

    const evalLoss = async (name: string | null, index: number, delta: number): Promise<number> => {
      const hh = structuredClone(h);
      const xv = inputValues.slice();
      if (name === null) xv[index] += delta;
      else hh[name].values[index] += delta;
      const l = lossFn(toParams(hh, "float64"), arr(xv, [B, N, D], "float64"));
      return (await l.data())[0];
    };
    const flatGrads: Record<string, number[]> = {};
    const walk = (prefix: string, node: unknown): void => {
      if (node instanceof np.Array) return;
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
        const path = prefix ? `${prefix}.${k}` : k;
        if (v instanceof np.Array) flatGrads[path] = [];
        else walk(path, v);
      }
    };
    walk("", gParams);
    for (const path of Object.keys(flatGrads)) {
      const leaf = path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], gParams) as np.Array;
      flatGrads[path] = await read(leaf);
    }
    flatGrads.input = await read(gInput);
    // jax-js's erf (inside GELU) is accurate to ~2e-7 even in float64, so the step must be
    // large enough that this roughness does not dominate: eps 1e-3 gives ~1e-4 noise.
    const eps = 1e-3;
    for (const [name, grads] of Object.entries(flatGrads)) {
      for (const index of [0, Math.floor(grads.length / 2), grads.length - 1]) {
        const key = name === "input" ? null : name;
        const fd = ((await evalLoss(key, index, eps)) - (await evalLoss(key, index, -eps))) / (2 * eps);
        assert.ok(Math.abs(fd - grads[index]) <= 2e-4 + 2e-3 * Math.abs(fd), `${name}[${index}]: autodiff ${grads[index]} vs finite difference ${fd}`);
      }
    }
  });
});
