/**
 * What the training seam (src/train/compiled-native.ts) needs of an engine that runs the column
 * sheet outside jax-js: the native C++ addon (src/engine/native-sheet.ts) and the WebGPU sheet
 * (src/engine/webgpu/) both satisfy it, with the same config, parameter leaves and arguments.
 * The native calls are synchronous; the WebGPU ones return promises (a GPU readback is
 * asynchronous), so callers `await` every call.
 */
import type { NativeAdamWArgs, NativeBackwardArgs, NativeForwardArgs, NativeForwardResult, NativeSheetConfig } from "./native-sheet.ts";

/** One sheet's kernels and buffers (the native NativeSheet is one). */
export interface SheetKernel {
  forward(args: NativeForwardArgs): NativeForwardResult | Promise<NativeForwardResult>;
  backward(args: NativeBackwardArgs): void | Promise<void>;
  /** Free the buffers now; later calls throw. */
  dispose(): void;
}

/** AdamW's arguments without the arrays (a resident state holds them). */
export type ResidentAdamWArgs = Omit<NativeAdamWArgs, "params" | "grads" | "m" | "v">;

/**
 * The sheet's training state kept on an engine's device across steps (the WebGPU engine has
 * one; native keeps it on the host): parameters, AdamW moments and a gradient accumulator,
 * loaded from the host once. Forwards read its parameters and backwards add their gradients to
 * its accumulator without either crossing to the host; the host sees them only through `read`.
 * Leaves are in addon order (sheetLeaves); the kernels passed in must be the same engine's.
 */
export interface ResidentState {
  /** A forward of `kernel` reading the resident parameters. */
  forward(kernel: SheetKernel, args: Omit<NativeForwardArgs, "params">): Promise<NativeForwardResult>;
  /** The backward of the last training forward, adding the gradients to the accumulator. */
  backward(kernel: SheetKernel, args: Omit<NativeBackwardArgs, "grads">): Promise<void>;
  /** Add host gradients (one array per leaf) to the accumulator: penalties computed outside the sheet. */
  accumulate(grads: Float32Array[]): Promise<void>;
  /** Sum of squares of the accumulated gradient (float32 on the device; one float crosses). */
  gradSquares(): Promise<number>;
  /** One AdamW update of the resident leaves with the accumulated gradient (the arithmetic of SheetEngine.adamw); then clears the accumulator. */
  adamw(args: ResidentAdamWArgs): Promise<void>;
  /** Whether every resident parameter is finite (one float crosses). */
  finite(): Promise<boolean>;
  /** Copy the parameters and moments into host leaves. */
  read(into: { params: Float32Array[]; m: Float32Array[]; v: Float32Array[] }): Promise<void>;
  dispose(): void;
}

/** An engine that creates sheets and updates host leaves (the native NativeAddon is one). */
export interface SheetEngine {
  createSheet(config: NativeSheetConfig): SheetKernel;
  /** AdamW on host leaves, in place (the same arithmetic as src/optim/adamw.ts). */
  adamw(args: NativeAdamWArgs): void;
  /** Sum of squares of all the arrays (in double). */
  sumSquares(arrays: Float32Array[]): number;
  /** A resident training state loaded from host leaves (copied; the arrays stay the caller's), where the engine has a device to keep one. */
  resident?(leaves: { params: Float32Array[]; m: Float32Array[]; v: Float32Array[] }): ResidentState;
}
