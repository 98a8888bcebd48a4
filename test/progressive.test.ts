/**
 * `columnformer progressive` (src/workflows/progressive.ts): a tiny plan train(2) -> grow(x2) ->
 * train(2) -> prune(K 2) -> train(2) on a stacked [2, 2, 2] sheet with fixture data: the phases
 * chain (grown geometry, sparse K, each train phase starts from the previous parameters); an
 * interrupted train phase resumes from its checkpoint; a rerun skips everything; validation
 * errors name the field; the example file validates with --dry-run.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as nodePath from "node:path";
import { promisify } from "node:util";
import { before, describe, test } from "node:test";
import { loadVisionCheckpoint } from "../src/checkpoint/vision-checkpoint.ts";
import { initEngine } from "../src/engine/engine.ts";
import { tree } from "../src/engine/jax.ts";
import { planProgressive, progressiveTable, runProgressive, type ProgressiveResult } from "../src/workflows/progressive.ts";
import { easyImage, tmpDir, writeIdxFolder } from "./data-fixtures.ts";

const SIZE = 8;

const read = (p: string) => readFileSync(p, "utf8");
const json = <T>(p: string) => JSON.parse(read(p)) as T;

let dataDir = "";
const base = () => ({
  sheet: { geometry: { kind: "stacked", widths: [2, 2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2, recurrent: false, heads: 2, value_proj: true },
  vision: { image_size: SIZE, patch_size: 4, channels: 1, task: "mim" },
  data: { kind: "idx", path: dataDir },
  batch_size: 8,
  eval_every: 100,
  eval_images: 16,
  checkpoint_every: 100,
  optim: { lr: 1e-2 },
});
const PHASES = [{ train: { steps: 2 } }, { grow: { factor: 2 } }, { train: { steps: 2, set: { "optim.lr": 0.005 } } }, { prune: { k: 2, images: 8 } }, { train: { steps: 2 } }];

before(async () => {
  await initEngine();
  dataDir = await tmpDir("cf-progressive-data-");
  const split = (count: number, offset: number) => {
    const labels = Array.from({ length: count }, (_, i) => i % 2);
    return { images: labels.map((l, i) => easyImage(l, offset + i)), labels };
  };
  await writeIdxFolder(dataDir, split(32, 0), split(16, 500), false);
});

describe("validation", () => {
  test("the plan: columns and K per phase", () => {
    const plan = planProgressive({ name: "t", base: base(), phases: PHASES });
    assert.deepEqual(plan.phases.map((p) => [p.dir, p.num_columns, p.k, p.steps]), [
      ["0-train", 12, null, 2],
      ["1-grow", 24, null, 0],
      ["2-train", 24, null, 2],
      ["3-prune", 24, 2, 0],
      ["4-train", 24, 2, 2],
    ]);
    assert.equal(plan.config.steps, 2);
  });

  test("errors name the field", () => {
    const bad = (phases: unknown[], extra: Record<string, unknown> = {}) => () => planProgressive({ name: "t", base: base(), phases, ...extra });
    assert.throws(bad([{ grow: { factor: 2 } }, { train: { steps: 2 } }]), /progressive\.phases\[0\]: the first phase must be a train phase/);
    assert.throws(
      () => planProgressive({ name: "t", base: { ...base(), sheet: { ...base().sheet, geometry: { kind: "grid", height: 2, width: 2 } } }, phases: [{ train: { steps: 2 } }, { grow: { factor: 2 } }] }),
      /progressive\.phases\[1\]\.grow: grow: a grid geometry has one area/,
    );
    assert.throws(bad([{ train: { steps: 2 } }, { prune: { k: 13 } }]), /progressive\.phases\[1\]\.prune\.k: prune: k is 13 but the sheet has 12 columns/);
    assert.throws(bad([{ train: { steps: 2 } }, { prune: { k: 4 } }, { prune: { k: 5 } }]), /phases\[2\]\.prune\.k: .*sparse with 4 sources per column/);
    assert.throws(bad([{ train: { steps: 2 } }, { prune: { k: 4 } }, { grow: { factor: 2 } }]), /phases\[2\]\.grow: grow: the sheet is sparse/);
    assert.throws(bad([{ train: { steps: 2 } }, { grow: { factor: 1 } }]), /progressive\.phases\[1\]\.grow\.factor/);
    assert.throws(bad([{ train: { steps: 2 } }, { train: { steps: 2, set: { "sheet.dim": 4 } } }]), /phases\[1\]\.train\.set\["sheet\.dim"\]: .*must not change sheet or vision/);
    assert.throws(bad([{ train: { steps: 2 }, prune: { k: 2 } }]), /progressive\.phases\[0\]: a phase has exactly one of train, prune, grow/);
    assert.throws(bad([{ train: { steps: 2, lr: 1 } }]), /progressive\.phases\[0\]\.train: Unrecognized key/i);
    assert.throws(bad([]), /progressive\.phases: needs at least one phase/);
    assert.throws(bad([{ train: { steps: 2 } }], { name: "../x" }), /progressive\.name: must start with a letter or digit/);
    assert.throws(bad([{ train: { steps: 2, set: { "sheet.dim": "x" } } }]), /progressive\.phases\[0\]\.train: invalid training config: config\.sheet\.dim/);
  });

  test("the example sweeps/progressive.yaml validates (--dry-run)", async () => {
    const CLI = nodePath.join(import.meta.dirname, "..", "src", "cli", "main.ts");
    const file = nodePath.join(import.meta.dirname, "..", "sweeps", "progressive.yaml");
    const env = { ...process.env, COLUMNFORMER_THREADS: "1" };
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", CLI, "progressive", file, "--dry-run"], { env });
    assert.match(stdout, /\| 1 \| grow \| grow x2: widths \[7, 14, 7\] \| 294 \| dense \| 0 \|/);
    assert.match(stdout, /\| 3 \| prune \| prune to K 16 .*\| 294 \| 16 \| 0 \|/);
    assert.match(stdout, /\| 4 \| train \| from the previous parameters \| 294 \| 16 \| 100 \|/);
  });
});

describe("a tiny progressive run", () => {
  test("phases chain; an interrupted train phase resumes; a rerun skips everything", async () => {
    const out = nodePath.join(await tmpDir("cf-progressive-run-"), "p");
    const plan = planProgressive({ name: "t", base: base(), phases: PHASES });
    const dir = (d: string) => nodePath.join(out, d);

    // stop phase 2 after its first step
    const stopped = await runProgressive(plan, { out, verbose: false, stopAfter: { phase: 2, step: 1 } });
    assert.equal(stopped.finished, false);
    assert.deepEqual(stopped.phases.map((p) => p.status), ["done", "done", "interrupted", "pending", "pending"]);
    assert.ok(!existsSync(dir("2-train/summary.json")));
    assert.ok(!existsSync(dir("3-prune")));
    assert.equal(read(dir("2-train/log.jsonl")).trim().split("\n").length, 1);
    assert.equal(json<ProgressiveResult>(nodePath.join(out, "progressive.json")).phases[2].status, "interrupted");

    // resume: phases 0 and 1 are skipped, phase 2 resumes at step 1
    const log0 = read(dir("0-train/log.jsonl"));
    const result = await runProgressive(plan, { out, verbose: false });
    assert.equal(result.finished, true);
    assert.deepEqual(result.phases.map((p) => p.status), ["skipped", "skipped", "done", "done", "done"]);
    assert.equal(read(dir("0-train/log.jsonl")), log0);
    const steps2 = read(dir("2-train/log.jsonl")).trim().split("\n").map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(steps2, [1, 2]);

    // the chain: grown geometry, from the grown parameters, sparse K 2, from the pruned parameters
    type Cfg = { steps: number; sheet: { geometry: { widths: number[] }; connectivity?: { kind: string; k: number } }; optim: { lr: number } };
    assert.deepEqual(json<Cfg>(dir("1-grow/config.json")).sheet.geometry.widths, [2, 4, 2]);
    const c2 = json<Cfg>(dir("2-train/config.json"));
    assert.deepEqual(c2.sheet.geometry.widths, [2, 4, 2]);
    assert.equal(c2.steps, 2);
    assert.equal(c2.optim.lr, 0.005);
    assert.ok(readFileSync(dir("2-train/init.safetensors")).equals(readFileSync(dir("1-grow/init.safetensors"))));
    assert.deepEqual(json<Cfg>(dir("3-prune/config.json")).sheet.connectivity, { kind: "file", path: dir("3-prune/connectivity.json"), k: 2 });
    const c4 = json<Cfg>(dir("4-train/config.json"));
    assert.equal(c4.sheet.connectivity?.k, 2);
    assert.deepEqual(c4.sheet.geometry.widths, [2, 4, 2]);
    assert.equal(c4.optim.lr, 0.005, "a later phase keeps the previous phase's config");
    assert.ok(readFileSync(dir("4-train/init.safetensors")).equals(readFileSync(dir("3-prune/init.safetensors"))));
    const last = await loadVisionCheckpoint(dir("4-train/checkpoints/last.safetensors"));
    assert.equal(last.step, 2);
    assert.equal(last.sheet.num_columns, 24);
    assert.equal(last.connectivity?.k, 2);
    tree.dispose(last.params);

    const record = json<ProgressiveResult>(nodePath.join(out, "progressive.json"));
    assert.equal(record.finished, true);
    assert.deepEqual(record.phases.map((p) => [p.kind, p.num_columns, p.k]), [
      ["train", 12, null],
      ["grow", 24, null],
      ["train", 24, null],
      ["prune", 24, 2],
      ["train", 24, 2],
    ]);
    for (const p of record.phases) {
      assert.ok(Number.isFinite(p.value), `phase ${p.index} metric`);
      assert.ok((p.parameters ?? 0) > 0, `phase ${p.index} parameters`);
    }
    assert.ok(record.phases[1].parameters! > record.phases[0].parameters!, "growing adds parameters");
    assert.ok(record.phases[3].parameters! < record.phases[2].parameters!, "pruning drops attention-bias entries");
    const table = progressiveTable(record);
    assert.match(table, /\| 3 \| prune \| 24 \| 2 \| [\d,]+ \| 0 \| \d+\.\d{4} \|/);
    assert.match(table, /\| 0 \| train \| 12 \| dense \|/);

    // a rerun skips everything: no log changes
    const logs = ["0-train", "2-train", "4-train"].map((d) => read(dir(`${d}/log.jsonl`)));
    const again = await runProgressive(plan, { out, verbose: false });
    assert.deepEqual(again.phases.map((p) => p.status), ["skipped", "skipped", "skipped", "skipped", "skipped"]);
    assert.deepEqual(["0-train", "2-train", "4-train"].map((d) => read(dir(`${d}/log.jsonl`))), logs);
    assert.deepEqual(again.phases.map((p) => p.value), record.phases.map((p) => p.value));

    // the CLI on the finished directory: everything skipped, the table printed
    const file = nodePath.join(nodePath.dirname(out), "plan.json");
    writeFileSync(file, JSON.stringify({ name: "t", base: base(), phases: PHASES }));
    const CLI = nodePath.join(import.meta.dirname, "..", "src", "cli", "main.ts");
    const env = { ...process.env, COLUMNFORMER_THREADS: "1" };
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, ["--import", "tsx", CLI, "progressive", file, "--out", out, "--quiet"], { env });
    assert.match(stdout, /\| phase \| kind \| columns N \| K \| parameters \| steps \| held-out mim_loss \|/);
    assert.match(stdout, /\| 4 \| train \| 24 \| 2 \| [\d,]+ \| 2 \| \d+\.\d{4} \|/);
    assert.deepEqual(["0-train", "2-train", "4-train"].map((d) => read(dir(`${d}/log.jsonl`))), logs);
    // another plan into the same directory is refused
    await assert.rejects(
      runProgressive(planProgressive({ name: "t", base: base(), phases: [{ train: { steps: 3 } }] }), { out, verbose: false }),
      /holds a different progressive plan/,
    );
  });

  test("a prune phase that fine-tunes: the next train phase starts from its last checkpoint", async () => {
    const out = nodePath.join(await tmpDir("cf-progressive-ft-"), "p");
    const plan = planProgressive({ name: "ft", base: base(), phases: [{ train: { steps: 2 } }, { prune: { k: 4, steps: 1, images: 8 } }, { train: { steps: 1 } }] });
    const result = await runProgressive(plan, { out, verbose: false });
    assert.equal(result.finished, true);
    assert.deepEqual(result.phases.map((p) => [p.kind, p.k, p.steps]), [["train", null, 2], ["prune", 4, 1], ["train", 4, 1]]);
    assert.ok(existsSync(nodePath.join(out, "1-prune/summary.json")));
    assert.ok(readFileSync(nodePath.join(out, "2-train/init.safetensors")).equals(readFileSync(nodePath.join(out, "1-prune/checkpoints/last.safetensors"))));
    const again = await runProgressive(plan, { out, verbose: false });
    assert.deepEqual(again.phases.map((p) => p.status), ["skipped", "skipped", "skipped"]);
  });
});
