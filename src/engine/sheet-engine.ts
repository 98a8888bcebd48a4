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

/** An engine that creates sheets and updates host leaves (the native NativeAddon is one). */
export interface SheetEngine {
  createSheet(config: NativeSheetConfig): SheetKernel;
  /** AdamW on host leaves, in place (the same arithmetic as src/optim/adamw.ts). */
  adamw(args: NativeAdamWArgs): void;
  /** Sum of squares of all the arrays (in double). */
  sumSquares(arrays: Float32Array[]): number;
}
