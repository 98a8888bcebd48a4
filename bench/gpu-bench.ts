/**
 * The GPU comparison (issue 16): each training-step workload on the webgpu backend and in
 * PyTorch on CUDA, side by side, one table. Run on the device machine by
 * scripts/device-gpu-bench.sh from a bundle (scripts/prepare-device-bundle.sh), or here:
 *
 *   node --import tsx bench/gpu-bench.ts
 *
 * Workloads (bench/train-step.ts): reference (batch 32, 256 columns, D 128, depth 4), tiny and
 * small (the presets' full training steps), large (4,096 dense columns, the reference's dims).
 * Every webgpu row runs in a process of its own (this file again, with `--row JSON`); PyTorch
 * rows run bench/torch_step.py with `device` cuda (torch.cuda.synchronize() around each step).
 *
 * Env: GPU_BENCH_WORKLOADS (comma-separated, default reference,tiny,small,large),
 * GPU_BENCH_REPEATS (timed steps per row after a first call and a warm-up, default 5; large
 * takes GPU_BENCH_LARGE_REPEATS, default 3), GPU_BENCH_TORCH_DEVICE (cuda | cpu, default cuda),
 * GPU_BENCH_PYTHON (default python3), GPU_BENCH_TORCH_SCRIPT (default bench/torch_step.py),
 * GPU_BENCH_ROW_TIMEOUT_S (per row, default 150), GPU_BENCH_OUT (folder for results.json and
 * table.md; none by default), GPU_BENCH_ALLOW_SOFTWARE=1 (accept a software adapter, e.g.
 * llvmpipe, for a dry run; otherwise such an adapter is an error, as is no adapter at all, and
 * so is one whose description does not match GPU_BENCH_EXPECT_ADAPTER, a regular expression,
 * default "^vulkan core, ": scripts/device-gpu-bench.sh asks Dawn for Vulkan alone).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { prepareBackend } from "../src/engine/backend.ts";
import { webgpuEngineReady } from "../src/engine/webgpu/engine.ts";
import { type RowOutput, runStepRow } from "./step-row.ts";
import type { TorchOutput } from "./torch.ts";
import { ALL_STEP_WORKLOADS, describeWorkload, type StepWorkload, torchConfig } from "./train-step.ts";

/** A software adapter's name (not a GPU); Mesa's OpenGL ES over llvmpipe describes itself as "OpenGL ES 3.2 Mesa ...". */
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software|mesa/i;

interface Row {
  workload: StepWorkload;
  webgpu: RowOutput | { failed: string };
  torch: (TorchOutput & { first_loss: number; last_loss: number; device?: string; gpu?: string; cuda_peak_allocated_mib?: number }) | { failed: string };
  gflop: number;
}

function env(name: string, fallback: string): string {
  const v = process.env[name];
  return v === undefined || v.trim() === "" ? fallback : v.trim();
}

function lastJson<T>(stdout: string | null): T | null {
  const lines = (stdout ?? "").trim().split("\n");
  const last = lines[lines.length - 1] ?? "";
  return last.startsWith("{") ? (JSON.parse(last) as T) : null;
}

function why(r: ReturnType<typeof spawnSync>): string {
  if (r.error) return r.error.message;
  const err = String(r.stderr ?? "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("at "));
  return `exit ${r.status ?? r.signal}: ${err.slice(-3).join(" | ")}`;
}

function webgpuRow(workload: StepWorkload, repeats: number, timeoutMs: number): RowOutput | { failed: string } {
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], "--row", JSON.stringify({ workload, backend: "webgpu", repeats })], {
    encoding: "utf8",
    maxBuffer: 64 * 2 ** 20,
    timeout: timeoutMs,
    env: { ...process.env, COLUMNFORMER_BACKEND: "webgpu" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  process.stderr.write(r.stderr ?? "");
  const out = r.status === 0 ? lastJson<RowOutput>(r.stdout) : null;
  return out ?? { failed: why(r) };
}

function torchRow(workload: StepWorkload, repeats: number, device: "cpu" | "cuda", timeoutMs: number): Row["torch"] {
  const python = env("GPU_BENCH_PYTHON", "python3");
  const script = env("GPU_BENCH_TORCH_SCRIPT", path.join("bench", "torch_step.py"));
  const r = spawnSync(python, [script], {
    input: JSON.stringify(torchConfig(workload, repeats, device)),
    encoding: "utf8",
    maxBuffer: 64 * 2 ** 20,
    timeout: timeoutMs,
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  process.stderr.write(r.stderr ?? "");
  const out = r.status === 0 ? lastJson<Exclude<Row["torch"], { failed: string }>>(r.stdout) : null;
  return out ?? { failed: why(r) };
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** The table: workload, webgpu ms, torch ms, ratio webgpu / torch (the goal: within 3x). */
function table(rows: Row[], torchDevice: string): string {
  const lines = [
    `| workload | GFLOP / step | webgpu median ms | torch ${torchDevice} median ms | webgpu / torch | within 3x |`,
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const w = "failed" in r.webgpu ? null : r.webgpu.timing.medianMs;
    const t = "failed" in r.torch ? null : r.torch.median_ms;
    const ratio = w !== null && t !== null ? w / t : null;
    lines.push(
      `| ${r.workload} | ${r.gflop.toFixed(1)} | ${w === null ? "FAILED" : ms(w)} | ${t === null ? "FAILED" : ms(t)} | ${ratio === null ? "-" : ratio.toFixed(2)} | ${ratio === null ? "-" : ratio <= 3 ? "yes" : "no"} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<number> {
  const rowAt = process.argv.indexOf("--row");
  if (rowAt >= 0) {
    process.stdout.write(`${JSON.stringify(await runStepRow(JSON.parse(process.argv[rowAt + 1])))}\n`);
    return 0;
  }
  const workloads = env("GPU_BENCH_WORKLOADS", ALL_STEP_WORKLOADS.join(","))
    .split(",")
    .map((s) => s.trim()) as StepWorkload[];
  for (const w of workloads) if (!(ALL_STEP_WORKLOADS as readonly string[]).includes(w)) throw new Error(`GPU_BENCH_WORKLOADS: unknown workload "${w}" (${ALL_STEP_WORKLOADS.join(", ")})`);
  const repeats = Number(env("GPU_BENCH_REPEATS", "5"));
  const largeRepeats = Number(env("GPU_BENCH_LARGE_REPEATS", "3"));
  const torchDevice = env("GPU_BENCH_TORCH_DEVICE", "cuda") as "cpu" | "cuda";
  const timeoutMs = Number(env("GPU_BENCH_ROW_TIMEOUT_S", "150")) * 1000;
  const outDir = process.env.GPU_BENCH_OUT || null;
  const allowSoftware = process.env.GPU_BENCH_ALLOW_SOFTWARE === "1";

  // the adapter first: none, or a software one where a GPU was expected, is an error
  await prepareBackend("webgpu");
  const ready = webgpuEngineReady();
  if (ready === null || "error" in ready) {
    console.error(`gpu-bench: FAILED: no WebGPU adapter: ${ready === null ? "not acquired" : ready.error}`);
    return 2;
  }
  const adapter = ready.engine.info().device;
  const limits = ready.engine.context.limits;
  console.log(`gpu-bench: webgpu adapter: ${adapter}; maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}, maxBufferSize ${limits.maxBufferSize} (large needs 256 MiB buffers)`);
  const expected = new RegExp(env("GPU_BENCH_EXPECT_ADAPTER", "^vulkan core, "), "i");
  if ((SOFTWARE.test(adapter) || !expected.test(adapter)) && !allowSoftware) {
    console.error(`gpu-bench: FAILED: the WebGPU adapter (${adapter}) is a software one or does not match ${expected}, not the GPU; set GPU_BENCH_ALLOW_SOFTWARE=1 for a dry run`);
    return 3;
  }

  const rows: Row[] = [];
  const save = () => {
    if (!outDir) return;
    mkdirSync(outDir, { recursive: true });
    writeFileSync(path.join(outDir, "gpu-bench.json"), `${JSON.stringify({ adapter, torchDevice, repeats, largeRepeats, rows }, null, 1)}\n`);
    writeFileSync(path.join(outDir, "gpu-bench.md"), `webgpu adapter: ${adapter}\n\n${table(rows, torchDevice)}\n`);
  };
  for (const workload of workloads) {
    const n = workload === "large" ? largeRepeats : repeats;
    const gflop = describeWorkload(workload).flops / 1e9;
    console.log(`gpu-bench: ${workload}: webgpu (${n} timed steps) ...`);
    const webgpu = webgpuRow(workload, n, timeoutMs);
    console.log(`gpu-bench: ${workload}: webgpu ${"failed" in webgpu ? `FAILED (${webgpu.failed})` : `${ms(webgpu.timing.medianMs)} ms median, first call ${ms(webgpu.timing.firstCallMs)} ms, peak RSS ${webgpu.peak_rss_mib.toFixed(0)} MiB${webgpu.device_buffer_mib !== undefined ? `, sheet device buffers ${webgpu.device_buffer_mib.toFixed(0)} MiB` : ""}, loss ${webgpu.first_loss.toFixed(4)} -> ${webgpu.last_loss.toFixed(4)}`}`);
    console.log(`gpu-bench: ${workload}: torch ${torchDevice} ...`);
    const torch = torchRow(workload, n, torchDevice, timeoutMs);
    console.log(`gpu-bench: ${workload}: torch ${"failed" in torch ? `FAILED (${torch.failed})` : `${ms(torch.median_ms)} ms median, first call ${ms(torch.first_call_ms)} ms${torch.gpu ? `, ${torch.gpu}, peak allocated ${torch.cuda_peak_allocated_mib?.toFixed(0)} MiB` : ""}, loss ${torch.first_loss.toFixed(4)} -> ${torch.last_loss.toFixed(4)}`}`);
    rows.push({ workload, webgpu, torch, gflop });
    save();
  }
  console.log(`\nwebgpu adapter: ${adapter}; torch device: ${torchDevice}\n${table(rows, torchDevice)}`);
  return rows.some((r) => "failed" in r.webgpu || "failed" in r.torch) ? 1 : 0;
}

process.exitCode = await main();
