/**
 * jax-js in the page: WebGPU where the browser offers it, else WebAssembly (threads when the
 * page is cross-origin isolated). `?backend=wasm` or `?backend=webgpu` forces one.
 */
import { defaultDevice, init } from "./jax-browser.ts";

export type BrowserDevice = "wasm" | "webgpu";

let note: string | null = null;

/** Why the page cannot use WebGPU before any adapter is asked for (`?backend=wasm`, no navigator.gpu), or null. */
export function webgpuRuledOut(prefer: string | null): string | null {
  if (prefer === "wasm") return "?backend=wasm";
  if (!("gpu" in navigator)) return "this browser has no WebGPU (navigator.gpu is missing)";
  return null;
}

/** One line saying why jax-js is not on WebGPU (no navigator.gpu, no adapter, an init error, ?backend=wasm), or null when it is. */
export function webgpuNote(): string | null {
  return note;
}

/** Initialise jax-js; returns the device in use (when it is not WebGPU, webgpuNote() says why and the console gets the line). */
export async function initBrowserEngine(prefer: string | null): Promise<BrowserDevice> {
  note = webgpuRuledOut(prefer);
  if (note === null) {
    try {
      const devices = await init("webgpu");
      if (devices.includes("webgpu")) {
        defaultDevice("webgpu");
        return "webgpu";
      }
      note = "jax-js found no WebGPU adapter";
    } catch (e) {
      note = `WebGPU unavailable (${(e as Error).message})`;
    }
  }
  console.warn(`${note}; using WebAssembly`);
  const devices = await init("wasm");
  if (!devices.includes("wasm")) throw new Error("jax-js could not start its WebAssembly backend in this browser");
  defaultDevice("wasm");
  return "wasm";
}

/** Switch to the Wasm backend after a WebGPU failure (`why`, one line, becomes webgpuNote()). */
export async function fallBackToWasm(why: string): Promise<BrowserDevice> {
  note = `WebGPU failed (${why})`;
  await init("wasm");
  defaultDevice("wasm");
  return "wasm";
}
