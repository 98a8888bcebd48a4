/**
 * Browser globals that @jax-js/jax expects, installed on Node.js.
 *
 * jax-js builds its Wasm backend (and decides on its worker pool) while its
 * module is first evaluated, so this file must run before any import of
 * "@jax-js/jax". Project code therefore imports jax-js only through
 * `src/engine/jax.ts`, which imports this file first.
 *
 * - Iterator helpers (used by einsum) from core-js.
 * - A `Float16Array` stand-in on Node 20 (jax-js tests `instanceof Float16Array`
 *   when wrapping typed arrays; constructing one throws: float16 needs Node >= 22).
 * - A Web `Worker` over `node:worker_threads` and `navigator.hardwareConcurrency`,
 *   so Wasm kernels run on several cores. Thread count: env COLUMNFORMER_THREADS
 *   (default: every core; 0 or 1 runs kernels on the main thread only).
 */
import "core-js/actual/iterator/index.js";
import os from "node:os";
import { NodeWebWorker } from "./worker-adapter.ts";

function threadsFromEnv(): number {
  const raw = process.env.COLUMNFORMER_THREADS;
  if (raw === undefined || raw === "") return os.availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`COLUMNFORMER_THREADS must be a non-negative integer, got "${raw}"`);
  }
  return n;
}

const g = globalThis as Record<string, unknown>;
if (typeof g.Float16Array === "undefined") {
  g.Float16Array = class Float16ArrayUnavailable {
    constructor() {
      throw new Error("float16 arrays need Node.js >= 22 (Float16Array); use float32");
    }
  };
}

const requested = threadsFromEnv();
if (requested > 1 && typeof g.Worker === "undefined") {
  g.navigator = { ...(g.navigator as object | undefined), hardwareConcurrency: requested };
  g.Worker = NodeWebWorker;
}

/** Worker threads the Wasm backend uses (0 = main thread only). */
export const ENGINE_THREADS: number = g.Worker === NodeWebWorker ? requested : 0;
