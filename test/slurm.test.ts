/**
 * The Slurm path for real: a single-node cluster (test/slurm-cluster.ts) runs a
 * plain 2-task job array, then a tiny 2-run sweep submitted with
 * `columnformer sweep FILE --slurm --submit`, and `columnformer compare` reads it.
 *
 * Skipped, with the reason, where Slurm is not installed (scripts/install-slurm.sh
 * installs it on Debian) or the cluster does not start within 30 s. Set
 * COLUMNFORMER_REQUIRE_SLURM=1 to make those a failure instead (CI with Slurm).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import type { RunSummary } from "../src/workflows/sweep/summary.ts";
import { patternImage, writeIdxFolder } from "./data-fixtures.ts";
import { run, type SlurmCluster, SlurmUnavailable, startSlurmCluster, waitForArray } from "./slurm-cluster.ts";

const ROOT = path.join(import.meta.dirname, "..");
const CLI = path.join(ROOT, "src", "cli", "main.ts");
const REQUIRED = process.env.COLUMNFORMER_REQUIRE_SLURM === "1";

let cluster: SlurmCluster | null = null;
let skip: string | false = false;
try {
  cluster = await startSlurmCluster({ timeoutMs: 30_000 });
} catch (e) {
  if (!(e instanceof SlurmUnavailable) || REQUIRED) throw e;
  skip = `single-node Slurm unavailable: ${e.message.split("\n")[0]}`;
  process.stderr.write(`slurm.test.ts: skipping: ${e.message}\n`);
}

after(async () => {
  await cluster?.stop();
});

/** The running cluster (tests only run when there is one). */
function c(): SlurmCluster {
  if (!cluster) throw new Error("no cluster");
  return cluster;
}

/** Run the CLI with the cluster's environment; resolves with exit code and output. */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: ROOT, env: { ...env, COLUMNFORMER_DEBUG: "" }, encoding: "utf8" }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Every file under `dir` (one level of sub-folders), with contents, for failure messages. */
function dumpLogs(dir: string): string {
  if (!existsSync(dir)) return `(no ${dir})`;
  return readdirSync(dir)
    .map((f) => `--- ${f}\n${readFileSync(path.join(dir, f), "utf8").trimEnd().split("\n").slice(-20).join("\n")}`)
    .join("\n");
}

describe("Slurm on a single-node cluster", { skip }, () => {
  test("a plain 2-task job array runs both tasks", { timeout: 30_000 }, async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), "cf-slurm-array-"));
    try {
      const out = await run(
        c().bin.sbatch,
        ["--parsable", "--array=0-1", "--job-name=cf-array", `--chdir=${work}`, `--output=${work}/out-%a.txt`, "--wrap", 'echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID on $(hostname -s)"'],
        c().env,
      );
      const jobId = out.trim().split(";")[0];
      assert.match(jobId, /^\d+$/);
      const states = await waitForArray(c(), jobId, [0, 1], 20_000);
      assert.deepEqual(
        states.map((s) => [s.task, s.state, s.exitCode]),
        [
          [0, "COMPLETED", "0:0"],
          [1, "COMPLETED", "0:0"],
        ],
      );
      for (const t of [0, 1]) {
        assert.equal(readFileSync(path.join(work, `out-${t}.txt`), "utf8").trim(), `task ${t} of ${jobId} on ${c().nodeName}`);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test("columnformer sweep --slurm --submit trains both runs of a tiny sweep; compare reads them", { timeout: 90_000 }, async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), "cf-slurm-sweep-"));
    try {
      const data = path.join(work, "data");
      const split = (n: number, offset: number) => {
        const labels = Array.from({ length: n }, (_, i) => i % 2);
        return { images: labels.map((l, i) => patternImage(8, 8, 1, 3 * (offset + i) + l)), labels };
      };
      await writeIdxFolder(data, split(32, 0), split(16, 100), false);
      const sweepFile = path.join(work, "sweep.json");
      writeFileSync(
        sweepFile,
        JSON.stringify({
          name: "slurm-tiny",
          base: {
            sheet: { geometry: { kind: "stacked", widths: [2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2 },
            vision: { image_size: 8, patch_size: 4, channels: 1, task: "mim", num_classes: 2 },
            data: { kind: "idx", path: data },
            batch_size: 8,
            steps: 2,
            eval_every: 2,
            eval_images: 8,
            checkpoint_every: 2,
          },
          grid: { "wiring.lambda": [0, 0.01] },
          probe: { train_images: 16, test_images: 8, epochs: 2 },
          measure_images: 8,
        }),
      );
      const sweepDir = path.join(work, "sweep");
      const submitted = await cli(["sweep", sweepFile, "--slurm", "--submit", "--out", sweepDir, "--cpus-per-task", "1", "--partition", c().partition, "--time", "10:00"], c().env);
      assert.equal(submitted.code, 0, submitted.stderr);
      const jobId = /submitted job (\d+)/.exec(submitted.stdout)?.[1];
      assert.ok(jobId, `no job id in: ${submitted.stdout}`);
      assert.ok(existsSync(path.join(sweepDir, "sweep.sbatch")));

      const states = await waitForArray(c(), jobId, [0, 1], 75_000);
      const logs = dumpLogs(path.join(sweepDir, "slurm"));
      assert.deepEqual(
        states.map((s) => [s.task, s.state, s.exitCode]),
        [
          [0, "COMPLETED", "0:0"],
          [1, "COMPLETED", "0:0"],
        ],
        logs,
      );
      for (const name of ["lambda-0", "lambda-0.01"]) {
        const file = path.join(sweepDir, name, "sweep-summary.json");
        assert.ok(existsSync(file), `${file} missing\n${logs}`);
        const summary = JSON.parse(readFileSync(file, "utf8")) as RunSummary;
        assert.equal(summary.name, name);
        assert.equal(summary.steps, 2);
        assert.equal(summary.task, "mim");
      }

      const compared = await cli(["compare", sweepDir], c().env);
      assert.equal(compared.code, 0, compared.stderr);
      assert.match(compared.stdout, /\| lambda-0 \| lambda=0 \|/);
      assert.match(compared.stdout, /\| lambda-0\.01 \| lambda=0\.01 \|/);
      assert.ok(existsSync(path.join(sweepDir, "compare.md")));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
