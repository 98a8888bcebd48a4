/**
 * The compiled model: the one seam between the model's maths and the engine that runs it.
 * Every command (train, eval, probe, analyze, sweep, prune, grow, progressive) goes through
 * these calls; `backend.ts` decides which implementation they get:
 *   - jax: the whole objective under jit(valueAndGrad) (compiled-jax.ts), the reference;
 *   - native: jax-js computes the front end (patch embedding, input placement) and the readout
 *     with their vjps, the native C++ sheet runs forward and hand-written backward in between
 *     (compiled-native.ts).
 */
import type { numpy as np } from "../engine/jax.ts";
import type { VisionParams } from "../model/vision.ts";
import type { Backend } from "../engine/backend.ts";
import type { AdamWState } from "../optim/adamw.ts";
import type { DeviceBatch } from "./loss.ts";
import type { OptimizerSpec, TrainState } from "./train-state.ts";

/** Scalars of one batch (host numbers; penalties unweighted). */
export interface StepMetrics {
  /** The weighted total that the gradient is of. */
  loss: number;
  /** MIM normalised MSE or classification cross-entropy. */
  task: number;
  /** Wiring cost with lambda 1 (the configured form). */
  wiring: number;
  /** Feature-consistency penalty with coefficient 1 (0 when off). */
  consistency: number;
  /** Repulsion of learned positions with coefficient 1 (0 when the geometry is fixed). */
  repulsion: number;
  /** Mean |x| of the column states over steps. */
  activation_l1: number;
  /** Mean Hoyer sparsity of the column states over steps (measured, not penalised). */
  activation_hoyer: number;
  /** TDANN spatial loss of the final states with coefficient 1 (0 when off). */
  spatial_correlation: number;
  /** TopoLoss weight-blur penalty with coefficient 1 (0 when off). */
  topo_blur: number;
  /** Correct predictions in the batch (classification; 0 for MIM). */
  correct: number;
}

/** What `encode` returns. */
export interface Encoded {
  /** Final states [B, P_out, D] of the output area, or [B, N, D] of every column with `columns: "all"`. */
  states: Float32Array;
  /** With `attention`: every step's attention summed over the batch, [depth, N, N] ([depth, N, K] sparse); else null. */
  attention: Float32Array | null;
}

export interface EncodeOptions {
  /** Which columns' final states to return (default the output area). */
  columns?: "output" | "all";
  /** Also return the attention maps summed over the batch. */
  attention?: boolean;
}

/** The model's compiled calls. Each borrows `params` and consumes the batch / images it is given. */
export interface CompiledModel {
  backend: Backend;
  /** Loss, metrics and parameter gradients of one batch; penalty coefficients are those of optimiser step `step` (0-based). */
  gradStep(params: VisionParams, batch: DeviceBatch, step: number): Promise<{ metrics: StepMetrics; grads: VisionParams }>;
  /**
   * The optimiser loop's state on this backend (see train-state.ts): takes ownership of `params`
   * and `opt`; its `accumulate` / `update` are the training step.
   */
  trainState(params: VisionParams, opt: AdamWState<VisionParams>, spec: OptimizerSpec): Promise<TrainState>;
  /** Metrics of one batch (no gradient). */
  evalStep(params: VisionParams, batch: DeviceBatch, step: number): Promise<StepMetrics>;
  /** Final states (and attention) of unmasked images [B, H, W, C]. */
  encode(params: VisionParams, images: np.Array, options?: EncodeOptions): Promise<Encoded>;
  /** MIM: predicted patches [B, P, p*p*C] (normalised units) of images with `mask` [B, P]. */
  predictPatches(params: VisionParams, images: np.Array, mask: np.Array): Promise<Float32Array>;
  /** Free compiled functions and buffers. */
  dispose(): void;
}
