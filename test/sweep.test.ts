/**
 * Sweeps: expansion of sweep files (grid x runs, names, up-front validation),
 * the Slurm job-array script, and end-to-end tiny sweeps on a synthetic IDX
 * data set (summaries, skip when done, resume, re-measure without retraining,
 * refusal of a changed config, the CLI with --jobs and a failing run).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as nodePath from "node:path";
import { promisify } from "node:util";
import { before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { runSweepLocal } from "../src/workflows/sweep/local.ts";
import { assertRunDirsMatch, attentionMetrics, median, runRoot, writePlan } from "../src/workflows/sweep/run.ts";
import { SUMMARY_FILE } from "../src/workflows/sweep/summary.ts";
import { arraySpec, shellQuote, slurmScript } from "../src/workflows/sweep/slurm.ts";
import { applyOverrides } from "../src/io/overrides.ts";
import { expandSweep, gridKeyLabels, gridProduct, loadSweep, parseSweepFile, sanitizeName, type SweepFileInput, type SweepPlan } from "../src/workflows/sweep/spec.ts";
import type { RunSummary } from "../src/workflows/sweep/summary.ts";
import { train } from "../src/train/trainer.ts";
import { patternImage, tmpDir, writeIdxFolder } from "./data-fixtures.ts";

const SIZE = 8;
const CLI = nodePath.join(import.meta.dirname, "..", "src", "cli", "main.ts");
const exec = promisify(execFile);

let dataDir = "";

before(async () => {
  await initEngine();
  dataDir = await tmpDir("cf-sweep-data-");
  const split = (n: number, offset: number) => {
    const labels = Array.from({ length: n }, (_, i) => i % 2);
    return { images: labels.map((l, i) => patternImage(SIZE, SIZE, 1, 3 * (offset + i) + l)), labels };
  };
  await writeIdxFolder(dataDir, split(32, 0), split(16, 100), false);
});

/** A tiny, valid base config: 2 stacked 2x2 areas, 8 px images, 4 px patches. */
function tinyBase(): Record<string, unknown> {
  return {
    sheet: { geometry: { kind: "stacked", widths: [2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2 },
    vision: { image_size: SIZE, patch_size: 4, channels: 1, task: "mim", num_classes: 2 },
    data: { kind: "idx", path: dataDir },
    batch_size: 8,
    steps: 2,
    eval_every: 2,
    eval_images: 8,
    checkpoint_every: 1,
  };
}

/** A sweep of the tiny base; `extra` is merged over it. */
function tinySweep(extra: Partial<SweepFileInput> = {}): SweepFileInput {
  return { name: "t", base: tinyBase(), probe: { train_images: 16, test_images: 8, epochs: 2 }, measure_images: 8, ...extra };
}

const plan = (input: SweepFileInput): SweepPlan => expandSweep(parseSweepFile(input));

function logLines(root: string): string[] {
  return readFileSync(nodePath.join(root, "log.jsonl"), "utf8").split("\n").filter((l) => l !== "");
}

function readSummary(sweepDir: string, name: string): RunSummary {
  return JSON.parse(readFileSync(nodePath.join(runRoot(sweepDir, name), SUMMARY_FILE), "utf8")) as RunSummary;
}

describe("sweep files: expansion", () => {
  test("runs x grid product, in order, with names and overrides", () => {
    const p = plan({
      name: "ws",
      preset: "tiny",
      set: { "vision.task": "classify", steps: 7 },
      grid: { "wiring.lambda": [0, 0.01], "sheet.depth": [2, 3] },
      runs: [{ name: "columns" }, { name: "deep mlp", set: { "sheet.mlp_dim": 32 } }],
      probe: false,
    });
    assert.deepEqual(
      p.runs.map((r) => r.name),
      [
        "columns_lambda-0_depth-2",
        "columns_lambda-0_depth-3",
        "columns_lambda-0.01_depth-2",
        "columns_lambda-0.01_depth-3",
        "deep-mlp_lambda-0_depth-2",
        "deep-mlp_lambda-0_depth-3",
        "deep-mlp_lambda-0.01_depth-2",
        "deep-mlp_lambda-0.01_depth-3",
      ],
    );
    assert.deepEqual(p.runs.map((r) => r.index), [0, 1, 2, 3, 4, 5, 6, 7]);
    const r = p.runs[7];
    assert.deepEqual(r.overrides, { "sheet.mlp_dim": 32, "wiring.lambda": 0.01, "sheet.depth": 3 });
    assert.equal(r.config.sheet.mlp_dim, 32);
    assert.equal(r.config.sheet.depth, 3);
    assert.equal(r.config.wiring.lambda, 0.01);
    assert.equal(r.config.steps, 7);
    assert.equal(r.config.vision.task, "classify");
    assert.equal(r.config.sheet.dim, 64, "preset value kept");
    assert.equal(p.runs[0].config.sheet.mlp_dim, 64);
    assert.equal(p.probe, false);
    assert.deepEqual(p.set, { "vision.task": "classify", steps: 7 });
  });

  test("defaults: one unnamed run, default probe and measure settings; base merges over the preset", () => {
    const p = plan({ name: "one", preset: "tiny", base: { optim: { weight_decay: 0 } } });
    assert.equal(p.runs.length, 1);
    assert.equal(p.runs[0].name, "run");
    assert.equal(p.runs[0].config.optim.lr, 2e-3, "preset's optim.lr survives the deep merge");
    assert.equal(p.runs[0].config.optim.weight_decay, 0);
    assert.deepEqual(p.probe, { train_images: 2000, test_images: 1000, epochs: 30, pooling: "flat" });
    assert.equal(p.measure_images, 500);
    assert.deepEqual(plan({ name: "g", preset: "tiny", grid: { seed: [1, 2] } }).runs.map((r) => r.name), ["seed-1", "seed-2"]);
  });

  test("a dotted key sets the value there: leaves replace, objects merge unless their kind differs (--set's rule)", () => {
    assert.deepEqual(applyOverrides({ a: { b: 1, c: 2 } }, [["a.b", { x: 1 }]]), { a: { b: { x: 1 }, c: 2 } });
    assert.deepEqual(applyOverrides({ a: 1 }, [["a.b.c", true]]), { a: { b: { c: true } } });
    assert.deepEqual(applyOverrides({ a: { kind: "p", x: 1 } }, [["a", { kind: "p", y: 2 }]]), { a: { kind: "p", x: 1, y: 2 } });
    assert.deepEqual(applyOverrides({ a: { kind: "p", x: 1 } }, [["a", { kind: "q", y: 2 }]]), { a: { kind: "q", y: 2 } });
    const input = { a: { b: 1 } };
    const value = { z: [1] };
    const out = applyOverrides(input, [["a.b", 2], ["a.c", value]]) as { a: { c: { z: number[] } } };
    assert.deepEqual(input, { a: { b: 1 } }, "input not modified");
    out.a.c.z.push(2);
    assert.deepEqual(value, { z: [1] }, "override value not shared");
    assert.throws(() => applyOverrides({}, [["a..b", 1]]), /override key "a\.\.b" has an empty part/);
    const p = plan({ name: "geo", preset: "tiny", set: { "sheet.geometry": { kind: "grid", height: 7, width: 7 } } });
    assert.deepEqual(p.runs[0].config.sheet.geometry, { kind: "grid", height: 7, width: 7 });
  });

  test("names: short unique grid labels, sanitised values", () => {
    assert.deepEqual(gridKeyLabels(["wiring.lambda", "optim.lr", "x.lambda"]), ["wiring.lambda", "lr", "x.lambda"]);
    assert.deepEqual(gridProduct({ a: [1, 2], b: ["x"] }), [{ a: 1, b: "x" }, { a: 2, b: "x" }]);
    assert.deepEqual(gridProduct({}), [{}]);
    assert.equal(sanitizeName("a b/c"), "a-b-c");
    assert.equal(sanitizeName("../x"), "x");
    assert.equal(sanitizeName("///"), "run");
    const p = plan({ name: "d", preset: "tiny", grid: { data: [{ kind: "mnist" }, { kind: "fashion-mnist" }] } });
    assert.deepEqual(p.runs.map((r) => r.name), ["data-kind-mnist", "data-kind-fashion-mnist"]);
  });

  test("two runs with the same name are refused", () => {
    assert.throws(() => plan({ name: "dup", preset: "tiny", runs: [{ name: "a" }, { name: "a" }] }), /runs 0 and 1 are both named "a"/);
    assert.throws(() => plan({ name: "dup", preset: "tiny", runs: [{ name: "a b" }, { name: "a/b" }] }), /both named "a-b"/);
    assert.throws(() => plan({ name: "dup", preset: "tiny", grid: { seed: [1, "1"] } }), /both named "seed-1"/);
  });

  test("a bad override in a late run fails up front, naming the run and the field", () => {
    const input: SweepFileInput = {
      name: "bad",
      preset: "tiny",
      grid: { "wiring.lambda": [0, 0.1] },
      runs: [{ name: "ok" }, { name: "typo", set: { "wiring.lamda": 3 } }],
    };
    assert.throws(() => plan(input), /run "typo_lambda-0": invalid training config: config\.wiring: .*lamda/);
    assert.throws(() => plan({ name: "b", preset: "tiny", set: { "sheet.depth": -1 } }), /run "run": .*config\.sheet\.depth/);
    assert.throws(() => plan({ name: "b", preset: "tiny", set: { "sheet.geometry.widths": [3, 3] } }), /run "run": input area/);
    assert.throws(() => plan({ name: "b", preset: "tiny", grid: { steps: [1] }, runs: [{ name: "x", set: { steps: 2 } }] }), /sweep\.runs\[0\]\.set\["steps"\] is also a grid key/);
  });

  test("schema errors are one line naming the field", () => {
    assert.throws(() => parseSweepFile({ name: "x", preset: "huge" }), /^Error: invalid sweep file: sweep\.preset: /);
    assert.throws(() => parseSweepFile({ name: "x", grid: { "wiring.lambda": 0.1 } }), /sweep\.grid\["wiring\.lambda"\]: .*array/);
    assert.throws(() => parseSweepFile({ name: "x", grid: { "wiring.lambda": [] } }), /sweep\.grid\["wiring\.lambda"\]: a grid axis needs/);
    assert.throws(() => parseSweepFile({ name: "x", set: { "a..b": 1 } }), /sweep\.set.*dotted config paths/);
    assert.throws(() => parseSweepFile({ name: "x", runs: [{ name: "a", extra: 1 }] }), /sweep\.runs\[0\]/);
    assert.throws(() => parseSweepFile({ name: "x y" }), /sweep\.name: /);
    assert.throws(() => parseSweepFile({ name: "x", colour: 1 }), /sweep: .*colour/);
  });

  test("every sweep file shipped in sweeps/ loads, validates and expands (progressive.yaml is a phase plan)", async () => {
    const dir = nodePath.join(import.meta.dirname, "..", "sweeps");
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml") && f !== "progressive.yaml");
    assert.ok(files.length >= 5, `sweep files: ${files.join(", ")}`);
    const plans = new Map<string, SweepPlan>();
    for (const file of files) {
      const swept = await loadSweep(nodePath.join(dir, file));
      assert.ok(swept.runs.length > 0, `${file}: no runs`);
      assert.equal(new Set(swept.runs.map((r) => r.name)).size, swept.runs.length, `${file}: repeated run names`);
      plans.set(file, swept);
    }
    const topography = plans.get("topography-3-epochs.yaml");
    assert.ok(topography, "sweeps/topography-3-epochs.yaml is shipped");
    assert.equal(topography.runs.length, 15); // 5 strengths x 3 seeds
    assert.deepEqual([...new Set(topography.runs.map((r) => r.config.wiring.lambda))], [0, 0.03, 0.1, 0.3, 1]);
    assert.ok(topography.runs.every((r) => r.config.steps === 5625 && r.config.vision.task === "classify"));
  });
});

describe("Slurm job-array script", () => {
  test("array range, directives, and the task command", () => {
    const script = slurmScript({
      jobName: "ws",
      tasks: [0, 1, 2, 3, 4, 5],
      maxParallel: 2,
      logDir: "/scratch/sw/slurm",
      partition: "cpu",
      time: "4:00:00",
      gpus: 1,
      cpusPerTask: 8,
      mem: "16G",
      account: "lab",
      workDir: "/home/me/my project",
      command: ["/usr/bin/node", "--import", "tsx", "/home/me/my project/src/cli/main.ts", "sweep", "/home/me/it's.yaml", "--out", "/scratch/sw"],
    });
    const lines = script.split("\n");
    assert.equal(lines[0], "#!/bin/bash");
    for (const d of [
      "#SBATCH --job-name=ws",
      "#SBATCH --array=0-5%2",
      "#SBATCH --output=/scratch/sw/slurm/%A_%a.out",
      "#SBATCH --cpus-per-task=8",
      "#SBATCH --partition=cpu",
      "#SBATCH --time=4:00:00",
      "#SBATCH --gres=gpu:1",
      "#SBATCH --mem=16G",
      "#SBATCH --account=lab",
    ]) {
      assert.ok(lines.includes(d), `missing ${d}`);
    }
    const firstCommand = lines.findIndex((l) => l !== "" && !l.startsWith("#"));
    assert.ok(lines.slice(firstCommand).every((l) => !l.startsWith("#SBATCH")), "all directives before the first command");
    assert.equal(lines[firstCommand], "set -euo pipefail");
    assert.ok(lines.includes("cd '/home/me/my project'"));
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the generated sbatch script must hold this shell parameter expansion verbatim
    assert.ok(lines.includes("export COLUMNFORMER_THREADS=${SLURM_CPUS_PER_TASK:-8}"));
    assert.ok(
      lines.includes(
        `exec /usr/bin/node --import tsx '/home/me/my project/src/cli/main.ts' sweep '/home/me/it'\\''s.yaml' --out /scratch/sw --task "$SLURM_ARRAY_TASK_ID"`,
      ),
      script,
    );
  });

  test("minimal options, task lists, quoting and refusals", () => {
    const script = slurmScript({ jobName: "a", tasks: [3], logDir: "/l/", cpusPerTask: 2, workDir: "/w", command: ["node", "x.js"] });
    assert.match(script, /^#SBATCH --array=3$/m);
    assert.match(script, /^#SBATCH --output=\/l\/%A_%a\.out$/m);
    assert.doesNotMatch(script, /--partition|--time|--gres|--mem|--account/);
    assert.equal(arraySpec([7, 0, 1, 2, 5, 8]), "0-2,5,7-8");
    assert.equal(shellQuote("$HOME"), "'$HOME'");
    assert.equal(shellQuote(""), "''");
    assert.throws(() => slurmScript({ jobName: "a", tasks: [0], logDir: "/my logs", cpusPerTask: 2, workDir: "/w", command: ["n"] }), /--out .*spaces/);
    assert.throws(() => slurmScript({ jobName: "a", tasks: [0], logDir: "/l", cpusPerTask: 0, workDir: "/w", command: ["n"] }), /--cpus-per-task must be a positive integer/);
    assert.throws(() => slurmScript({ jobName: "a", tasks: [], logDir: "/l", cpusPerTask: 1, workDir: "/w", command: ["n"] }), /at least one task/);
  });
});

describe("measurements", () => {
  test("median, and attention metrics averaged over steps", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
    // 2 columns at distance 1 (self 0): mean d = 0.5. Step 0 attends to itself (cost 0, distance 0),
    // step 1 to the other column (W = 1 / 0.5 = 2, distance 1).
    const d = [0, 1, 1, 0];
    const maps = Float32Array.from([1, 0, 0, 1, 0, 1, 1, 0]);
    const m = attentionMetrics(maps, d, 2);
    assert.ok(Math.abs(m.wiringCost - 1) < 1e-9, String(m.wiringCost));
    assert.ok(Math.abs(m.meanDistance - 0.5) < 1e-9, String(m.meanDistance));
  });
});

describe("running sweeps", () => {
  test("end to end: two runs, summaries; a second pass retrains nothing; a deleted summary is re-measured only", async () => {
    const dir = await tmpDir("cf-sweep-e2e-");
    const p = plan(tinySweep({ grid: { "wiring.lambda": [0, 0.1] } }));
    await writePlan(p, dir);
    const reports = await runSweepLocal(p, dir, { verbose: false, log: () => {} });
    assert.deepEqual(reports.map((r) => [r.name, r.status]), [["lambda-0", "completed"], ["lambda-0.1", "completed"]]);
    const lines: Record<string, string[]> = {};
    for (const run of p.runs) {
      const s = readSummary(dir, run.name);
      assert.equal(s.name, run.name);
      assert.deepEqual(s.overrides, run.overrides);
      assert.equal(s.task, "mim");
      assert.equal(s.steps, 2);
      assert.ok(Number.isInteger(s.parameters) && s.parameters > 0);
      assert.ok(Number.isFinite(s.flops_per_image) && s.flops_per_image > 0);
      assert.ok(s.images_per_second > 0 && Number.isFinite(s.images_per_second));
      assert.ok(s.train_seconds > 0 && Number.isFinite(s.train_seconds));
      assert.ok(Number.isFinite(s.eval.loss) && s.eval.mim_loss !== undefined && s.eval.accuracy === undefined);
      assert.ok(s.probe_accuracy !== null && s.probe_accuracy >= 0 && s.probe_accuracy <= 1);
      // 4 columns: uniform attention would cost exactly 1; distances in geometry units
      assert.ok(s.wiring_cost > 0 && s.wiring_cost < 4, String(s.wiring_cost));
      assert.ok(s.mean_attention_distance > 0, String(s.mean_attention_distance));
      lines[run.name] = logLines(runRoot(dir, run.name));
      assert.equal(lines[run.name].length, 2);
    }
    const wired = readSummary(dir, "lambda-0.1");
    const trainSummary = JSON.parse(readFileSync(nodePath.join(runRoot(dir, "lambda-0.1"), "summary.json"), "utf8")) as { final: { wiring_cost: number } };
    assert.ok(Math.abs(wired.eval.loss - (wired.eval.mim_loss! + 0.1 * trainSummary.final.wiring_cost)) < 1e-9, "total loss = task + lambda * wiring");
    assert.equal(readSummary(dir, "lambda-0").eval.loss, readSummary(dir, "lambda-0").eval.mim_loss);

    const again = await runSweepLocal(p, dir, { verbose: false, log: () => {} });
    assert.deepEqual(again.map((r) => r.status), ["skipped", "skipped"]);
    for (const run of p.runs) assert.deepEqual(logLines(runRoot(dir, run.name)), lines[run.name]);

    // delete one summary: measured again, not retrained
    const first = readSummary(dir, "lambda-0");
    rmSync(nodePath.join(runRoot(dir, "lambda-0"), SUMMARY_FILE));
    const remeasured = await runSweepLocal(p, dir, { verbose: false, log: () => {} });
    assert.deepEqual(remeasured.map((r) => r.status), ["completed", "skipped"]);
    assert.deepEqual(logLines(runRoot(dir, "lambda-0")), lines["lambda-0"]);
    const second = readSummary(dir, "lambda-0");
    assert.deepEqual({ ...second, probe_accuracy: 0 }, { ...first, probe_accuracy: 0 });

    // the sweep file changed: the run whose config differs is refused, naming it and the fix
    const changed = plan(tinySweep({ grid: { "wiring.lambda": [0, 0.1] }, set: { "optim.lr": 0.5 } }));
    assert.throws(() => assertRunDirsMatch(changed, dir), /different config for runs "lambda-0", "lambda-0\.1".*rm -r/);
  });

  test("an interrupted run resumes from its last checkpoint instead of starting over", async () => {
    const dir = await tmpDir("cf-sweep-resume-");
    const p = plan(tinySweep({ base: { ...tinyBase(), steps: 3 }, probe: false }));
    const run = p.runs[0];
    const root = runRoot(dir, run.name);
    await train(run.config, root, { verbose: false, stopAfter: 1 });
    const before = logLines(root);
    assert.equal(before.length, 1);
    const messages: string[] = [];
    const reports = await runSweepLocal(p, dir, { verbose: false, log: (l) => messages.push(l) });
    assert.equal(reports[0].status, "completed");
    assert.ok(messages.some((m) => m.includes("resuming")), messages.join("\n"));
    const after = logLines(root);
    assert.equal(after.length, 3);
    assert.equal(after[0], before[0], "step 1 was not trained again");
    const s = readSummary(dir, run.name);
    assert.equal(s.steps, 3);
    assert.equal(s.probe_accuracy, null);
  });

  test("learned positions: measured against the trained positions' distances", async () => {
    const dir = await tmpDir("cf-sweep-learned-");
    const p = plan(tinySweep({ set: { "sheet.learn_positions": true, "wiring.lambda": 0.1 }, probe: false }));
    const reports = await runSweepLocal(p, dir, { verbose: false, log: () => {} });
    assert.equal(reports[0].status, "completed", reports[0].error);
    const s = readSummary(dir, "run");
    assert.ok(Number.isFinite(s.wiring_cost) && s.wiring_cost > 0, String(s.wiring_cost));
    assert.ok(Number.isFinite(s.mean_attention_distance) && s.mean_attention_distance > 0, String(s.mean_attention_distance));
  });

  test("CLI: --only picks a run by name, or every seed of it", async () => {
    const dir = await tmpDir("cf-sweep-only-");
    const file = nodePath.join(dir, "sweep.json");
    const out = nodePath.join(dir, "out");
    writeFileSync(file, JSON.stringify(tinySweep({ name: "only", probe: false, seeds: [0, 1], runs: [{ name: "a" }, { name: "b" }] })));
    const dry = async (...only: string[]) => {
      const r = await exec(process.execPath, ["--import", "tsx", CLI, "sweep", file, "--out", out, "--dry-run", ...only.flatMap((n) => ["--only", n])]);
      return r.stdout.split("\n").filter((l) => / new /.test(l)).map((l) => l.trim().split(/ +/).slice(0, 2).join(" "));
    };
    // runs expand as a_seed-0 (0), a_seed-1 (1), b_seed-0 (2), b_seed-1 (3)
    assert.deepEqual(await dry("b"), ["2 b_seed-0", "3 b_seed-1"]);
    assert.deepEqual(await dry("b_seed-1", "a_seed-0"), ["0 a_seed-0", "3 b_seed-1"]);
    assert.deepEqual(await dry("a", "a_seed-1"), ["0 a_seed-0", "1 a_seed-1"]);
  });

  test("CLI: --dry-run lists the runs; --slurm writes and submits the script; --jobs 2 reports a failed run and exits non-zero", async () => {
    const dir = await tmpDir("cf-sweep-cli-");
    const file = nodePath.join(dir, "sweep.json");
    const out = nodePath.join(dir, "out");
    const sweep = tinySweep({ name: "cli", probe: false, runs: [{ name: "good" }, { name: "broken", set: { "data.path": nodePath.join(dir, "missing") } }] });
    writeFileSync(file, JSON.stringify(sweep));
    const cli = async (...args: (string | Record<string, string>)[]) => {
      const env = args.find((a): a is Record<string, string> => typeof a !== "string") ?? {};
      const argv = args.filter((a): a is string => typeof a === "string");
      try {
        const r = await exec(process.execPath, ["--import", "tsx", CLI, "sweep", file, "--out", out, ...argv], {
          env: { ...process.env, COLUMNFORMER_THREADS: "1", COLUMNFORMER_DEBUG: "", ...env },
        });
        return { code: 0, ...r };
      } catch (e) {
        return e as { code: number; stdout: string; stderr: string };
      }
    };
    const dry = await cli("--dry-run");
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /0 +good +new +\{\}/);
    assert.match(dry.stdout, /1 +broken +new +\{"data\.path":/);
    assert.ok(existsSync(nodePath.join(out, "sweep.json")));
    assert.ok(!existsSync(nodePath.join(out, "good")), "dry run trains nothing");
    const unknown = await cli("--dry-run", "--only", "nope");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /--only: no run is named "nope" \(runs: good, broken\)/);

    // --slurm --submit with a stand-in sbatch on PATH
    const bin = nodePath.join(dir, "bin");
    mkdirSync(bin);
    writeFileSync(nodePath.join(bin, "sbatch"), `#!/bin/sh\necho "$@" > "${nodePath.join(dir, "sbatch-args")}"\necho "4242;cluster"\n`, { mode: 0o755 });
    const slurm = await cli("--slurm", "--partition", "cpu", "--max-parallel", "1", "--submit", { PATH: `${bin}${nodePath.delimiter}${process.env.PATH}` });
    assert.equal(slurm.code, 0, slurm.stderr);
    assert.match(slurm.stdout, /submitted job 4242/);
    const scriptPath = nodePath.join(out, "sweep.sbatch");
    assert.equal(readFileSync(nodePath.join(dir, "sbatch-args"), "utf8").trim(), `--parsable ${scriptPath}`);
    const script = readFileSync(scriptPath, "utf8");
    assert.match(script, /^#SBATCH --array=0-1%1$/m);
    assert.match(script, /^#SBATCH --job-name=cli$/m);
    assert.match(script, /^#SBATCH --partition=cpu$/m);
    assert.ok(script.includes(`--output=${nodePath.join(out, "slurm")}/%A_%a.out`));
    assert.ok(script.includes(` sweep ${file} --out ${out} --task "$SLURM_ARRAY_TASK_ID"`), script);
    assert.ok(existsSync(nodePath.join(out, "slurm")), "the log folder exists before the job starts");
    assert.match((await cli("--partition", "cpu")).stderr, /--partition only applies with --slurm/);

    const r = await cli("--jobs", "2", "--quiet");
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[good\] /, "child output is prefixed with the run name");
    assert.match(r.stderr, /broken: FAILED: /);
    assert.match(r.stderr, /columnformer: error: 1 of 2 runs failed \(broken\)/);
    assert.match(r.stdout, /good +completed/);
    assert.ok(existsSync(nodePath.join(out, "good", SUMMARY_FILE)));
    assert.ok(!existsSync(nodePath.join(out, "broken", SUMMARY_FILE)));
  });
});
