/**
 * Which engine runs the column sheet: the native C++ kernels (src/engine/native-sheet.ts) or
 * jax-js (the reference, and the path for browsers and machines without a compiler). This is
 * the one place that decides: `--backend`, else env COLUMNFORMER_BACKEND, else native when the
 * addon loaded. When native was not asked for explicitly and the addon is missing, one line
 * says so and why, and everything runs on jax-js.
 */
import { loadNativeSheet, type NativeAddon } from "./native-sheet.ts";

export type Backend = "native" | "jax";

export const BACKENDS: readonly Backend[] = ["native", "jax"];

let warned = false;

/** Parse a backend name (from an option or the environment); `where` names the source in the error. */
export function parseBackend(value: string, where: string): Backend {
  if ((BACKENDS as readonly string[]).includes(value)) return value as Backend;
  throw new Error(`${where} must be one of ${BACKENDS.join(", ")}, got "${value}"`);
}

/**
 * The backend to use: `requested` (an option), else COLUMNFORMER_BACKEND, else native when it
 * loads. Throws when native is requested explicitly but unavailable.
 */
export function chooseBackend(requested?: Backend | null): { backend: Backend; addon: NativeAddon | null } {
  const env = process.env.COLUMNFORMER_BACKEND;
  const explicit = requested ?? (env ? parseBackend(env, "COLUMNFORMER_BACKEND") : null);
  if (explicit === "jax") return { backend: "jax", addon: null };
  const native = loadNativeSheet();
  if ("addon" in native) return { backend: "native", addon: native.addon };
  if (explicit === "native") throw new Error(`backend native was requested but ${native.error}; build it with \`npm run build:native\` or use --backend jax`);
  if (!warned) {
    warned = true;
    process.stderr.write(`columnformer: ${native.error}; running on jax-js\n`);
  }
  return { backend: "jax", addon: null };
}

/** One phrase for logs: `native backend (avx512, 2 threads)` or `jax backend (jax-js Wasm)`. */
export function describeBackend(backend: Backend): string {
  if (backend === "jax") return "jax backend (jax-js Wasm)";
  const native = loadNativeSheet();
  if (!("addon" in native)) return "native backend";
  const info = native.addon.info();
  return `native backend (${info.simd}, ${info.threads} thread${info.threads === 1 ? "" : "s"})`;
}
