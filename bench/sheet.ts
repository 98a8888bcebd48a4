/**
 * Sheet benchmark: jit-compiled forward pass, and forward+backward of a scalar
 * loss (mean squared final state + L1 wiring cost of the attention maps) with
 * respect to the parameters, on a reference sheet.
 */
import { jit, numpy as np, random, tree, valueAndGrad } from "../src/engine/jax.ts";
import type { JsTree } from "../src/engine/jax.ts";
import type { SheetConfig, SheetConfigInput } from "../src/model/config.ts";
import { resolveSheetConfig } from "../src/model/config.ts";
import type { SheetParams } from "../src/model/params.ts";
import { initSheet, sheetApply } from "../src/model/sheet.ts";
import { wiringCostFromDistances } from "../src/objectives/wiring-cost.ts";
import type { BenchResult } from "./harness.ts";
import { timeCall, withFlops } from "./harness.ts";
import { distanceMatrix } from "../src/geometry/metric.ts";

/** The reference sheet: N = 256 columns on a 16 x 16 grid, D 128, qk 32, MLP 128, depth 4. */
export const REFERENCE_SHEET: SheetConfigInput = {
  geometry: { kind: "grid", height: 16, width: 16 },
  dim: 128,
  qk_dim: 32,
  mlp_dim: 128,
  depth: 4,
};

/**
 * Analytic FLOPs of one forward pass of the sheet (multiply-add = 2 FLOPs).
 *
 * Per recurrent step and per sample, with N columns, state width D, query/key
 * width QK and MLP width MLP, only the matrix products are counted:
 *   q and k projections        2 * 2 * N * D * QK
 *   scores q.k^T               2 * N * N * QK
 *   attention-weighted sum A.h 2 * N * N * D
 *   fc1                        2 * N * D * MLP
 *   fc2                        2 * N * MLP * D
 * times `depth` steps times `batch` samples. Element-wise work (LayerNorm,
 * softmax, GELU, bias adds, residuals, the loss) is not counted, so the
 * GFLOP/s derived from it is "matmul-equivalent" throughput and a slight
 * under-estimate of work actually done.
 */
export function sheetForwardFlops(config: SheetConfig, batch: number): number {
  const { num_columns: n, dim: d, qk_dim: qk, mlp_dim: mlp, depth } = config;
  const perStep = 2 * 2 * n * d * qk + 2 * n * n * qk + 2 * n * n * d + 2 * n * d * mlp + 2 * n * mlp * d;
  return perStep * depth * batch;
}

/** Backward costs about twice the forward, so forward+backward counts as 3x forward. */
export const BACKWARD_FACTOR = 2;

/** Options of the sheet benchmark. */
export interface SheetBenchOptions {
  /** Timed repeats after the warm-up (the median is reported). */
  repeats: number;
  /** Batch size (default 32). */
  batch?: number;
  /** Sheet config (default REFERENCE_SHEET). */
  sheet?: SheetConfigInput;
  /** Seed for parameters and inputs (default 0). */
  seed?: number;
  /** Wiring-cost strength of the fwd+bwd loss (default 0.01). */
  wiringLambda?: number;
  /** Called before each measurement, e.g. to print progress. */
  onStart?: (name: string) => void;
}

/**
 * Benchmark the sheet: returns one result for the jit-compiled forward pass
 * and one for the jit-compiled forward+backward (value and gradient of the loss
 * with respect to every parameter). Call `await initEngine()` first.
 * Every array it creates is disposed before it returns.
 */
export async function benchSheet(options: SheetBenchOptions): Promise<BenchResult[]> {
  const batch = options.batch ?? 32;
  const seed = options.seed ?? 0;
  const lambda = options.wiringLambda ?? 0.01;
  const { config, geometry } = resolveSheetConfig(options.sheet ?? REFERENCE_SHEET);
  const n = config.num_columns;

  const params = initSheet(config, geometry, seed);
  const x = random.normal(random.key(seed + 1), [batch, n, config.dim]);
  const distances = np.array(distanceMatrix(geometry)).reshape([n, n]);

  const workload = {
    batch,
    num_columns: n,
    geometry: config.geometry,
    dim: config.dim,
    qk_dim: config.qk_dim,
    mlp_dim: config.mlp_dim,
    depth: config.depth,
    dtype: "float32",
  };
  const fwdFlops = sheetForwardFlops(config, batch);
  const flopText =
    "matmuls only, multiply-add = 2 FLOPs; per step per sample: 2*2*N*D*QK + 2*N*N*QK + 2*N*N*D + 2*N*D*MLP + 2*N*MLP*D";

  const forward = jit((p: SheetParams, input: np.Array): np.Array => {
    const { x: out, attn } = sheetApply(p, input, config);
    attn.dispose();
    return out;
  });

  const loss = (p: SheetParams, input: np.Array, dist: np.Array): np.Array => {
    const { x: out, attn } = sheetApply(p, input, config);
    const wiring = wiringCostFromDistances(attn, dist, { form: "l1", lambda });
    return np.square(out).mean().add(wiring);
  };
  const forwardBackward = jit((p: SheetParams, input: np.Array, dist: np.Array) =>
    valueAndGrad(loss)(p, input, dist),
  );

  const results: BenchResult[] = [];
  try {
    options.onStart?.("sheet forward");
    const fwdTiming = await timeCall(async () => {
      const out = forward(tree.ref(params), x.ref);
      await out.data();
    }, options.repeats);
    results.push(
      withFlops("sheet forward", workload, fwdTiming, fwdFlops, `forward; ${flopText}`),
    );

    options.onStart?.("sheet forward+backward");
    const fbTiming = await timeCall(async () => {
      const [value, grads] = forwardBackward(tree.ref(params), x.ref, distances.ref);
      await Promise.all([value, ...tree.leaves(grads)].map((leaf) => leaf.data()));
    }, options.repeats);
    results.push(
      withFlops(
        "sheet forward+backward",
        { ...workload, loss: `mean(x_final^2) + l1 wiring cost (lambda ${lambda})`, grad: "all parameters" },
        fbTiming,
        (1 + BACKWARD_FACTOR) * fwdFlops,
        `3 x forward (backward ~ 2 x forward); forward: ${flopText}`,
      ),
    );
    // Leak guard: every call took its own references, so the inputs must be back to one owner.
    const held = [x, distances, ...tree.leaves<np.Array>(params as unknown as JsTree<np.Array>)].filter((a) => a.refCount !== 1);
    if (held.length > 0) console.warn(`benchSheet: ${held.length} input arrays still hold extra references (leak)`);
  } finally {
    forward.dispose();
    forwardBackward.dispose();
    tree.dispose(params);
    x.dispose();
    distances.dispose();
  }
  return results;
}
