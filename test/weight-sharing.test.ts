/**
 * The weight-sharing switches: each configuration (transformer stack, Columnformer
 * sheet, anything in between) against an independent naive loop implementation.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { sheetTensorShapes } from "../src/checkpoint/checkpoint.ts";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, valueAndGrad } from "../src/engine/jax.ts";
import { resolveSheetConfig, type SheetConfig } from "../src/model/config.ts";
import type { SheetParams } from "../src/model/params.ts";
import { initSheet, sheetApply } from "../src/model/sheet.ts";
import { assertClose, read } from "./assertions.ts";
import { nest, seededValues } from "./naive-sheet.ts";
import { type HostTensor, naiveSheetApply, type NaiveSwitches } from "./naive-transformer.ts";

before(async () => {
  await initEngine();
});

const B = 2;

function sheetConfig(overrides: Record<string, unknown>): SheetConfig {
  return resolveSheetConfig({ geometry: { kind: "grid", height: 2, width: 3 }, dim: 8, qk_dim: 3, mlp_dim: 5, depth: 3, ...overrides }).config;
}

/** Random host values for every tensor of `config` (names without the "sheet." prefix). */
function hostParams(config: SheetConfig, seed: number): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  Object.entries(sheetTensorShapes(config)).forEach(([name, shape], i) => {
    const size = shape.reduce((a, b) => a * b, 1);
    out[name.slice("sheet.".length)] = { shape, values: seededValues(seed * 100 + i, size).map((v) => v * 0.8) };
  });
  return out;
}

function toTree(host: Record<string, HostTensor>, dtype: "float32" | "float64"): SheetParams {
  const root: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(host)) {
    const parts = name.split(".");
    let node = root;
    for (const p of parts.slice(0, -1)) {
      node[p] ??= {};
      node = node[p] as Record<string, unknown>;
    }
    const data = dtype === "float64" ? new Float64Array(Array.from(t.values)) : new Float32Array(Array.from(t.values));
    node[parts[parts.length - 1]] = np.array(data).reshape(t.shape);
  }
  return root as unknown as SheetParams;
}

function switches(c: SheetConfig): NaiveSwitches {
  return { n: c.num_columns, d: c.dim, scale: c.attn_scale, eps: c.norm_eps, ...c };
}

async function compareWithNaive(overrides: Record<string, unknown>): Promise<void> {
  const config = sheetConfig(overrides);
  const host = hostParams(config, 3);
  const n = config.num_columns;
  const x0 = seededValues(11, B * n * config.dim);
  const { x, attn } = sheetApply(toTree(host, "float32"), np.array(new Float32Array(x0)).reshape([B, n, config.dim]), config);
  const got = await read(x);
  const gotAttn = await read(attn); // [B, depth, N, N]
  for (let b = 0; b < B; b++) {
    const sample = nest(x0.slice(b * n * config.dim, (b + 1) * n * config.dim), [n, config.dim]) as number[][];
    const want = naiveSheetApply(host, switches(config), sample);
    assertClose(got.slice(b * n * config.dim, (b + 1) * n * config.dim), want.x.flat(), 2e-4, `x[${b}]`);
    const per = config.depth * n * n;
    assertClose(gotAttn.slice(b * per, (b + 1) * per), want.attn.flat(2), 1e-5, `attn[${b}]`);
  }
}

const TRANSFORMER = { untie_norm: false, untie_attn: false, untie_mlp: false, recurrent: false, heads: 2, value_proj: true, attn_bias: false };

describe("weight sharing against a naive implementation", () => {
  test("everything tied, a stack of blocks, 2 heads, value/output projections: a plain transformer", async () => {
    await compareWithNaive(TRANSFORMER);
  });
  test("everything untied and recurrent (the defaults): the column sheet", async () => {
    await compareWithNaive({});
  });
  test("mixed: only the MLP untied, recurrent, 2 heads, attention bias", async () => {
    await compareWithNaive({ untie_norm: false, untie_attn: false, heads: 2 });
  });
  test("mixed: untied norms and attention in a stack, value projections, no attention residual", async () => {
    await compareWithNaive({ untie_mlp: false, recurrent: false, value_proj: true, skip_attn: false });
  });
});

describe("parameter layouts", () => {
  test("the defaults keep the foundation's state-dict names and shapes", () => {
    const c = sheetConfig({});
    const [n, d, qk, m] = [6, 8, 3, 5];
    assert.deepEqual(sheetTensorShapes(c), {
      "sheet.norm1.weight": [n, d],
      "sheet.norm1.bias": [n, d],
      "sheet.attn.q.weight": [n, qk, d],
      "sheet.attn.q.bias": [n, qk],
      "sheet.attn.k.weight": [n, qk, d],
      "sheet.attn.attn_bias": [n, n],
      "sheet.norm2.weight": [n, d],
      "sheet.norm2.bias": [n, d],
      "sheet.mlp.fc1.weight": [n, m, d],
      "sheet.mlp.fc1.bias": [n, m],
      "sheet.mlp.fc2.weight": [n, d, m],
    });
  });
  test("a transformer stack has a depth axis and no column axis; init matches the shapes", async () => {
    const c = sheetConfig(TRANSFORMER);
    const shapes = sheetTensorShapes(c);
    assert.deepEqual(shapes["sheet.attn.q.weight"], [3, 6, 8]); // [depth, heads*qk, D]
    assert.deepEqual(shapes["sheet.attn.v.weight"], [3, 8, 8]);
    assert.deepEqual(shapes["sheet.norm1.weight"], [3, 8]);
    assert.equal(shapes["sheet.attn.attn_bias"], undefined);
    const { geometry } = resolveSheetConfig({ geometry: { kind: "grid", height: 2, width: 3 } });
    const params = initSheet(c, geometry, 0);
    const leaves: Record<string, number[]> = {};
    const walk = (prefix: string, node: unknown): void => {
      if (node instanceof np.Array) {
        leaves[prefix] = node.shape;
        node.dispose();
        return;
      }
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) walk(`${prefix}.${k}`, v);
    };
    walk("sheet", params);
    assert.deepEqual(leaves, shapes);
  });
  test("dim must divide by heads", () => {
    assert.throws(() => sheetConfig({ heads: 3 }), /dim 8 is not divisible by heads 3/);
  });
});

describe("equivalences between switches", () => {
  test("untied columns holding identical weights equal the tied model; identical blocks equal the recurrent one", async () => {
    const tied = sheetConfig({ ...TRANSFORMER, recurrent: true });
    const host = hostParams(tied, 5);
    const n = tied.num_columns;
    // replicate every tied leaf over the column axis -> an untied sheet with identical columns
    const untiedHost: Record<string, HostTensor> = {};
    // ...and over a depth axis -> a stack of identical blocks
    const stackHost: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(host)) {
      const copies = (k: number) => ({ shape: [k, ...t.shape], values: Array.from({ length: k }, () => Array.from(t.values)).flat() });
      untiedHost[name] = copies(n);
      stackHost[name] = copies(tied.depth);
    }
    const x0 = np.array(new Float32Array(seededValues(2, B * n * tied.dim))).reshape([B, n, tied.dim]);
    const a = await read(sheetApply(toTree(host, "float32"), x0.ref, tied).x);
    const b = await read(sheetApply(toTree(untiedHost, "float32"), x0.ref, { ...tied, untie_norm: true, untie_attn: true, untie_mlp: true }).x);
    const c = await read(sheetApply(toTree(stackHost, "float32"), x0, { ...tied, recurrent: false }).x);
    assertClose(b, a, 1e-5, "untied copies vs tied");
    assertClose(c, a, 1e-5, "stack of copies vs recurrent");
  });
});

describe("gradients of a tied transformer stack against finite differences (float64)", () => {
  test("every parameter kind", async () => {
    const config = sheetConfig({ ...TRANSFORMER, depth: 2 });
    const host = hostParams(config, 9);
    const n = config.num_columns;
    const x0 = seededValues(4, B * n * config.dim);
    const target = seededValues(6, B * n * config.dim);
    const input = () => np.array(new Float64Array(x0)).reshape([B, n, config.dim]);
    const lossFn = (params: SheetParams, x: np.Array): np.Array => {
      const { x: y, attn } = sheetApply(params, x, config);
      const t = np.array(new Float64Array(target)).reshape([B, n, config.dim]);
      return np.square(y.sub(t)).mean().add(attn.mul(np.array(new Float64Array(seededValues(8, n * n))).reshape([n, n])).mean());
    };
    const [, grads] = valueAndGrad(lossFn)(toTree(host, "float64"), input()) as unknown as [np.Array, SheetParams];
    const evalLoss = async (name: string, index: number, delta: number): Promise<number> => {
      const h = structuredClone(host);
      (h[name].values as number[])[index] += delta;
      return (await lossFn(toTree(h, "float64"), input()).data())[0];
    };
    const eps = 1e-3;
    for (const name of Object.keys(host)) {
      const leaf = name.split(".").reduce((o: Record<string, unknown>, k) => o[k] as Record<string, unknown>, grads as unknown as Record<string, unknown>) as unknown as np.Array;
      const g = await read(leaf);
      for (const index of [0, g.length - 1]) {
        const fd = ((await evalLoss(name, index, eps)) - (await evalLoss(name, index, -eps))) / (2 * eps);
        assert.ok(Math.abs(fd - g[index]) <= 2e-4 + 2e-3 * Math.abs(fd), `${name}[${index}]: autodiff ${g[index]} vs finite difference ${fd}`);
      }
    }
  });
});
