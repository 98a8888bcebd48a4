/**
 * The PyTorch side of the benchmarks: finding a python with torch, its environment, and running
 * bench/torch_step.py (the same steps in PyTorch) with the same thread count.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Timing } from "./harness.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The PyTorch implementation of the steps. */
const TORCH_SCRIPT = path.join(here, "torch_step.py");

/** Printed when no PyTorch is available. */
export const TORCH_SKIPPED =
  "PyTorch comparison skipped: no python with torch (python3 -m venv .venv && .venv/bin/pip install torch, or set COLUMNFORMER_TORCH_PYTHON)";

/** What bench/torch_step.py prints. */
export interface TorchOutput {
  torch_version: string;
  python: string;
  threads: number;
  openblas_coretype: string | null;
  omp_wait_policy: string | null;
  blas: string | null;
  first_call_ms: number;
  times_ms: number[];
  median_ms: number;
  min_ms: number;
  max_ms: number;
  images_per_second: number;
  peak_rss_mib: number;
  rss_after_warmup_mib: number;
  rss_after_repeats_mib: number;
}

let pythonFound: string | null | undefined;

/**
 * A python that imports torch, newest first: env COLUMNFORMER_TORCH_PYTHON, the repository's
 * .venv (a pip-installed torch 2.x), then Debian's /usr/bin/python3 (python3-torch 1.13) and
 * python3 on PATH; null if none.
 */
export function findTorchPython(): string | null {
  if (pythonFound !== undefined) return pythonFound;
  pythonFound = null;
  const candidates = [process.env.COLUMNFORMER_TORCH_PYTHON, path.join(here, "..", ".venv", "bin", "python3"), "/usr/bin/python3", "python3"];
  for (const exe of candidates) {
    if (!exe || (exe.includes("/") && !existsSync(exe))) continue;
    const r = spawnSync(exe, ["-c", "import torch"], { stdio: "ignore", timeout: 120_000 });
    if (r.status === 0) {
      pythonFound = exe;
      break;
    }
  }
  return pythonFound;
}

/**
 * Environment of the PyTorch process: the same thread count for OpenMP, MKL and OpenBLAS; OpenMP
 * threads that sleep rather than spin while waiting (unless OMP_WAIT_POLICY is set already: on a
 * 2-core VM with any other load, spinning made the step 2-10x slower); and OpenBLAS told the CPU's
 * kind where it has AVX-512, which Debian's OpenBLAS 0.3.21 misdetects (shared/ENGINE.md).
 */
function torchEnv(threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  env.OMP_WAIT_POLICY ??= "PASSIVE";
  let avx512 = false;
  try {
    avx512 = /^flags\s*:.*\bavx512f\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    // not Linux: leave OpenBLAS to detect the CPU
  }
  if (avx512) env.OPENBLAS_CORETYPE = "SkylakeX";
  else delete env.OPENBLAS_CORETYPE;
  return env;
}

/** Run bench/torch_step.py with `config`; null (with a message on stderr) when it fails. */
export function runTorchStep(python: string, config: Record<string, unknown>, threads: number, name: string): TorchOutput | null {
  const r = spawnSync(python, [TORCH_SCRIPT], {
    input: JSON.stringify({ ...config, threads }),
    env: torchEnv(threads),
    encoding: "utf8",
    maxBuffer: 64 * 2 ** 20,
    timeout: 30 * 60_000,
  });
  const lines = (r.stdout ?? "").trim().split("\n");
  if (r.status !== 0 || lines.length === 0) {
    const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}: ${(r.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`;
    console.warn(`PyTorch ${name} failed (${why}); no comparison for it`);
    return null;
  }
  return JSON.parse(lines[lines.length - 1]) as TorchOutput;
}

/** The timing of a PyTorch run in the harness's terms. */
export function torchTiming(out: TorchOutput): Timing {
  return {
    firstCallMs: out.first_call_ms,
    timesMs: out.times_ms,
    medianMs: out.median_ms,
    minMs: out.min_ms,
    maxMs: out.max_ms,
    peakRssMiB: out.peak_rss_mib,
    rssAfterWarmupMiB: out.rss_after_warmup_mib,
    rssAfterRepeatsMiB: out.rss_after_repeats_mib,
  };
}

/** "torch 2.13.0+cpu, 2 threads, mkl, CPU capability AVX512" for a row's workload. */
export function describeTorch(out: TorchOutput, python: string): Record<string, unknown> {
  return {
    engine: `torch ${out.torch_version} (python ${out.python}, ${python})`,
    threads: out.threads,
    blas: out.blas,
    openblas_coretype: out.openblas_coretype,
    omp_wait_policy: out.omp_wait_policy,
    rss: "of the python process",
  };
}
