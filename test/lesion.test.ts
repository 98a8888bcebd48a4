/**
 * Lesions on a tiny trained classifier: which columns each kind silences, a zero-fraction
 * lesion changes nothing (and matches `evaluate`), silencing the whole output area gives a
 * constant prediction (chance on balanced classes), and the command writes lesion.json and
 * the curve.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { before, test } from "node:test";
import { compareLesion, keepMask, lesionColumns, lesionEvaluator } from "../src/analysis/lesion.ts";
import { openDataset } from "../src/data/index.ts";
import { initEngine } from "../src/engine/engine.ts";
import { tree } from "../src/engine/jax.ts";
import { buildGeometry } from "../src/geometry/index.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { evaluate } from "../src/train/evaluate.ts";
import { checkpointPath, openRunDir } from "../src/train/run-dir.ts";
import { loadTrainedModel } from "../src/train/trained-model.ts";
import { train } from "../src/train/trainer.ts";
import { halvesIdxFolder, tmpDir } from "./data-fixtures.ts";

const run = promisify(execFile);
const CLI = path.join(import.meta.dirname, "..", "src", "cli", "main.ts");
let runDir = "";

before(async () => {
  await initEngine();
  const dataDir = await halvesIdxFolder("cf-lesion-data-");
  runDir = path.join(await tmpDir("cf-lesion-run-"), "run");
  await train(
    parseTrainConfig({
      sheet: { geometry: { kind: "stacked", widths: [2, 2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2 },
      vision: { image_size: 8, patch_size: 4, channels: 1, task: "classify", num_classes: 2 },
      data: { kind: "idx", path: dataDir },
      batch_size: 16,
      steps: 4,
      eval_every: 4,
      eval_images: 16,
      checkpoint_every: 4,
    }),
    runDir,
    { verbose: false },
  );
});

test("lesion columns: random, disc and selective pick what they say", () => {
  const g = buildGeometry({ kind: "stacked", widths: [3, 3] }); // area1 = columns 9..17, a 3 x 3 grid
  const area = g.areas[1];
  assert.deepEqual(lesionColumns({ kind: "random", fraction: 0, area }, g), []);
  const r = lesionColumns({ kind: "random", fraction: 0.5, area, seed: 1 }, g); // round(4.5) = 5 (round half up)
  assert.equal(r.length, 5);
  assert.ok(r.every((c) => c >= 9 && c < 18) && new Set(r).size === 5);
  assert.deepEqual(lesionColumns({ kind: "random", fraction: 1, area }, g), [9, 10, 11, 12, 13, 14, 15, 16, 17]);
  // selectivity peaks at the centre cell (13); disc of 5 = centre + its 4 edge neighbours
  const t = new Float64Array(18);
  t[13] = 5;
  t[9] = 3;
  t[17] = 2;
  assert.deepEqual(lesionColumns({ kind: "disc", fraction: 5 / 9, area, class: 0, selectivity: t }, g), [10, 12, 13, 14, 16]);
  assert.deepEqual(lesionColumns({ kind: "selective", fraction: 3 / 9, area, class: 0, selectivity: t }, g), [9, 13, 17]);
  assert.throws(() => lesionColumns({ kind: "selective", fraction: 0.2, area }, g), /selectivity/);
  assert.throws(() => lesionColumns({ kind: "random", fraction: 1.5, area }, g), /fraction/);
  assert.deepEqual(Array.from(keepMask(4, [1, 3])), [1, 0, 1, 0]);
});

test("zero-fraction lesion changes nothing; the whole output area gives a constant (chance) prediction", async () => {
  const run0 = (await openRunDir(runDir)).dir;
  const { checkpoint: ckpt, config, session } = await loadTrainedModel(checkpointPath(run0, "last"));
  const ds = await openDataset(config.data, "test");
  const evaluator = lesionEvaluator(session);
  const n = session.geometry.numColumns;
  const base = await evaluator.run(ckpt.params, ds, 40, keepMask(n, []));
  const reference = await evaluate(session, ckpt.params, ds, 40);
  assert.equal(base.accuracy, reference.accuracy, "unlesioned accuracy = evaluate()'s");
  assert.deepEqual(base.class_counts, [20, 20]);

  const area = session.layout.outputArea;
  const zero = await compareLesion(evaluator, session, ckpt.params, ds, 40, { kind: "random", fraction: 0, area }, 2);
  assert.deepEqual(zero.columns, []);
  assert.deepEqual(zero.lesioned, zero.baseline, "nothing silenced, nothing changed");
  assert.equal(zero.effect, 0);
  assert.deepEqual(zero.per_class_drop, [0, 0]);

  const all = await evaluator.run(ckpt.params, ds, 40, keepMask(n, Array.from({ length: area.end - area.start }, (_, i) => area.start + i)));
  assert.equal(new Set(all.predictions).size, 1, "one prediction for every image: the output area carries nothing");
  assert.equal(all.accuracy, 0.5, "chance on two balanced classes");
  const cls = all.predictions![0];
  assert.deepEqual(all.per_class_accuracy, cls === 0 ? [1, 0] : [0, 1]);
  evaluator.dispose();
  tree.dispose(ckpt.params);
});

test("columnformer lesion writes lesion.json and the lesion curve", async () => {
  const out = path.join(await tmpDir("cf-lesion-out-"), "l");
  const { stdout } = await run(process.execPath, ["--import", "tsx", CLI, "lesion", runDir, "--kind", "selective", "--class", "1", "--fraction", "0,0.5,1", "--images", "40", "--select-images", "32", "--controls", "2", "--out", out]);
  assert.match(stdout, /fraction 0\.5: 2 columns/);
  const j = JSON.parse(readFileSync(path.join(out, "lesion.json"), "utf8"));
  assert.equal(j.lesions.length, 3);
  assert.equal(j.lesions[0].effect, 0);
  assert.equal(j.lesions[2].lesioned.accuracy, 0.5);
  assert.equal(j.lesions[1].random.length, 2);
  assert.equal(typeof j.definition, "string");
  assert.ok(existsSync(path.join(out, "lesion-curve.png")) && existsSync(path.join(out, "lesion-curve.svg")));
});
