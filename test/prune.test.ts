/**
 * `columnformer prune` (src/workflows/prune.ts): top-K selection on hand-made attention maps (ties,
 * K = N, a sparse model's candidates), the attention bias gathered onto the kept connections;
 * pruning a tiny trained dense stack with K = N changes nothing (outputs, loss, attention after
 * scattering); fine-tuning starts from the pruned parameters and resumes; the CLI curve
 * (`--k 2,4 --steps 2`) writes prune.json / prune.csv / the figure; errors.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as nodePath from "node:path";
import { promisify } from "node:util";
import { before, describe, test } from "node:test";
import { namedLeaves } from "../src/engine/param-tree.ts";
import { loadVisionCheckpoint } from "../src/checkpoint/vision-checkpoint.ts";
import { openDataset } from "../src/data/index.ts";
import { initEngine } from "../src/engine/engine.ts";
import { tree } from "../src/engine/jax.ts";
import { meanAttentionMaps } from "../src/analysis/collect.ts";
import { parseTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { evaluate, extractFeatures } from "../src/train/evaluate.ts";
import {
  gatherAttentionBias,
  meanIncomingAttention,
  parseKList,
  type PrunedRun,
  pruneCurve,
  topKSources,
  writePrunedRun,
} from "../src/workflows/prune.ts";
import { disposeSession } from "../src/train/session.ts";
import { loadTrainedModel } from "../src/train/trained-model.ts";
import { resume, train } from "../src/train/trainer.ts";
import { assertClose } from "./assertions.ts";
import { easyImage, tmpDir, writeIdxFolder } from "./data-fixtures.ts";

before(async () => {
  await initEngine();
});

describe("pure parts", () => {
  test("topKSources: largest first, ties by lower index, the column itself only if it ranks", () => {
    // N = 3; row 0: ties 0.4 / 0.4 between 1 and 2; row 1: itself lowest; row 2: all equal
    const scores = [0.2, 0.4, 0.4, 0.5, 0.1, 0.4, 1 / 3, 1 / 3, 1 / 3];
    assert.deepEqual(Array.from(topKSources(scores, 3, 1)), [1, 0, 0]);
    assert.deepEqual(Array.from(topKSources(scores, 3, 2)), [1, 2, 0, 2, 0, 1]);
    // K = N keeps every source (by rank)
    assert.deepEqual(Array.from(topKSources(scores, 3, 3)), [1, 2, 0, 0, 2, 1, 0, 1, 2]);
    // a sparse model: only its own sources compete
    const allowed = { indices: Int32Array.from([0, 2, 1, 0, 2, 1]), k: 2 };
    assert.deepEqual(Array.from(topKSources(scores, 3, 1, allowed)), [2, 0, 1]);
    assert.throws(() => topKSources(scores, 3, 3, allowed), /sparse with 2 sources per column/);
    assert.throws(() => topKSources(scores, 3, 4), /k is 4 but the sheet has 3 columns/);
    assert.throws(() => topKSources(scores, 3, 0), /k must be an integer >= 1/);
  });

  test("gatherAttentionBias: from a dense [blocks, N, N] or a sparse [N, K_old] bias", () => {
    const n = 3;
    // two blocks (a stack of depth 2): bias[b, i, j] = 100 b + 10 i + j
    const dense = Array.from({ length: 2 * n * n }, (_, p) => 100 * Math.floor(p / 9) + 10 * Math.floor((p % 9) / 3) + (p % 3));
    const kept = Int32Array.from([2, 0, 1, 2, 0, 1]);
    assert.deepEqual(Array.from(gatherAttentionBias(dense, n, kept, 2)), [2, 0, 11, 12, 20, 21, 102, 100, 111, 112, 120, 121]);
    // sparse: row i's old sources [i, (i + 1) % 3], bias 10 i + t
    const old = { indices: Int32Array.from([0, 1, 1, 2, 2, 0]), k: 2 };
    const sparse = [0, 1, 10, 11, 20, 21];
    assert.deepEqual(Array.from(gatherAttentionBias(sparse, n, Int32Array.from([1, 1, 0]), 1, old)), [1, 10, 21]);
    assert.throws(() => gatherAttentionBias(sparse, n, Int32Array.from([2, 1, 0]), 1, old), /not connected/);
  });

  test("parseKList", () => {
    assert.deepEqual(parseKList("2,4, 8,16"), [2, 4, 8, 16]);
    assert.throws(() => parseKList("2,x"), /integers separated by commas/);
    assert.throws(() => parseKList("0,2"), /k must be an integer >= 1/);
    assert.throws(() => parseKList("2,2"), /twice/);
  });
});

// ---------------------------------------------------------------------------
// End to end on a tiny trained stack
// ---------------------------------------------------------------------------

const SIZE = 8;

describe("end to end", () => {
  let root = "";
  let config: TrainConfig;
  let last = "";

  before(async () => {
    const dataDir = await tmpDir("cf-prune-data-");
    const split = (count: number, offset: number) => {
      const labels = Array.from({ length: count }, (_, i) => i % 2);
      return { images: labels.map((l, i) => easyImage(l, offset + i)), labels };
    };
    await writeIdxFolder(dataDir, split(32, 0), split(16, 500), false);
    root = await tmpDir("cf-prune-run-");
    // a stack (bias [depth, N, N]) with 2 heads and value projections: N = 8
    config = parseTrainConfig({
      sheet: { geometry: { kind: "stacked", widths: [2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2, recurrent: false, heads: 2, value_proj: true },
      vision: { image_size: SIZE, patch_size: 4, channels: 1, task: "mim" },
      data: { kind: "idx", path: dataDir },
      batch_size: 8,
      steps: 8,
      eval_every: 100,
      eval_images: 16,
      checkpoint_every: 100,
      optim: { lr: 1e-2 },
    });
    await train(config, root, { verbose: false });
    last = nodePath.join(root, "checkpoints/last.safetensors");
  });

  test("K = N: the pruned sparse model equals the dense one (loss, features, attention after scattering)", async () => {
    const out = nodePath.join(await tmpDir("cf-prune-full-"), "k8");
    const result = await pruneCurve(root, out, { ks: [8], steps: 0, images: 16, verbose: false });
    assert.equal(result.rows.length, 1);
    assert.equal(result.rows[0].finetuned, null);
    assertClose([result.rows[0].pruned.mim_loss!], [result.dense.eval.mim_loss!], 1e-5, "MIM loss");
    const init = nodePath.join(out, "init.safetensors");
    assert.ok(existsSync(nodePath.join(out, "config.json")) && existsSync(nodePath.join(out, "connectivity.json")));
    const dense = await loadTrainedModel(last);
    const pruned = await loadTrainedModel(init);
    try {
      assert.equal(pruned.checkpoint.step, 0);
      assert.equal(pruned.session.connectivity!.k, 8);
      const file = JSON.parse(readFileSync(nodePath.join(out, "connectivity.json"), "utf8")) as { indices: number[][] };
      assert.deepEqual(file.indices.flat(), Array.from(pruned.session.connectivity!.indices));
      // the bias [depth, N, K] is the dense [depth, N, N] one reordered
      const db = Array.from((await dense.checkpoint.params.sheet.attn.attn_bias!.ref.data()) as Float32Array);
      const pb = Array.from((await pruned.checkpoint.params.sheet.attn.attn_bias!.ref.data()) as Float32Array);
      assert.deepEqual(pruned.checkpoint.params.sheet.attn.attn_bias!.shape, [2, 8, 8]);
      const idx = pruned.session.connectivity!.indices;
      const identity = Array.from({ length: 64 }, (_, p) => p % 8);
      assert.notDeepEqual(Array.from(idx), identity, "the kept sources are listed by rank, so the bias is really reordered");
      for (let b = 0; b < 2; b++) for (let p = 0; p < 64; p++) assert.equal(pb[b * 64 + p], db[b * 64 + Math.floor(p / 8) * 8 + idx[p]]);
      // every other parameter is unchanged
      const others = (m: typeof dense) => namedLeaves(m.checkpoint.params, "").filter(([name]) => !name.endsWith("attn_bias"));
      for (const [[na, a], [nb, b]] of others(dense).map((x, i) => [x, others(pruned)[i]] as const)) {
        assert.equal(na, nb);
        assert.deepEqual(await a.ref.data(), await b.ref.data(), na);
      }
      const ds = await openDataset(config.data, "test");
      const fd = await extractFeatures(dense.session, dense.checkpoint.params, ds, 16, "flat");
      const fp = await extractFeatures(pruned.session, pruned.checkpoint.params, ds, 16, "flat");
      assertClose(fp.features, fd.features, 1e-5, "features");
      const ad = await meanAttentionMaps(dense.session, dense.checkpoint.params, ds, 16);
      const ap = await meanAttentionMaps(pruned.session, pruned.checkpoint.params, ds, 16);
      assertClose(ap, ad, 1e-5, "attention");
      const ed = await evaluate(dense.session, dense.checkpoint.params, ds, 16);
      const ep = await evaluate(pruned.session, pruned.checkpoint.params, ds, 16);
      assertClose([ep.mim_loss!, ep.wiring_cost!], [ed.mim_loss!, ed.wiring_cost!], 1e-5, "eval");
    } finally {
      for (const m of [dense, pruned]) {
        tree.dispose(m.checkpoint.params);
        disposeSession(m.session);
      }
    }
  });

  test("fine-tuning starts from the pruned parameters and resumes; a sparse model prunes further", async () => {
    const dense = await loadTrainedModel(last);
    const dir = await tmpDir("cf-prune-tune-");
    const runRoot = nodePath.join(dir, "k3");
    let run: PrunedRun;
    try {
      const ds = await openDataset(config.data, "test");
      const { mean } = await meanIncomingAttention(dense, ds, 16);
      // a tiny learning rate: after one step the parameters are still the pruned ones
      run = await writePrunedRun(dense, mean, 3, runRoot, { steps: 2, overrides: ["optim.lr=1e-9", "optim.weight_decay=0"] });
      await assert.rejects(writePrunedRun(dense, mean, 3, nodePath.join(dir, "bad"), { steps: 2, overrides: ["sheet.dim=4"] }), /must not change the model/);
    } finally {
      tree.dispose(dense.checkpoint.params);
      disposeSession(dense.session);
    }
    assert.equal(run.config.steps, 2);
    assert.deepEqual(run.config.sheet.connectivity, { kind: "file", path: nodePath.join(runRoot, "connectivity.json"), k: 3 });
    await train(run.config, runRoot, { verbose: false, stopAfter: 1 });
    const init = await loadVisionCheckpoint(run.checkpoint);
    const step1 = await loadVisionCheckpoint(nodePath.join(runRoot, "checkpoints/last.safetensors"));
    assert.equal(step1.step, 1);
    assert.deepEqual(step1.connectivity!.indices, init.connectivity!.indices);
    const a = namedLeaves(init.params, "");
    const b = namedLeaves(step1.params, "");
    for (let i = 0; i < a.length; i++) assertClose((await b[i][1].ref.data()) as Float32Array, (await a[i][1].ref.data()) as Float32Array, 1e-5, a[i][0]);
    tree.dispose([init.params, step1.params]);
    const summary = await resume(runRoot, { verbose: false });
    assert.equal(summary.steps, 2);
    // the library option: train(config, dir, { initFrom }) copies the checkpoint in as init.safetensors
    const other = nodePath.join(dir, "other");
    await train(run.config, other, { verbose: false, stopAfter: 1, initFrom: run.checkpoint });
    assert.ok(existsSync(nodePath.join(other, "init.safetensors")));
    // a checkpoint of another model cannot start the run
    await assert.rejects(train(run.config, nodePath.join(dir, "mismatch"), { verbose: false, initFrom: last }), /differs from the run's config/);

    // prune the sparse K = 3 model to K = 2 (only its own connections can stay); K = 4 is refused
    const lastSparse = nodePath.join(runRoot, "checkpoints/last.safetensors");
    const out = nodePath.join(dir, "k2");
    const result = await pruneCurve(lastSparse, out, { ks: [2], steps: 0, images: 8, verbose: false });
    assert.equal(result.source_k, 3);
    const before3 = await loadVisionCheckpoint(lastSparse);
    const after2 = await loadVisionCheckpoint(nodePath.join(out, "init.safetensors"));
    for (let i = 0; i < 8; i++) {
      const row3 = Array.from(before3.connectivity!.indices.subarray(i * 3, i * 3 + 3));
      for (const j of after2.connectivity!.indices.subarray(i * 2, i * 2 + 2)) assert.ok(row3.includes(j), `column ${i} keeps ${j}, not among ${row3}`);
    }
    tree.dispose([before3.params, after2.params]);
    await assert.rejects(pruneCurve(lastSparse, nodePath.join(dir, "k4"), { ks: [4], steps: 0, verbose: false }), /sparse with 3 sources per column/);
  });

  test("errors: K > N, K < 1, not a checkpoint", async () => {
    const dir = await tmpDir("cf-prune-err-");
    await assert.rejects(pruneCurve(last, nodePath.join(dir, "a"), { ks: [9], steps: 0, verbose: false }), /k is 9 but the sheet has 8 columns/);
    await assert.rejects(pruneCurve(last, nodePath.join(dir, "b"), { ks: [0], steps: 0, verbose: false }), /k must be an integer >= 1/);
    await assert.rejects(pruneCurve(nodePath.join(dir, "missing.safetensors"), nodePath.join(dir, "c"), { ks: [2], verbose: false }), /no such checkpoint or run directory/);
    const junk = nodePath.join(dir, "junk.safetensors");
    writeFileSync(junk, "not a checkpoint");
    await assert.rejects(pruneCurve(junk, nodePath.join(dir, "d"), { ks: [2], verbose: false }), /invalid safetensors file/);
    await assert.rejects(pruneCurve(dir, nodePath.join(dir, "e"), { ks: [2], verbose: false }), /not a run directory/);
    assert.ok(!existsSync(nodePath.join(dir, "a")) && !existsSync(nodePath.join(dir, "b")), "nothing written for a refused K");
  });

  test("columnformer prune --k 2,4 --steps 2: prune.json, prune.csv, the figure, one resumable run per K", async () => {
    const out = nodePath.join(await tmpDir("cf-prune-cli-"), "curve");
    const CLI = nodePath.join(import.meta.dirname, "..", "src", "cli", "main.ts");
    const run = promisify(execFile);
    const env = { ...process.env, COLUMNFORMER_THREADS: "1" };
    const { stdout } = await run(process.execPath, ["--import", "tsx", CLI, "prune", root, "--k", "2,4", "--steps", "2", "--images", "16", "--out", out, "--quiet"], { env });
    assert.match(stdout, /\| K \| sparsity \|/);
    assert.match(stdout, /\| 2 \| 0\.750 \|/);
    const result = JSON.parse(readFileSync(nodePath.join(out, "prune.json"), "utf8")) as {
      metric: string;
      rows: { k: number; steps: number; pruned: { mim_loss: number }; finetuned: { mim_loss: number } }[];
    };
    assert.equal(result.metric, "mim_loss");
    assert.deepEqual(result.rows.map((r) => r.k), [2, 4]);
    for (const r of result.rows) assert.ok(Number.isFinite(r.pruned.mim_loss) && Number.isFinite(r.finetuned.mim_loss));
    const csv = readFileSync(nodePath.join(out, "prune.csv"), "utf8").trim().split("\n");
    assert.equal(csv.length, 4);
    assert.match(csv[0], /^k,sparsity,kept_fraction,mim_loss_pruned,mim_loss_finetuned,/);
    assert.match(csv[2], /^2,0\.75,0\.25,/);
    assert.match(readFileSync(nodePath.join(out, "prune-curve.svg"), "utf8"), /after fine-tuning/);
    assert.ok(existsSync(nodePath.join(out, "prune-curve.png")));
    for (const k of [2, 4]) {
      const ckpt = await loadVisionCheckpoint(nodePath.join(out, `k-${k}`, "checkpoints/last.safetensors"));
      assert.equal(ckpt.step, 2);
      assert.equal(ckpt.connectivity!.k, k);
      tree.dispose(ckpt.params);
    }
    // running it again only measures (the runs are finished)
    await run(process.execPath, ["--import", "tsx", CLI, "prune", root, "--k", "2,4", "--steps", "2", "--images", "16", "--out", out, "--quiet"], { env });
    // another criterion for the same directories is refused (the runs were pruned differently)
    await assert.rejects(
      run(process.execPath, ["--import", "tsx", CLI, "prune", root, "--k", "2,4", "--steps", "2", "--images", "8", "--out", out, "--quiet"], { env }),
      /pruned differently/,
    );
    // errors end as one line
    await assert.rejects(run(process.execPath, ["--import", "tsx", CLI, "prune", root, "--k", "9", "--out", nodePath.join(out, "x")], { env }), /k is 9 but the sheet has 8 columns/);
  });
});
