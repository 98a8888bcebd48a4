/// <reference types="@webgpu/types" />
/**
 * The WebGPU sheet engine (a SheetEngine, src/engine/sheet-engine.ts): sheets on the process's
 * WebGPU device (device.ts) and the resident training state (resident.ts: parameters, moments
 * and the gradient accumulator kept on the device, AdamW there); AdamW and the gradient norm of
 * host leaves (the engine's host path) on the native addon's threads when it is built, else in
 * JavaScript with the same float32 arithmetic.
 */
import { loadNativeSheet, type NativeAdamWArgs, type NativeSheetConfig } from "../native-sheet.ts";
import type { SheetEngine } from "../sheet-engine.ts";
import { acquireWebGPU, type WebGPUContext, webgpuAcquired } from "./device.ts";
import { hostAdamW, hostSumSquares } from "./host-optim.ts";
import { PipelineCache } from "./program.ts";
import { WebGPUResident } from "./resident.ts";
import { WebGPUSheet, type WebGPUSheetOptions } from "./sheet.ts";

export class WebGPUEngine implements SheetEngine {
  private readonly cache: PipelineCache;
  constructor(readonly context: WebGPUContext) {
    this.cache = new PipelineCache(context.device);
  }

  createSheet(config: NativeSheetConfig, options?: WebGPUSheetOptions): WebGPUSheet {
    return new WebGPUSheet(this.context, this.cache, config, options);
  }

  adamw(args: NativeAdamWArgs): void {
    const native = loadNativeSheet();
    if ("addon" in native) native.addon.adamw(args);
    else hostAdamW(args);
  }

  sumSquares(arrays: Float32Array[]): number {
    const native = loadNativeSheet();
    return "addon" in native ? native.addon.sumSquares(arrays) : hostSumSquares(arrays);
  }

  resident(leaves: { params: Float32Array[]; m: Float32Array[]; v: Float32Array[] }): WebGPUResident {
    return new WebGPUResident(this.context, this.cache, leaves);
  }

  info(): { device: string; featureLevel: string } {
    return { device: this.context.description, featureLevel: this.context.featureLevel };
  }
}

let engine: WebGPUEngine | null = null;

/** The process's WebGPU engine, or one line saying why there is none (acquires the device at the first call). */
export async function loadWebGPUEngine(): Promise<{ engine: WebGPUEngine } | { error: string }> {
  const r = await acquireWebGPU();
  if ("error" in r) return r;
  engine ??= new WebGPUEngine(r.context);
  return { engine };
}

/** The engine if `loadWebGPUEngine()` has finished (synchronous; null otherwise), or its error. */
export function webgpuEngineReady(): { engine: WebGPUEngine } | { error: string } | null {
  const r = webgpuAcquired();
  if (!r) return null;
  if ("error" in r) return r;
  engine ??= new WebGPUEngine(r.context);
  return { engine };
}
