/**
 * Which engine runs the column sheet: the native C++ kernels (src/engine/native-sheet.ts), the
 * WebGPU kernels (src/engine/webgpu/) or jax-js (the reference, and the path for browsers and
 * machines without a compiler). This is the one place that decides: `--backend`, else env
 * COLUMNFORMER_BACKEND, else native when the addon loaded. When native was not asked for
 * explicitly and the addon is missing, one line says so and why, and everything runs on
 * jax-js. When webgpu was asked for and there is no WebGPU adapter, one line says so and the run
 * takes the default (native when built, else jax-js).
 *
 * The WebGPU device is acquired asynchronously: `await prepareBackend(requested)` before
 * `chooseBackend(requested)` (the trainer and the CLI do); chooseBackend itself is synchronous.
 */
import { loadNativeSheet, type NativeAddon } from "./native-sheet.ts";
import type { SheetEngine } from "./sheet-engine.ts";
import { loadWebGPUEngine, webgpuEngineReady } from "./webgpu/engine.ts";

export type Backend = "native" | "jax" | "webgpu";

export const BACKENDS: readonly Backend[] = ["native", "jax", "webgpu"];

const warned = new Set<string>();
function warnOnce(line: string): void {
  if (warned.has(line)) return;
  warned.add(line);
  process.stderr.write(`${line}\n`);
}

/** Parse a backend name (from an option or the environment); `where` names the source in the error. */
export function parseBackend(value: string, where: string): Backend {
  if ((BACKENDS as readonly string[]).includes(value)) return value as Backend;
  throw new Error(`${where} must be one of ${BACKENDS.join(", ")}, got "${value}"`);
}

/** The backend asked for: `requested`, else env COLUMNFORMER_BACKEND, else null (the default). */
function askedFor(requested?: Backend | null): Backend | null {
  const env = process.env.COLUMNFORMER_BACKEND;
  return requested ?? (env ? parseBackend(env, "COLUMNFORMER_BACKEND") : null);
}

/** Acquire the WebGPU device when webgpu is asked for (idempotent; nothing otherwise). Never throws for a missing adapter. */
export async function prepareBackend(requested?: Backend | null): Promise<void> {
  if (askedFor(requested) === "webgpu") await loadWebGPUEngine();
}

/**
 * The backend to use: `requested` (an option), else COLUMNFORMER_BACKEND, else native when it
 * loads. `engine` runs the sheet outside jax-js (the addon for native, the WebGPU engine for
 * webgpu; null for jax); `addon` is the native addon (native only). Throws when native is
 * requested explicitly but unavailable, and when webgpu is asked for before `prepareBackend`.
 */
export function chooseBackend(requested?: Backend | null): { backend: Backend; addon: NativeAddon | null; engine: SheetEngine | null } {
  let explicit = askedFor(requested);
  if (explicit === "jax") return { backend: "jax", addon: null, engine: null };
  if (explicit === "webgpu") {
    const ready = webgpuEngineReady();
    if (ready === null) throw new Error("backend webgpu: the WebGPU device is acquired asynchronously; await prepareBackend() before chooseBackend()");
    if ("engine" in ready) return { backend: "webgpu", addon: null, engine: ready.engine };
    const fallback = "addon" in loadNativeSheet() ? "native" : "jax-js";
    warnOnce(`columnformer: backend webgpu was requested but ${ready.error}; running on ${fallback}`);
    explicit = null;
  }
  const native = loadNativeSheet();
  if ("addon" in native) return { backend: "native", addon: native.addon, engine: native.addon };
  if (explicit === "native") throw new Error(`backend native was requested but ${native.error}; build it with \`npm run build:native\` or use --backend jax`);
  warnOnce(`columnformer: ${native.error}; running on jax-js`);
  return { backend: "jax", addon: null, engine: null };
}

/** One phrase for logs: `native backend (avx512, 2 threads)`, `webgpu backend (opengles compatibility, ...)` or `jax backend (jax-js Wasm)`. */
export function describeBackend(backend: Backend): string {
  if (backend === "jax") return "jax backend (jax-js Wasm)";
  if (backend === "webgpu") {
    const ready = webgpuEngineReady();
    return ready && "engine" in ready ? `webgpu backend (${ready.engine.info().device})` : "webgpu backend";
  }
  const native = loadNativeSheet();
  if (!("addon" in native)) return "native backend";
  const info = native.addon.info();
  return `native backend (${info.simd}, ${info.threads} thread${info.threads === 1 ? "" : "s"})`;
}
