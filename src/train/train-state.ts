/**
 * The optimiser loop's state: parameters and AdamW moments between steps, and the step itself
 * as composable gradient transformations (accumulate micro-batches -> average -> clip by global
 * norm -> AdamW). Each backend keeps the state where its step computes: jax-js arrays for the
 * jax backend (this file), host arrays for the native sheet's leaves and GPU buffers for the
 * webgpu sheet's (compiled-native.ts), so the big per-column weights never cross between
 * engines during training.
 */
import { canonicalParamOrder } from "../engine/param-tree.ts";
import { blockUntilReady, jit, type JsTree, numpy as np, tree } from "../engine/jax.ts";
import type { VisionParams } from "../model/vision.ts";
import { type AdamWConfig, type AdamWState, adamwUpdate, decayMaskFor, mapParamLeaves } from "../optim/adamw.ts";
import { clipByGlobalNorm, globalNorm } from "../optim/clip.ts";
import type { StepMetrics } from "./compiled.ts";
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

/**
 * What a train state saw since its last `read`, read from the device in one transfer: the
 * loop reads once per log interval (`log_every`), not once per micro-batch.
 */
export interface TrainReading {
  /** Mean metrics of the micro-batches since the last read (`correct`, a count, summed). */
  metrics: StepMetrics;
  /** Optimiser steps since the last read. */
  steps: number;
  /** Mean pre-clip global gradient norm of those steps (NaN without clipping; not finite when any step's was not). */
  gradNorm: number;
  /** Whether every parameter is finite now (a non-finite parameter stays so under AdamW, so this covers the interval). */
  finite: boolean;
}

/** Parameters and optimiser state owned by a backend between steps. */
export interface TrainState {
  /** Add the gradient of one micro-batch at optimiser step `step` (0-based) to the accumulator. Consumes `batch`; reads nothing. */
  accumulate(batch: DeviceBatch, step: number): Promise<void>;
  /** Average the accumulated gradients, clip them and take one AdamW step at `lr`; reads nothing that can stay on the device. */
  update(lr: number): Promise<void>;
  /** The metrics, gradient norms and finiteness since the last read (one transfer). Refused when nothing was accumulated since. */
  read(): Promise<TrainReading>;
  /**
   * The current parameters and optimiser state as jax-js trees in canonical key order, borrowed:
   * valid until the next update or dispose (asynchronous: a backend that keeps them on a device
   * reads them back here).
   */
  current(): Promise<{ params: VisionParams; opt: AdamWState<VisionParams> }>;
  dispose(): void;
}

/**
 * Host-side sums behind a {@link TrainReading}, for backends whose metrics and norms already
 * are host numbers (native, webgpu): add each micro-batch and step, `take` at a read.
 */
export class ReadingSums {
  private sum: StepMetrics | null = null;
  private micro = 0;
  private steps = 0;
  private norms = 0;

  addMicro(m: StepMetrics): void {
    if (this.sum === null) this.sum = { ...m };
    else for (const key of Object.keys(m) as (keyof StepMetrics)[]) this.sum[key] += m[key];
    this.micro++;
  }

  addStep(gradNorm: number): void {
    this.steps++;
    this.norms += gradNorm;
  }

  take(finite: boolean): TrainReading {
    if (this.sum === null || this.steps === 0) throw new Error("read: no optimiser step since the last read");
    const reading = { metrics: meanOver(this.sum, this.micro), steps: this.steps, gradNorm: this.norms / this.steps, finite };
    this.sum = null;
    this.micro = 0;
    this.steps = 0;
    this.norms = 0;
    return reading;
  }
}

/** Metrics summed over `count` micro-batches -> their means, but `correct` (a count) stays summed. */
function meanOver(sum: StepMetrics, count: number): StepMetrics {
  const out = { ...sum };
  for (const key of Object.keys(out) as (keyof StepMetrics)[]) if (key !== "correct") out[key] /= count;
  return out;
}

/** The order of a stacked metrics vector (a jitted step's aux output): the total, then the parts. */
export const METRICS = ["loss", "task", "wiring", "consistency", "repulsion", "activation_l1", "activation_hoyer", "spatial_correlation", "topo_blur", "correct"] as const;

/** A stacked metrics vector [METRICS.length] as named numbers. */
export function unstackMetrics(values: ArrayLike<number>): StepMetrics {
  return Object.fromEntries(METRICS.map((key, i) => [key, values[i]])) as unknown as StepMetrics;
}

/** The jax backend's gradient of one batch, its metrics stacked [METRICS.length] and left on the device. */
export type DeviceGradStep = (params: VisionParams, batch: DeviceBatch, step: number) => { metrics: np.Array; grads: VisionParams };

/**
 * The state of the jax backend: everything a jax-js tree. Takes ownership of `params` and `opt`;
 * like every train state it keeps its trees in canonical (sorted) key order, so the order in
 * which leaves are summed (e.g. the clipping norm) never depends on where the trees came from.
 */
export function jaxTrainState(gradStep: DeviceGradStep, params: VisionParams, opt: AdamWState<VisionParams>, spec: OptimizerSpec): TrainState {
  params = canonicalParamOrder(params);
  opt = { step: opt.step, mu: canonicalParamOrder(opt.mu), nu: canonicalParamOrder(opt.nu) };
  const decayMask = decayMaskFor(params, spec.noDecay);
  const lrScale = mapParamLeaves(params, (path) => spec.lrScale(path), "lrScale");
  let grads: VisionParams | null = null;
  let micro = 0;
  // on the device until `read`: the metrics summed over micro-batches, the norms over steps
  let metricSum: np.Array | null = null;
  let normSum: np.Array | null = null;
  let readMicro = 0;
  let readSteps = 0;
  return {
    async accumulate(batch, step) {
      const { metrics, grads: g } = gradStep(params, batch, step);
      grads = grads === null ? g : addTrees(grads, g);
      metricSum = metricSum === null ? metrics : metricSum.add(metrics);
      micro++;
      readMicro++;
    },
    async update(lr) {
      if (grads === null) throw new Error("update: no gradient was accumulated");
      let g: VisionParams = micro > 1 ? scaleTree(grads, 1 / micro) : grads;
      grads = null;
      micro = 0;
      if (spec.clipNorm !== null) {
        const clipped = clipByGlobalNorm(g, spec.clipNorm);
        g = clipped.grads;
        normSum = normSum === null ? clipped.norm : normSum.add(clipped.norm);
      }
      ({ params, state: opt } = adamwUpdate(params, g, opt, lr, spec.adamw, decayMask, lrScale));
      readSteps++;
      // jax-js is lazy: run the step now (nothing crosses to the host), else the pending steps of
      // a log interval keep every intermediate buffer alive (20 tiny-preset steps: over 4 GiB)
      await blockUntilReady([params, opt.mu, opt.nu, metricSum, normSum]);
    },
    async read() {
      if (metricSum === null || readSteps === 0) throw new Error("read: no optimiser step since the last read");
      const [leaves] = tree.flatten(params as unknown as JsTree<np.Array>);
      const values = await readingJit(metricSum, normSum ?? np.array(NaN), leaves.map((x) => x.ref)).data();
      const k = METRICS.length;
      const reading = { metrics: meanOver(unstackMetrics(values), readMicro), steps: readSteps, gradNorm: values[k] / readSteps, finite: values[k + 1] === 0 };
      metricSum = null;
      normSum = null;
      readMicro = 0;
      readSteps = 0;
      return reading;
    },
    current: async () => ({ params, opt }),
    dispose() {
      tree.dispose([params, opt.mu, opt.nu, grads, metricSum, normSum]);
    },
  };
}

/** [metric sums..., norm sum, non-finite parameter count] in one vector, so a read is one transfer. */
const readingJit = jit((metricSum: np.Array, normSum: np.Array, leaves: np.Array[]): np.Array =>
  np.concatenate([metricSum, normSum.reshape([1]), countNonFinite(leaves).reshape([1])]),
);

/** How many values of all leaves are NaN or infinite (traceable). Consumes `leaves`. */
function countNonFinite(leaves: np.Array[]): np.Array {
  let acc: np.Array | null = null;
  for (const x of leaves) {
    const s = np.isfinite(x).astype(np.float32).mul(-1).add(1).sum();
    acc = acc === null ? s : acc.add(s);
  }
  return acc ?? np.zeros([]);
}

const nonFiniteCount = jit(countNonFinite);

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
