/// <reference types="@webgpu/types" />
/**
 * WebGPU device acquisition: in Node through the npm package `webgpu` (Dawn, its binary ships
 * inside the package), in a browser through `navigator.gpu`. Acquired once per process and
 * cached; `acquireWebGPU()` never throws: `{error}` is one line saying why there is no device.
 *
 * Adapters tried in order (Node):
 *   1. Dawn's default backend (Vulkan on Linux, Metal, D3D12), feature level "core",
 *      high-performance: a real GPU;
 *   2. OpenGL ES, feature level "compatibility", over EGL's surfaceless platform (env
 *      EGL_PLATFORM defaults to "surfaceless"): with Mesa's libEGL and llvmpipe
 *      (Debian: libegl-dev libegl-mesa0 libgl1-mesa-dri, scripts/install-webgpu-adapter.sh) this
 *      is a software adapter on machines without a GPU (CI). Dawn's Vulkan path needs
 *      Vulkan features Mesa 22's lavapipe lacks (shaderUniform*ArrayDynamicIndexing), so
 *      lavapipe does not give an adapter there.
 * Env COLUMNFORMER_WEBGPU_FLAGS (comma-separated Dawn options, e.g. "backend=vulkan") replaces
 * the list with one attempt using those options (feature level from
 * COLUMNFORMER_WEBGPU_FEATURE_LEVEL, default "core").
 */

export interface WebGPUContext {
  device: GPUDevice;
  /** One phrase: backend and adapter, e.g. "opengles compatibility, llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** "core" or "compatibility". */
  featureLevel: string;
  limits: GPUSupportedLimits;
}

export type WebGPUAcquired = { context: WebGPUContext } | { error: string };

let acquired: Promise<WebGPUAcquired> | null = null;
/**
 * The Dawn instance of the acquired device, held for the life of the process: when the GPU
 * object that created an adapter is garbage collected, Dawn tears the instance down under the
 * live device and the next submit or mapping crashes the process (seen on OpenGL ES/llvmpipe).
 */
// biome-ignore lint/correctness/noUnusedVariables: written, never read: the reference keeps Dawn's instance alive
let instance: GPU | null = null;
let settled: WebGPUAcquired | null = null;

interface Attempt {
  flags: string[];
  featureLevel: "core" | "compatibility";
  label: string;
}

function attempts(): Attempt[] {
  const custom = process.env.COLUMNFORMER_WEBGPU_FLAGS;
  if (custom !== undefined && custom.trim() !== "") {
    const level = process.env.COLUMNFORMER_WEBGPU_FEATURE_LEVEL === "compatibility" ? "compatibility" : "core";
    return [{ flags: custom.split(",").map((s) => s.trim()).filter(Boolean), featureLevel: level, label: `${custom} (${level})` }];
  }
  return [
    { flags: [], featureLevel: "core", label: "default backend (core)" },
    { flags: ["backend=opengles"], featureLevel: "compatibility", label: "opengles (compatibility)" },
  ];
}

/** Limits worth raising above the defaults (compatibility mode's defaults are small). */
const RAISE: (keyof GPUSupportedLimits)[] = [
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupsPerDimension",
];

async function openDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const key of RAISE) {
    const v = adapter.limits[key];
    if (typeof v === "number") requiredLimits[key] = v;
  }
  const device = await adapter.requestDevice({ requiredLimits });
  device.addEventListener("uncapturederror", (e) => {
    const ev = e as GPUUncapturedErrorEvent;
    const line = `columnformer webgpu: ${ev.error.message.split("\n")[0]}`;
    if (typeof process !== "undefined") process.stderr.write(`${line}\n`);
    else console.warn(line); // the browser

  });
  return device;
}

async function acquireNode(): Promise<WebGPUAcquired> {
  let mod: { create: (flags: string[]) => GPU; globals: object };
  try {
    mod = (await import("webgpu")) as unknown as { create: (flags: string[]) => GPU; globals: object };
  } catch (e) {
    return { error: `the webgpu package (Dawn) failed to load: ${(e as Error).message.split("\n")[0]}` };
  }
  // GPUBufferUsage, GPUMapMode, ... as globals (what a browser has)
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  process.env.EGL_PLATFORM ??= "surfaceless";
  const tried: string[] = [];
  for (const a of attempts()) {
    try {
      const gpu = mod.create(a.flags);
      const adapter = await gpu.requestAdapter({ featureLevel: a.featureLevel, powerPreference: "high-performance" });
      if (!adapter) {
        tried.push(`${a.label}: no adapter`);
        continue;
      }
      const device = await openDevice(adapter);
      instance = gpu;
      const info = adapter.info;
      const backend = a.flags.find((f) => f.startsWith("backend="))?.slice(8) ?? "default";
      const name = [info.description, info.device, info.vendor].find((s) => s && s.trim() !== "") ?? "unknown adapter";
      return { context: { device, description: `${backend} ${a.featureLevel}, ${name}`, featureLevel: a.featureLevel, limits: device.limits } };
    } catch (e) {
      tried.push(`${a.label}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return {
    error: `no WebGPU adapter (${tried.join("; ")}); for a software adapter install Mesa's EGL and llvmpipe (scripts/install-webgpu-adapter.sh)`,
  };
}

async function acquireBrowser(gpu: GPU): Promise<WebGPUAcquired> {
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return { error: "no WebGPU adapter (navigator.gpu.requestAdapter() returned null)" };
  const device = await openDevice(adapter);
  return { context: { device, description: `browser, ${[adapter.info.vendor, adapter.info.architecture, adapter.info.description].filter(Boolean).join(" ") || "adapter"}`, featureLevel: "core", limits: device.limits } };
}

/** The process's WebGPU device (acquired at the first call), or one line saying why there is none. */
export function acquireWebGPU(): Promise<WebGPUAcquired> {
  acquired ??= (async () => {
    const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
    const r = nav?.gpu && typeof process === "undefined" ? await acquireBrowser(nav.gpu) : await acquireNode();
    settled = r;
    return r;
  })().catch((e: unknown) => (settled = { error: `WebGPU initialisation failed: ${String((e as Error).message ?? e).split("\n")[0]}` }));
  return acquired;
}

/** The result of an earlier `acquireWebGPU()` (null when it was never called or has not finished). */
export function webgpuAcquired(): WebGPUAcquired | null {
  return settled;
}
