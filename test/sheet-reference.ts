/**
 * The float64 jax-js reference of the column sheet, shared by the engine tests that compare a
 * sheet engine (src/engine/sheet-engine.ts) with it (test/webgpu-sheet.test.ts): problems with
 * perturbed initSheet parameters, and the jax-js sheet step by step (src/model/sheet.ts
 * sheetStep, with the drive added before every later step as visionEncode does for inject
 * "every") in FLOAT64, its gradients by valueAndGrad of
 *   L = sum(x_final * R) + wc * wiringCost(attn, W, 1) + ac * mean_s mean|x_s|.
 * The same construction as test/native-sheet.test.ts (copied, so that test stays as it is).
 */
import assert from "node:assert/strict";
import { numpy as np, tree, valueAndGrad } from "../src/engine/jax.ts";
import type { NativeSheetConfig } from "../src/engine/native-sheet.ts";
import { connectivityK, resolveSheetConfig, type SheetConfig } from "../src/model/config.ts";
import type { SheetParams } from "../src/model/params.ts";
import { blockAt, initSheet, sheetStep } from "../src/model/sheet.ts";
import { resolveConnectivity, type SheetConnectivity } from "../src/model/sheet-connectivity.ts";
import { columnActivity } from "../src/model/vision.ts";
import { wiringCost } from "../src/objectives/wiring-cost.ts";
import { seededValues } from "./naive-sheet.ts";
import { distanceMatrix } from "../src/geometry/metric.ts";

/** max |a - b| / max |b|. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= num)) num = Number.isNaN(d) ? Infinity : d;
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

export function nativeConfig(c: SheetConfig, batch: number, injectEvery: boolean): NativeSheetConfig {
  return {
    batch,
    columns: c.num_columns,
    dim: c.dim,
    qk_dim: c.qk_dim,
    heads: c.heads,
    mlp_dim: c.mlp_dim,
    depth: c.depth,
    recurrent: c.recurrent,
    untie_norm: c.untie_norm,
    untie_attn: c.untie_attn,
    untie_mlp: c.untie_mlp,
    value_proj: c.value_proj,
    attn_bias: c.attn_bias,
    skip_attn: c.skip_attn,
    attn_scale: c.attn_scale,
    norm_eps: c.norm_eps,
    sources: connectivityK(c) ?? 0,
    inject_every: injectEvery,
  };
}

export type Leaves = Record<string, { shape: number[]; values: Float32Array }>;

/** Leaves of a parameter tree by path ("attn.q.weight"). */
async function leavesOf(p: SheetParams): Promise<Leaves> {
  const out: Leaves = {};
  const walk = async (prefix: string, node: unknown): Promise<void> => {
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (v instanceof np.Array) out[path] = { shape: v.shape, values: Float32Array.from((await v.ref.data()) as ArrayLike<number>) };
      else if (v) await walk(path, v);
    }
  };
  await walk("", p);
  return out;
}

function treeOf(leaves: Leaves, dtype: "float32" | "float64"): SheetParams {
  const root: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(leaves)) {
    const parts = name.split(".");
    let node = root;
    for (const part of parts.slice(0, -1)) {
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = np.array(dtype === "float64" ? Float64Array.from(t.values) : t.values).reshape(t.shape);
  }
  return root as unknown as SheetParams;
}

const f64 = (values: ArrayLike<number>, shape: number[]): np.Array => np.array(Float64Array.from(values)).reshape(shape);
export const f32 = (values: ArrayLike<number>): Float32Array => Float32Array.from(values);

export interface Case {
  what: string;
  overrides: Record<string, unknown>;
  batch?: number;
  injectEvery?: boolean;
  wiring?: boolean;
  /** Hand-made sparse sources [N * K] (the config's connectivity gives K). */
  indices?: (n: number, k: number) => Int32Array;
  wc?: number;
  ac?: number;
}

export interface Problem {
  config: SheetConfig;
  ncfg: NativeSheetConfig;
  conn: SheetConnectivity | null;
  leaves: Leaves;
  x0: Float32Array;
  drive: Float32Array | null;
  wiring: Float32Array | null;
  r: Float32Array;
  wc: number;
  ac: number;
  b: number;
}

export async function makeProblem(c: Case, seed: number): Promise<Problem> {
  const { config, geometry } = resolveSheetConfig({ geometry: { kind: "grid", height: 2, width: 3 }, dim: 6, qk_dim: 3, mlp_dim: 5, depth: 3, ...c.overrides });
  const n = config.num_columns;
  const k = connectivityK(config);
  let conn: SheetConnectivity | null = null;
  if (k !== null) {
    conn = resolveConnectivity(config, geometry);
    if (c.indices && conn) {
      const indices = c.indices(n, k);
      const distances = new Float32Array(n * k).map((_, p) => distanceMatrix(geometry)[Math.floor(p / k) * n + indices[p]]);
      conn = { n, k, indices, distances };
    }
  }
  const init = initSheet(config, geometry, seed, conn);
  const leaves = await leavesOf(init);
  tree.dispose(init);
  let s = seed * 1000;
  for (const [name, t] of Object.entries(leaves)) {
    const noise = seededValues(s++, t.values.length);
    const amp = name.endsWith("attn_bias") ? 0.5 : 0.3;
    t.values = f32(Array.from(t.values, (v, i) => v + amp * noise[i]));
  }
  const b = c.batch ?? 3;
  const w = k ?? n;
  const size = b * n * config.dim;
  return {
    config,
    ncfg: nativeConfig(config, b + 1, c.injectEvery ?? false),
    conn,
    leaves,
    x0: f32(seededValues(seed + 1, size).map((v) => 1.5 * v)),
    drive: c.injectEvery ? f32(seededValues(seed + 2, size)) : null,
    wiring: c.wiring === false ? null : f32(seededValues(seed + 3, n * w).map((v) => 1 + v)),
    r: f32(seededValues(seed + 4, size)),
    wc: c.wc ?? 0.7,
    ac: c.ac ?? 0.3,
    b,
  };
}

export interface Reference {
  x: number[];
  attn: number[];
  l1: number;
  hoyer: number;
  grads: Record<string, number[]>;
  dx0: number[];
  ddrive: number[] | null;
}

/** The jax-js sheet in float64: outputs and gradients of L. */
export async function reference(pr: Problem): Promise<Reference> {
  const { config, b } = pr;
  const n = config.num_columns;
  const d = config.dim;
  const shape = [b, n, d];
  const w = pr.conn ? pr.conn.k : n;
  const lossFn = (params: SheetParams, x0: np.Array, drive: np.Array): [np.Array, { x: np.Array; attn: np.Array; l1: np.Array; hoyer: np.Array }] => {
    let x = x0;
    const maps: np.Array[] = [];
    const l1: np.Array[] = [];
    const hoyer: np.Array[] = [];
    for (let s = 0; s < config.depth; s++) {
      if (s > 0 && pr.drive) x = x.add(drive.ref);
      const idx = pr.conn ? np.array(pr.conn.indices, { dtype: np.int32 }).reshape([n, pr.conn.k]) : undefined;
      const r = sheetStep(blockAt(params, s, config), x, config, idx);
      x = r.x;
      maps.push(r.attn);
      const a = columnActivity(x.ref);
      l1.push(a.l1);
      hoyer.push(a.hoyer);
    }
    drive.dispose();
    tree.dispose(params);
    const attn = np.stack(maps, 1); // [B, depth, N, W]
    const l1m = np.stack(l1).mean();
    let loss = x.ref.mul(f64(pr.r, shape)).sum().add(l1m.ref.mul(pr.ac));
    if (pr.wiring) loss = loss.add(wiringCost(attn.ref, f64(pr.wiring, [n, w]), 1).mul(pr.wc));
    return [loss, { x, attn, l1: l1m, hoyer: np.stack(hoyer).mean() }];
  };
  const [[loss, aux], [gp, gx, gd]] = valueAndGrad(lossFn, { argnums: [0, 1, 2], hasAux: true })(
    treeOf(pr.leaves, "float64"),
    f64(pr.x0, shape),
    pr.drive ? f64(pr.drive, shape) : np.zeros(shape, { dtype: np.float64 }),
  ) as unknown as [[np.Array, { x: np.Array; attn: np.Array; l1: np.Array; hoyer: np.Array }], [SheetParams, np.Array, np.Array]];
  loss.dispose();
  const num = async (a: np.Array): Promise<number[]> => Array.from((await a.data()) as ArrayLike<number>);
  const gl = await leavesOf(gp);
  tree.dispose(gp);
  const grads: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(gl)) grads[k] = Array.from(v.values);
  let ddrive: number[] | null = null;
  if (pr.drive) ddrive = await num(gd);
  else gd.dispose();
  return {
    x: await num(aux.x),
    attn: await num(aux.attn),
    l1: (await num(aux.l1))[0],
    hoyer: (await num(aux.hoyer))[0],
    grads,
    dx0: await num(gx),
    ddrive,
  };
}

/** Hand-made sources: row i reads itself and K - 1 columns picked by a fixed stride pattern. */
export const strided = (n: number, k: number): Int32Array => {
  const out = new Int32Array(n * k);
  for (let i = 0; i < n; i++) for (let t = 0; t < k; t++) out[i * k + t] = (i + t * 3 + (t > 0 ? 1 : 0)) % n;
  return out;
};
