/**
 * The optimiser loop's state: parameters and AdamW moments between steps, and the step itself
 * as composable gradient transformations (accumulate micro-batches -> average -> clip by global
 * norm -> AdamW). Each backend keeps the state where its step computes: jax-js arrays for the
 * jax backend (this file), host arrays for the native sheet's leaves and GPU buffers for the
 * webgpu sheet's (compiled-native.ts), so the big per-column weights never cross between
 * engines during training.
 */
import { canonicalParamOrder } from "../engine/param-tree.ts";
import { jit, type JsTree, numpy as np, tree } from "../engine/jax.ts";
import type { VisionParams } from "../model/vision.ts";
import { type AdamWConfig, type AdamWState, adamwUpdate, decayMaskFor, mapParamLeaves } from "../optim/adamw.ts";
import { clipByGlobalNorm, globalNorm } from "../optim/clip.ts";
import type { CompiledModel, StepMetrics } from "./compiled.ts";
import type { DeviceBatch } from "./loss.ts";

/** How parameters are updated. */
export interface OptimizerSpec {
  adamw: AdamWConfig;
  /** Clip the averaged gradient to this global norm (null: no clipping). */
  clipNorm: number | null;
  /** True where a parameter gets no weight decay (by its dotted path and shape). */
  noDecay: (path: string, shape: number[]) => boolean;
  /** Learning-rate multiplier of a parameter (1 for most; learned positions move faster). */
  lrScale: (path: string) => number;
}

/** Parameters and optimiser state owned by a backend between steps. */
export interface TrainState {
  /** Gradient of one micro-batch at optimiser step `step` (0-based), added to the accumulator. Consumes `batch`. */
  accumulate(batch: DeviceBatch, step: number): Promise<StepMetrics>;
  /** Average the accumulated gradients, clip them and take one AdamW step at `lr`. Returns the pre-clip global norm (NaN without clipping). */
  update(lr: number): Promise<number>;
  /** Whether every parameter is finite. */
  finite(): Promise<boolean>;
  /**
   * The current parameters and optimiser state as jax-js trees in canonical key order, borrowed:
   * valid until the next update or dispose (asynchronous: a backend that keeps them on a device
   * reads them back here).
   */
  current(): Promise<{ params: VisionParams; opt: AdamWState<VisionParams> }>;
  dispose(): void;
}

/**
 * The state of the jax backend: everything a jax-js tree. Takes ownership of `params` and `opt`;
 * like every train state it keeps its trees in canonical (sorted) key order, so the order in
 * which leaves are summed (e.g. the clipping norm) never depends on where the trees came from.
 */
export function jaxTrainState(compiled: CompiledModel, params: VisionParams, opt: AdamWState<VisionParams>, spec: OptimizerSpec): TrainState {
  params = canonicalParamOrder(params);
  opt = { step: opt.step, mu: canonicalParamOrder(opt.mu), nu: canonicalParamOrder(opt.nu) };
  const decayMask = decayMaskFor(params, spec.noDecay);
  const lrScale = mapParamLeaves(params, (path) => spec.lrScale(path), "lrScale");
  let grads: VisionParams | null = null;
  let micro = 0;
  return {
    async accumulate(batch, step) {
      const { metrics, grads: g } = await compiled.gradStep(params, batch, step);
      grads = grads === null ? g : addTrees(grads, g);
      micro++;
      return metrics;
    },
    async update(lr) {
      if (grads === null) throw new Error("update: no gradient was accumulated");
      let g: VisionParams = micro > 1 ? scaleTree(grads, 1 / micro) : grads;
      grads = null;
      micro = 0;
      let norm = NaN;
      if (spec.clipNorm !== null) {
        const clipped = clipByGlobalNorm(g, spec.clipNorm);
        g = clipped.grads;
        norm = (await clipped.norm.data())[0];
      }
      ({ params, state: opt } = adamwUpdate(params, g, opt, lr, spec.adamw, decayMask, lrScale));
      return norm;
    },
    finite: () => allFinite(params),
    current: async () => ({ params, opt }),
    dispose() {
      tree.dispose([params, opt.mu, opt.nu, grads]);
    },
  };
}

/** How many values of all leaves are NaN or infinite. */
const nonFiniteCount = jit((leaves: np.Array[]): np.Array => {
  let acc: np.Array | null = null;
  for (const x of leaves) {
    const s = np.isfinite(x).astype(np.float32).mul(-1).add(1).sum();
    acc = acc === null ? s : acc.add(s);
  }
  return acc ?? np.zeros([]);
});

/** Whether every leaf of a tree is finite (one reduction on the device). Borrows `t`. */
export async function allFinite(t: object): Promise<boolean> {
  const [leaves] = tree.flatten(t as unknown as JsTree<np.Array>);
  if (leaves.length === 0) return true;
  return (await nonFiniteCount(leaves.map((x) => x.ref)).data())[0] === 0;
}

/** The global norm's square of a tree, on the host. Borrows `t`. */
export async function sumOfSquares(t: object): Promise<number> {
  const [leaves] = tree.flatten(t as unknown as JsTree<np.Array>);
  if (leaves.length === 0) return 0;
  return (await globalNorm(t).data())[0] ** 2;
}

/** Leafwise a + b. Consumes both. */
export function addTrees<T extends object>(a: T, b: T): T {
  const [la, def] = tree.flatten(a as unknown as JsTree<np.Array>);
  const [lb] = tree.flatten(b as unknown as JsTree<np.Array>);
  return tree.unflatten(def, la.map((x, i) => x.add(lb[i]))) as unknown as T;
}

// Jitted so that `s` is an argument: an eager `x.mul(s)` compiles a new Wasm kernel for every
// new value of s (jax-js bakes scalars into kernels), and V8 never frees compiled code, so a
// per-step clip scale exhausted the process's memory mappings after ~17k steps.
const scaleJit = jit((leaves: np.Array[], s: np.Array): np.Array[] => {
  const out = leaves.map((x) => x.mul(s.ref));
  s.dispose();
  return out;
});

/** Leafwise a * s (one kernel per tree shape, whatever s is). Consumes `a`. */
export function scaleTree<T extends object>(a: T, s: number): T {
  const [la, def] = tree.flatten(a as unknown as JsTree<np.Array>);
  return tree.unflatten(def, scaleJit(la, s as unknown as np.Array)) as unknown as T;
}
