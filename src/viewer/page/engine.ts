/**
 * jax-js in the page: WebGPU where the browser offers it, else WebAssembly (threads when the
 * page is cross-origin isolated). `?backend=wasm` or `?backend=webgpu` forces one.
 */
import { defaultDevice, init } from "./jax-browser.ts";

export type BrowserDevice = "wasm" | "webgpu";

/** Initialise jax-js; returns the device in use. */
export async function initBrowserEngine(prefer: string | null): Promise<BrowserDevice> {
  if (prefer !== "wasm" && "gpu" in navigator) {
    try {
      const devices = await init("webgpu");
      if (devices.includes("webgpu")) {
        defaultDevice("webgpu");
        return "webgpu";
      }
    } catch (e) {
      console.warn(`WebGPU unavailable (${(e as Error).message}); using WebAssembly`);
    }
  }
  const devices = await init("wasm");
  if (!devices.includes("wasm")) throw new Error("jax-js could not start its WebAssembly backend in this browser");
  defaultDevice("wasm");
  return "wasm";
}

/** Switch to the Wasm backend (after a WebGPU failure). */
export async function fallBackToWasm(): Promise<BrowserDevice> {
  await init("wasm");
  defaultDevice("wasm");
  return "wasm";
}
