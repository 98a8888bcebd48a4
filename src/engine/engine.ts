/**
 * The tensor engine: @jax-js/jax on its Wasm backend, set up for Node.js.
 *
 * Call `await initEngine()` once before any array work.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ENGINE_THREADS } from "./node-globals.ts";
import { defaultDevice, init } from "./jax.ts";

export interface EngineInfo {
  engine: string;
  version: string;
  device: string;
  /** Worker threads running Wasm kernels (0 = main thread only). */
  threads: number;
}

let ready: Promise<EngineInfo> | null = null;

/** Initialise the jax-js Wasm backend (idempotent). */
export function initEngine(): Promise<EngineInfo> {
  ready ??= (async () => {
    const devices = await init("wasm");
    if (!devices.includes("wasm")) throw new Error("initEngine: the jax-js Wasm backend failed to initialise");
    defaultDevice("wasm");
    return { engine: "@jax-js/jax", version: JAX_VERSION, device: "wasm", threads: ENGINE_THREADS };
  })();
  return ready;
}

/** Version of the installed @jax-js/jax (its package.json is not exported, so read it from disk). */
export const JAX_VERSION: string = (() => {
  const entry = fileURLToPath(import.meta.resolve("@jax-js/jax"));
  return (JSON.parse(readFileSync(path.join(path.dirname(entry), "..", "package.json"), "utf8")) as { version: string })
    .version;
})();
