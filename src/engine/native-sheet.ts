/**
 * The native sheet kernels (a C++ N-API addon in native/, built by `npm ci`): the column sheet's
 * forward and hand-derived backward over host Float32Arrays. This file is the contract between
 * the addon and TypeScript: the config, the order of parameter leaves, and the two calls.
 *
 * Layouts are the jax-js model's (row-major, contiguous): states x [B, N, D]; a leaf is
 * [depth]? [N]? + its own shape ([depth] for a stack, `recurrent: false`; [N] when the module is
 * untied), exactly as src/model/params.ts documents them.
 *
 * The addon is optional: when it did not build or cannot load, `loadNativeSheet()` returns the
 * reason and everything runs on jax-js.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Static description of a sheet; buffers for the backward are preallocated from it. */
export interface NativeSheetConfig {
  /** Largest batch a call may use (activation buffers are sized for it). */
  batch: number;
  /** Columns N. */
  columns: number;
  dim: number;
  /** Query/key width per head. */
  qk_dim: number;
  heads: number;
  mlp_dim: number;
  depth: number;
  recurrent: boolean;
  untie_norm: boolean;
  untie_attn: boolean;
  untie_mlp: boolean;
  value_proj: boolean;
  attn_bias: boolean;
  skip_attn: boolean;
  attn_scale: number;
  norm_eps: number;
  /** Sources per column K of a sparse sheet; 0 for a dense sheet (every column reads all N). */
  sources: number;
  /** The drive is added again before every step after the first (vision `inject: "every"`). */
  inject_every: boolean;
  /**
   * Force an instruction set (tests, benchmarks); default: env COLUMNFORMER_SIMD, else the widest
   * the CPU has whose vector is not much wider than the batch (the per-column kernels keep the
   * batch in vector lanes padded to the width: AVX-512 for batch > 8, AVX2 for 5..8, generic
   * (4 lanes) for batch <= 4). Throws when the CPU lacks it.
   */
  simd?: "avx512" | "avx2" | "generic";
  /** Threads of this sheet's kernels (>= 1); default: env COLUMNFORMER_THREADS (0 or unset: all cores). */
  threads?: number;
}

/**
 * Parameter leaves in the order the addon takes them, as paths in SheetParams. `attn.v.*` and
 * `attn.o.*` are present only with value_proj, `attn.attn_bias` only with attn_bias; the others
 * always. Pass (and receive gradients for) exactly the present ones, in this order.
 */
export const SHEET_LEAVES = [
  "norm1.weight",
  "norm1.bias",
  "attn.q.weight",
  "attn.q.bias",
  "attn.k.weight",
  "attn.v.weight",
  "attn.v.bias",
  "attn.o.weight",
  "attn.o.bias",
  "attn.attn_bias",
  "norm2.weight",
  "norm2.bias",
  "mlp.fc1.weight",
  "mlp.fc1.bias",
  "mlp.fc2.weight",
] as const;

export type SheetLeafName = (typeof SHEET_LEAVES)[number];

/** The leaves a config has, in addon order. */
export function sheetLeaves(c: Pick<NativeSheetConfig, "value_proj" | "attn_bias">): SheetLeafName[] {
  return SHEET_LEAVES.filter((name) => (name.startsWith("attn.v.") || name.startsWith("attn.o.") ? c.value_proj : name === "attn.attn_bias" ? c.attn_bias : true));
}

export interface NativeForwardArgs {
  /** Sheet parameters in `sheetLeaves` order. */
  params: Float32Array[];
  /** Initial column states [B, N, D]. */
  x0: Float32Array;
  /** inject_every: the drive [B, N, D] added before steps 2..depth; null otherwise. */
  drive: Float32Array | null;
  /** Sparse sheets: source columns int32 [N, K] (row i: where column i reads from); null when dense. */
  connectivity: Int32Array | null;
  /** Wiring weights W with lambda 1: [N, N] dense, [N, K] sparse (entry (i, t): source connectivity[i, t]); null = no wiring cost (reported 0). */
  wiringWeights: Float32Array | null;
  /** Batch B of this call (<= config.batch). */
  batch: number;
  /** Keep the activations for `backward` (a training step); false for evaluation. */
  train: boolean;
  /** When given, filled with every step's head-mean attention, [B, depth, N, N] dense or [B, depth, N, K] sparse. */
  attn: Float32Array | null;
  /**
   * Optional: write the final states here ([B, N, D]) and return this array as `x`, instead of
   * allocating a new one per call (a fresh 4 MiB array costs ~1,000 page faults, several ms).
   */
  xOut?: Float32Array | null;
}

export interface NativeForwardResult {
  /** Final column states [B, N, D]. */
  x: Float32Array;
  /** Mean over (batch, step, target column i) of sum_j A_ij W_ij, A the head-mean attention (0 without wiring weights). */
  wiring: number;
  /** Mean over steps of mean |x| of the states after each step (the activation-L1 penalty, coefficient 1). */
  l1: number;
  /** Mean over steps, batch and columns of the Hoyer sparsity (sqrt(D) - |x|_1 / |x|_2) / (sqrt(D) - 1) of the states after each step (measured, never differentiated; |x|_2 = sqrt(sum x^2 + 1e-12)). */
  hoyer: number;
  /** Head-mean attention averaged over batch and steps, [N, N] dense or [N, K] sparse (the cotangent of the wiring weights is wiringCoef * attnMean / N). */
  attnMean: Float32Array;
}

export interface NativeBackwardArgs {
  /** Gradient of the loss with respect to the final states [B, N, D]. */
  dx: Float32Array;
  /** The backward adds the gradient of wiringCoef * wiring (folded into the attention backward). */
  wiringCoef: number;
  /** ... and of activationCoef * l1. */
  activationCoef: number;
  /** Out: parameter gradients in `sheetLeaves` order (overwritten). */
  grads: Float32Array[];
  /** Out: gradient with respect to x0 [B, N, D]. */
  dx0: Float32Array;
  /** Out (inject_every): gradient with respect to the drive [B, N, D]; null otherwise. */
  ddrive: Float32Array | null;
}

/**
 * One sheet's kernels and activation buffers. `backward` differentiates the last `forward`, which
 * must have had `train: true`: an evaluation forward (`train: false`) reuses the same buffers, so
 * after one `backward` throws until the next training forward. `backward` also reads the
 * parameter arrays passed to that forward (it keeps references, not copies): leave them unchanged
 * until it has run. Calls are synchronous and run on the addon's own threads.
 */
export interface NativeSheet {
  forward(args: NativeForwardArgs): NativeForwardResult;
  backward(args: NativeBackwardArgs): void;
  /** Free the activation buffers now (otherwise the garbage collector does); later calls throw. */
  dispose(): void;
  /** This sheet's instruction set, thread count and activation-buffer size in bytes. */
  info?(): { simd: string; threads: number; bytes: number };
}

/** One AdamW update of host leaves in place (see native/adamw.h; the same arithmetic as src/optim/adamw.ts). */
export interface NativeAdamWArgs {
  params: Float32Array[];
  grads: Float32Array[];
  /** First and second moments, same lengths as params (updated in place). */
  m: Float32Array[];
  v: Float32Array[];
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay per leaf (0 where the decay mask is false). */
  weightDecay: number[];
  /** The update's step t (1-based), for the bias corrections 1 - beta^t. */
  step: number;
  /** The gradients are multiplied by this first (default 1): averaging over micro-batches, clipping. */
  gradScale?: number;
}

/** What the addon exports. */
export interface NativeAddon {
  createSheet(config: NativeSheetConfig): NativeSheet;
  /** AdamW on host leaves, in place. */
  adamw(args: NativeAdamWArgs): void;
  /** Sum of squares of all the arrays (in double), e.g. for a global gradient norm. */
  sumSquares(arrays: Float32Array[]): number;
  /** The instruction set the kernels run with ("avx512", "avx2" or "generic") and the thread count. */
  info(): { simd: string; threads: number; version: string };
}

/** Whether this is Node.js: the viewer's page bundles this module (the WebGPU engine imports it) but has no addon to load. */
const IN_NODE = typeof process !== "undefined" && typeof process.versions?.node === "string";
const root = IN_NODE ? path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..") : "";

/** Where `npm ci` puts the addon (env COLUMNFORMER_NATIVE_ADDON overrides it), and the file that records why it did not build. */
export const NATIVE_ADDON_PATH = IN_NODE ? process.env.COLUMNFORMER_NATIVE_ADDON || path.join(root, "build", "Release", "columnformer_native.node") : "";
export const NATIVE_BUILD_ERROR_PATH = IN_NODE ? path.join(root, "build", "native-build-error.txt") : "";

let loaded: { addon: NativeAddon } | { error: string } | null = null;

/** Load the addon once; `{error}` says why it is not available. */
export function loadNativeSheet(): { addon: NativeAddon } | { error: string } {
  if (loaded) return loaded;
  if (!IN_NODE) {
    loaded = { error: "the native addon does not run in a browser" };
    return loaded;
  }
  if (!existsSync(NATIVE_ADDON_PATH)) {
    const why = existsSync(NATIVE_BUILD_ERROR_PATH) ? readFileSync(NATIVE_BUILD_ERROR_PATH, "utf8").trim().split("\n")[0] : "it was not built (run `npm run build:native`)";
    loaded = { error: `the native addon is not available: ${why}` };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as NativeAddon;
    loaded = { addon };
  } catch (e) {
    loaded = { error: `the native addon failed to load: ${(e as Error).message.split("\n")[0]}` };
  }
  return loaded;
}
