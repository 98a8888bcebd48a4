/**
 * Shared benchmark plumbing: timing a call (first call = compile, one warm-up,
 * then K timed repeats), peak-RSS sampling, environment header and table
 * formatting. Benchmarks (bench/sheet.ts, ...) use these and return
 * `BenchResult`s, which bench/run.ts prints and writes to .bench/results.json.
 *
 * Nothing here asserts a time: benchmarks inform.
 */
import os from "node:os";
import type { EngineInfo } from "../src/engine/engine.ts";

/** Number of timed repeats: env BENCH_REPEATS (positive integer), default 7. */
export function repeatsFromEnv(fallback = 7): number {
  const raw = process.env.BENCH_REPEATS;
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_REPEATS must be a positive integer, got "${raw}"`);
  return n;
}

/** Resident set size in MiB, now. */
export function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

/**
 * Tracks the peak resident set size: sampled on a timer (which fires whenever
 * the main thread is idle, e.g. while awaiting Wasm workers) and explicitly via
 * `sample()` after each call. The timer is unref'd so it never keeps the process alive.
 */
export class RssSampler {
  #peak = 0;
  #timer: NodeJS.Timeout | null = null;

  /** Start sampling every `intervalMs` milliseconds (idempotent). */
  start(intervalMs = 20): this {
    this.sample();
    this.#timer ??= setInterval(() => this.sample(), intervalMs).unref();
    return this;
  }

  /** Take one sample now; returns the current RSS in MiB. */
  sample(): number {
    const now = rssMiB();
    if (now > this.#peak) this.#peak = now;
    return now;
  }

  /** Peak RSS seen so far, in MiB. */
  get peakMiB(): number {
    return this.#peak;
  }

  /** Stop the timer (a final sample is taken). */
  stop(): void {
    this.sample();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}

/** Wall-clock timings of one benchmarked call, in milliseconds. */
export interface Timing {
  /** First call: tracing + jit compilation + one execution. */
  firstCallMs: number;
  /** The K timed repeats, in call order (after one untimed warm-up). */
  timesMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Peak RSS (MiB) while this call was being measured. */
  peakRssMiB: number;
  /** RSS after the warm-up and after the last repeat (MiB): a steady rise across repeats suggests a leak. */
  rssAfterWarmupMiB: number;
  rssAfterRepeatsMiB: number;
}

/** Median of a non-empty list. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Time `call` (which must run the work AND await its results, disposing what it
 * does not read): one first call (compile), one warm-up, then `repeats` timed calls.
 */
export async function timeCall(call: () => Promise<void>, repeats: number): Promise<Timing> {
  const sampler = new RssSampler().start();
  try {
    let t = performance.now();
    await call();
    const firstCallMs = performance.now() - t;
    sampler.sample();

    await call(); // warm-up
    const rssAfterWarmupMiB = sampler.sample();

    const timesMs: number[] = [];
    for (let i = 0; i < repeats; i++) {
      t = performance.now();
      await call();
      timesMs.push(performance.now() - t);
      sampler.sample();
    }
    const rssAfterRepeatsMiB = sampler.sample();
    return {
      firstCallMs,
      timesMs,
      medianMs: median(timesMs),
      minMs: Math.min(...timesMs),
      maxMs: Math.max(...timesMs),
      peakRssMiB: sampler.peakMiB,
      rssAfterWarmupMiB,
      rssAfterRepeatsMiB,
    };
  } finally {
    sampler.stop();
  }
}

/** One row of the results: a timed call plus its analytic FLOP count. */
export interface BenchResult extends Timing {
  /** Short name, e.g. "sheet forward". */
  name: string;
  /** Free-form description of the workload (shapes, loss, ...). */
  workload: Record<string, unknown>;
  /** Analytic FLOPs of one call (multiply-add = 2 FLOPs); see the benchmark for what is counted. */
  flops: number;
  /** How `flops` was derived, in words. */
  flopConvention: string;
  /** flops / median time, in GFLOP/s. */
  gflopsPerSecMedian: number;
  /** flops / fastest time, in GFLOP/s. */
  gflopsPerSecBest: number;
}

/** Attach the FLOP count and achieved throughput to a timing. */
export function withFlops(
  name: string,
  workload: Record<string, unknown>,
  timing: Timing,
  flops: number,
  flopConvention: string,
): BenchResult {
  return {
    name,
    workload,
    flops,
    flopConvention,
    gflopsPerSecMedian: flops / (timing.medianMs * 1e6),
    gflopsPerSecBest: flops / (timing.minMs * 1e6),
    ...timing,
  };
}

/** A named benchmark (listed in bench/run.ts): runs its measurements and returns their results. */
export interface Benchmark {
  name: string;
  run: (ctx: { repeats: number; onStart: (name: string) => void }) => Promise<BenchResult[]>;
}

/** The machine and engine a run happened on. */
export interface BenchEnvironment {
  engine: string;
  engineVersion: string;
  device: string;
  /** Wasm worker threads (0 = main thread only). */
  threads: number;
  node: string;
  platform: string;
  cpuModel: string;
  cpuCores: number;
  /** 1-minute load average when the run started: other processes on the machine skew timings. */
  loadAverage1m: number;
}

/** Describe the environment from initEngine()'s result and `os`. */
export function describeEnvironment(info: EngineInfo): BenchEnvironment {
  const cpus = os.cpus();
  return {
    engine: info.engine,
    engineVersion: info.version,
    device: info.device,
    threads: info.threads,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cpuCores: cpus.length,
    loadAverage1m: os.loadavg()[0],
  };
}

/** Render rows as an aligned text table: columns whose cells are all numbers are right-aligned. */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const numeric = headers.map((_, c) => cells.every((r) => /^[-+]?[\d.,]+$/.test(r[c])));
  const widths = headers.map((h, c) => Math.max(h.length, ...cells.map((r) => r[c].length)));
  const pad = (s: string, c: number): string => (numeric[c] ? s.padStart(widths[c]) : s.padEnd(widths[c]));
  const line = (r: string[]): string => r.map(pad).join("  ").trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(line)].join("\n");
}

/** Round to `digits` decimals (for table cells and JSON). */
export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
