/// <reference types="@webgpu/types" />
/**
 * Which device trains in the page: the project's WGSL sheet kernels (src/engine/webgpu/) on
 * the browser's WebGPU adapter when there is one, else jax-js on the page's jax-js device (wasm
 * when the browser has no WebGPU). No silent fallback: `note` is one line saying why WebGPU
 * was not used, and `label` names the device in the panel.
 */
import type { Backend } from "../../engine/backend.ts";
import type { SheetEngine } from "../../engine/sheet-engine.ts";
import { loadWebGPUEngine } from "../../engine/webgpu/engine.ts";
import { type BrowserDevice, webgpuRuledOut } from "./engine.ts";

export interface TrainDevice {
  /** The training seam's backend: "webgpu" (WGSL sheet kernels) or "jax" (jax-js runs everything). */
  backend: Backend;
  engine: SheetEngine | null;
  /** The device in words, e.g. "webgpu (WGSL sheet kernels: browser, swiftshader)" or "wasm (jax-js)". */
  label: string;
  /** Why WebGPU is not training, or null when it is. */
  note: string | null;
}

/** Choose once per page; `prefer` is the page's `?backend=` (wasm forces jax-js), `jax` the device jax-js runs on. */
export async function chooseTrainDevice(prefer: string | null, jax: BrowserDevice): Promise<TrainDevice> {
  const onJax = (why: string): TrainDevice => ({ backend: "jax", engine: null, label: `${jax} (jax-js)`, note: `${why}; training on ${jax} (jax-js)` });
  const ruledOut = webgpuRuledOut(prefer);
  if (ruledOut) return onJax(ruledOut);
  const r = await loadWebGPUEngine();
  if ("error" in r) return onJax(r.error);
  return { backend: "webgpu", engine: r.engine, label: `webgpu (WGSL sheet kernels: ${r.engine.info().device}; front end and readout on jax-js ${jax})`, note: null };
}
