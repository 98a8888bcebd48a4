/**
 * Native sheet benchmark (native/, src/engine/native-sheet.ts): forward and forward+backward of
 * the reference sheet (bench/sheet.ts REFERENCE_SHEET: N 256 on a 16 x 16 grid, D 128, qk 32,
 * 1 head, MLP 128, depth 4, untied, recurrent, dense with attention bias, skip_attn; batch 32),
 * with the wiring cost and the activation penalty in the backward. Median of BENCH_REPEATS
 * (default 7) after one warm-up; GFLOP/s from the analytic matmul FLOPs of src/model/cost.ts
 * (backward counted as 2x forward), threads, SIMD path, peak RSS.
 *
 *   node --import tsx bench/native-sheet.ts [--batch 32] [--threads 2] [--simd avx512|avx2|generic]
 *
 * `benchNativeSheet` returns the same as BenchResults for bench/run.ts.
 */
import { fileURLToPath } from "node:url";
import { loadNativeSheet, type NativeSheetConfig, sheetLeaves } from "../src/engine/native-sheet.ts";
import { type SheetConfigInput, connectivityK, resolveSheetConfig } from "../src/model/config.ts";
import { sheetStepFlops } from "../src/model/cost.ts";
import { type BenchResult, repeatsFromEnv, timeCall, withFlops } from "./harness.ts";
import { BACKWARD_FACTOR, REFERENCE_SHEET } from "./sheet.ts";
import { distanceMatrix } from "../src/geometry/metric.ts";

export interface NativeSheetBenchOptions {
  repeats: number;
  batch?: number;
  sheet?: SheetConfigInput;
  threads?: number;
  simd?: "avx512" | "avx2" | "generic";
  onStart?: (name: string) => void;
}

/** Deterministic values in [-1, 1). */
function values(seed: number, count: number, scale: number, offset = 0): Float32Array {
  const out = new Float32Array(count);
  let a = seed >>> 0;
  for (let i = 0; i < count; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    out[i] = offset + scale * (a / 2 ** 31 - 1);
  }
  return out;
}

export async function benchNativeSheet(options: NativeSheetBenchOptions): Promise<BenchResult[]> {
  const loaded = loadNativeSheet();
  if (!("addon" in loaded)) {
    console.log(`native sheet benchmark skipped: ${loaded.error}`);
    return [];
  }
  const { addon } = loaded;
  const batch = options.batch ?? 32;
  const { config, geometry } = resolveSheetConfig(options.sheet ?? REFERENCE_SHEET);
  const n = config.num_columns;
  const k = connectivityK(config);
  const w = k ?? n;
  const ncfg: NativeSheetConfig & { threads?: number; simd?: "avx512" | "avx2" | "generic" } = {
    batch,
    columns: n,
    dim: config.dim,
    qk_dim: config.qk_dim,
    heads: config.heads,
    mlp_dim: config.mlp_dim,
    depth: config.depth,
    recurrent: config.recurrent,
    untie_norm: config.untie_norm,
    untie_attn: config.untie_attn,
    untie_mlp: config.untie_mlp,
    value_proj: config.value_proj,
    attn_bias: config.attn_bias,
    skip_attn: config.skip_attn,
    attn_scale: config.attn_scale,
    norm_eps: config.norm_eps,
    sources: k ?? 0,
    inject_every: false,
    ...(options.threads ? { threads: options.threads } : {}),
    ...(options.simd ? { simd: options.simd } : {}),
  };
  const sheet = addon.createSheet(ncfg);
  const info = sheet.info?.() ?? { simd: addon.info().simd, threads: addon.info().threads };
  const d = config.dim;
  const hq = config.heads * config.qk_dim;
  const blocks = config.recurrent ? 1 : config.depth;
  const own: Record<string, [number, boolean]> = {
    "norm1.weight": [d, config.untie_norm],
    "norm1.bias": [d, config.untie_norm],
    "attn.q.weight": [hq * d, config.untie_attn],
    "attn.q.bias": [hq, config.untie_attn],
    "attn.k.weight": [hq * d, config.untie_attn],
    "attn.v.weight": [d * d, config.untie_attn],
    "attn.v.bias": [d, config.untie_attn],
    "attn.o.weight": [d * d, config.untie_attn],
    "attn.o.bias": [d, config.untie_attn],
    "attn.attn_bias": [n * w, false],
    "norm2.weight": [d, config.untie_norm],
    "norm2.bias": [d, config.untie_norm],
    "mlp.fc1.weight": [config.mlp_dim * d, config.untie_mlp],
    "mlp.fc1.bias": [config.mlp_dim, config.untie_mlp],
    "mlp.fc2.weight": [d * config.mlp_dim, config.untie_mlp],
  };
  const params = sheetLeaves(ncfg).map((name, i) => {
    const [size, untied] = own[name];
    const count = size * blocks * (untied ? n : 1);
    if (name.startsWith("norm") && name.endsWith("weight")) return values(i, count, 0.1, 1);
    return values(i, count, name.includes("weight") ? (name === "mlp.fc2.weight" ? config.mlp_dim : d) ** -0.5 : 0.1);
  });
  const size = batch * n * d;
  const x0 = values(101, size, 1);
  const dx = values(102, size, 1 / size);
  const wiring = new Float32Array(n * w);
  if (k === null) wiring.set(distanceMatrix(geometry));
  else wiring.fill(1);
  const connectivity = k === null ? null : new Int32Array(n * k).map((_, p) => (Math.floor(p / k) + (p % k)) % n);
  const grads = params.map((p) => new Float32Array(p.length));
  const dx0 = new Float32Array(size);
  const xOut = new Float32Array(size); // reused: a fresh output array per call costs page faults
  const forward = (train: boolean) => sheet.forward({ params, x0, drive: null, connectivity, wiringWeights: wiring, batch, train, attn: null, xOut });

  const step = Object.values(sheetStepFlops(config)).reduce((a, b) => a + b, 0);
  const fwdFlops = step * config.depth * batch;
  const workload = {
    batch,
    num_columns: n,
    dim: d,
    qk_dim: config.qk_dim,
    heads: config.heads,
    mlp_dim: config.mlp_dim,
    depth: config.depth,
    sources: k ?? "dense",
    dtype: "float32",
    simd: info.simd,
    threads: info.threads,
  };
  const convention = "matmuls only (src/model/cost.ts sheetStepFlops), multiply-add = 2 FLOPs";
  const results: BenchResult[] = [];
  try {
    options.onStart?.("native sheet forward");
    const f = await timeCall(async () => void forward(false), options.repeats);
    results.push(withFlops("native sheet forward", workload, f, fwdFlops, `forward (evaluation); ${convention}`));
    options.onStart?.("native sheet forward+backward");
    const fb = await timeCall(async () => {
      forward(true);
      sheet.backward({ dx, wiringCoef: 0.01, activationCoef: 0.01, grads, dx0, ddrive: null });
    }, options.repeats);
    results.push(withFlops("native sheet forward+backward", workload, fb, fwdFlops * (1 + BACKWARD_FACTOR), `forward + backward (backward = ${BACKWARD_FACTOR}x forward); ${convention}`));
  } finally {
    sheet.dispose();
  }
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const simd = arg("simd");
  if (simd !== undefined && simd !== "avx512" && simd !== "avx2" && simd !== "generic") throw new Error(`--simd must be avx512, avx2 or generic`);
  const results = await benchNativeSheet({
    repeats: repeatsFromEnv(7),
    batch: arg("batch") ? Number(arg("batch")) : undefined,
    threads: arg("threads") ? Number(arg("threads")) : undefined,
    simd,
  });
  for (const r of results) {
    const w = r.workload as { simd: string; threads: number; batch: number };
    console.log(
      `${r.name.padEnd(30)} median ${r.medianMs.toFixed(1).padStart(7)} ms  (min ${r.minMs.toFixed(1)}, max ${r.maxMs.toFixed(1)})  ` +
        `${(r.flops / 1e9).toFixed(2)} GFLOP  ${r.gflopsPerSecMedian.toFixed(1)} GFLOP/s  ${w.simd} x ${w.threads} threads  B ${w.batch}  peak RSS ${r.peakRssMiB.toFixed(0)} MiB`,
    );
  }
}
