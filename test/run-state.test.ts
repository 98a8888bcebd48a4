/**
 * The state of a run directory (src/train/run-state.ts) read from hand-made directories: new,
 * partial (a `last` or a step checkpoint), finished, a summary of another length, a corrupt
 * summary, damaged checkpoints; and the run-dir paths the workflows take instead of file names.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import {
  analysisDirOf,
  checkpointPath,
  optimizerPath,
  preferredCheckpoint,
  removeTrainingOutputs,
  type RunDir,
  runDirPaths,
  runRootOfCheckpoint,
} from "../src/train/run-dir.ts";
import { findResumePoint, runDirState } from "../src/train/run-state.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "cf-runstate-"));

/** A run directory `name` holding `files` (paths relative to it; "" content unless given). */
function runDir(name: string, files: Record<string, string>): RunDir {
  const dir = runDirPaths(path.join(tmp, name));
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(dir.root, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  return dir;
}

const CONFIG = { "config.json": "{}" };
const summary = (steps: number) => JSON.stringify({ steps, run_dir: "x" });

test("runDirState: a missing or empty directory, or one with only its config, is new", () => {
  assert.deepEqual(runDirState(path.join(tmp, "absent"), 10), { kind: "new" });
  assert.deepEqual(runDirState(runDir("config-only", CONFIG).root, 10), { kind: "new" });
  // a best checkpoint and a log are no resume point
  assert.deepEqual(runDirState(runDir("best-only", { ...CONFIG, "log.jsonl": "{}\n", "checkpoints/best.safetensors": "x" }).root, 10), { kind: "new" });
  // checkpoints without a config.json are not a run to resume
  assert.deepEqual(runDirState(runDir("no-config", { "checkpoints/last.safetensors": "x" }).root, 10), { kind: "new" });
});

test("runDirState: a last or step checkpoint is partial, newest first", () => {
  const last = runDir("last", { ...CONFIG, "checkpoints/last.safetensors": "x", "checkpoints/last.opt.safetensors": "x" });
  assert.deepEqual(runDirState(last.root, 10), { kind: "partial", candidates: ["last"] });
  const steps = runDir("steps", {
    ...CONFIG,
    "checkpoints/last.opt.safetensors": "x",
    "checkpoints/step-000002.safetensors": "x",
    "checkpoints/step-000004.opt.safetensors": "x",
  });
  assert.deepEqual(runDirState(steps.root, 10), { kind: "partial", candidates: ["last", 4, 2] });
});

test("runDirState: summary.json of the planned steps with its last checkpoint is finished", () => {
  const done = runDir("finished", { ...CONFIG, "summary.json": summary(10), "checkpoints/last.safetensors": "x", "checkpoints/last.opt.safetensors": "x" });
  assert.deepEqual(runDirState(done.root, 10), { kind: "finished", summary: { steps: 10, run_dir: "x" } });
  // planned longer (an extended run): its checkpoints resume
  assert.deepEqual(runDirState(done.root, 20), { kind: "partial", candidates: ["last"] });
  // a summary without the final model is not finished
  assert.deepEqual(runDirState(runDir("summary-only", { ...CONFIG, "summary.json": summary(10) }).root, 10), { kind: "new" });
});

test("runDirState: a corrupt summary.json is an error naming the file", () => {
  const bad = runDir("corrupt-summary", { ...CONFIG, "summary.json": '{"steps": 1', "checkpoints/last.safetensors": "x" });
  assert.throws(() => runDirState(bad.root, 1), (e: Error) => e.message.startsWith(`${bad.summaryPath}: cannot read JSON`));
});

test("findResumePoint: damaged checkpoints are skipped with one warning; none left resumes from step 0", async () => {
  const dir = runDir("damaged", {
    ...CONFIG,
    "checkpoints/last.safetensors": "x",
    "checkpoints/last.opt.safetensors": "not a safetensors file",
    "checkpoints/step-000002.safetensors": "x",
  });
  assert.deepEqual(runDirState(dir.root, 10), { kind: "partial", candidates: ["last", 2] });
  const said: string[] = [];
  assert.equal(await findResumePoint(dir, (line) => said.push(line)), null);
  assert.equal(said.length, 1);
  assert.match(said[0], /^warning: .*checkpoints: skipped .*step-000002\.opt\.safetensors is missing; no complete checkpoint is left, so it starts from step 0$/);
  assert.ok(said[0].includes("last.opt.safetensors"), said[0]);
  assert.equal(await findResumePoint(runDir("empty-resume", CONFIG), () => assert.fail("nothing to say")), null);
});

test("run-dir paths: summary, best.json, reconstructions, init; preferred checkpoint; the run of a checkpoint", async () => {
  const dir = runDirPaths(path.join(tmp, "paths"));
  const rel = (p: string): string => path.relative(dir.root, p);
  assert.equal(rel(dir.summaryPath), "summary.json");
  assert.equal(rel(dir.bestEvalPath), "best.json");
  assert.equal(rel(dir.reconstructionsPath), "reconstructions.png");
  assert.equal(rel(dir.initPath), "init.safetensors");

  assert.equal(preferredCheckpoint(dir), null);
  runDir("paths", { ...CONFIG, "checkpoints/step-000002.safetensors": "x", "checkpoints/step-000010.safetensors": "x" });
  assert.equal(preferredCheckpoint(dir), checkpointPath(dir, 10));
  writeFileSync(checkpointPath(dir, "last"), "x");
  assert.equal(preferredCheckpoint(dir), checkpointPath(dir, "last"));
  writeFileSync(checkpointPath(dir, "best"), "x");
  assert.equal(preferredCheckpoint(dir), checkpointPath(dir, "best"));

  assert.equal(runRootOfCheckpoint(checkpointPath(dir, "last")), dir.root);
  assert.equal(runRootOfCheckpoint(path.join(tmp, "loose.safetensors")), null);

  // a fresh start clears what an attempt left, but keeps the config and the starting parameters
  for (const p of [dir.logPath, dir.bestEvalPath, dir.summaryPath, dir.reconstructionsPath, dir.initPath, optimizerPath(dir, "last")]) writeFileSync(p, "x");
  await removeTrainingOutputs(dir);
  assert.deepEqual(
    [dir.configPath, dir.initPath, dir.logPath, dir.bestEvalPath, dir.summaryPath, dir.reconstructionsPath, dir.checkpointsDir].map((p) => existsSync(p)),
    [true, true, false, false, false, false, false],
  );
});

test("analysisDirOf: the run's analysis/ for its preferred checkpoint, else analysis-<name>/ beside the checkpoint (analyze and view agree)", () => {
  const dir = runDir("analysis", { ...CONFIG, "checkpoints/best.safetensors": "x", "checkpoints/step-000004.safetensors": "x" });
  assert.equal(path.relative(dir.root, dir.analysisDir), "analysis");
  assert.equal(analysisDirOf(checkpointPath(dir, "best")), dir.analysisDir);
  // a relative path to the same file names the same folder
  assert.equal(analysisDirOf(path.relative(process.cwd(), checkpointPath(dir, "best"))), dir.analysisDir);
  assert.equal(analysisDirOf(checkpointPath(dir, 4)), path.join(dir.checkpointsDir, "analysis-step-000004"));
  assert.equal(analysisDirOf(path.join(tmp, "loose.safetensors")), path.join(tmp, "analysis-loose"));
});
