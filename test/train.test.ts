/**
 * End-to-end training on a tiny synthetic IDX data set: run-directory
 * contents, learning (MIM and classification), exact resume, refusal of a
 * different run, gradient accumulation and checkpoint round trips.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import * as nodePath from "node:path";
import { before, describe, test } from "node:test";
import { loadVisionCheckpoint } from "../src/checkpoint/vision-checkpoint.ts";
import { readSafetensors } from "../src/io/safetensors.ts";
import { namedLeaves } from "../src/engine/param-tree.ts";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, tree } from "../src/engine/jax.ts";
import { resolveSheetConfig } from "../src/model/config.ts";
import { parseTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { withLearnedPositions } from "../src/geometry/learned.ts";
import { loadTrainedModel } from "../src/train/trained-model.ts";
import { resume, train } from "../src/train/trainer.ts";
import { scaleTree } from "../src/train/train-state.ts";
import type { StepMetrics } from "../src/train/compiled.ts";
import { ReadingSums } from "../src/train/train-state.ts";
import { assertClose } from "./assertions.ts";
import { easyImage, tmpDir, writeIdxFolder } from "./data-fixtures.ts";
import { distanceMatrix } from "../src/geometry/metric.ts";

const SIZE = 8;

let dataDir = "";

before(async () => {
  await initEngine();
  dataDir = await tmpDir("cf-train-data-");
  const split = (n: number, offset: number) => {
    const labels = Array.from({ length: n }, (_, i) => i % 2);
    return { images: labels.map((l, i) => easyImage(l, offset + i)), labels };
  };
  await writeIdxFolder(dataDir, split(64, 0), split(32, 500), false);
});

function config(task: "mim" | "classify", overrides: Record<string, unknown> = {}): TrainConfig {
  return parseTrainConfig({
    sheet: { geometry: { kind: "stacked", widths: [2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2 },
    vision: { image_size: SIZE, patch_size: 4, channels: 1, task, num_classes: 2 },
    data: { kind: "idx", path: dataDir },
    batch_size: 16,
    steps: 20,
    eval_every: 10,
    eval_images: 32,
    checkpoint_every: 10,
    optim: { lr: 1e-2 },
    ...overrides,
  });
}

function readLogFile(root: string): Record<string, unknown>[] {
  return readFileSync(nodePath.join(root, "log.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function assertSameTensors(a: string, b: string): Promise<void> {
  const fa = await readSafetensors(a);
  const fb = await readSafetensors(b);
  assert.deepEqual(Object.keys(fa.tensors).sort(), Object.keys(fb.tensors).sort());
  for (const [name, ta] of Object.entries(fa.tensors)) {
    const tb = fb.tensors[name];
    assert.equal(ta.dtype, tb.dtype, name);
    assert.deepEqual(ta.shape, tb.shape, name);
    const ba = Buffer.from(ta.data.buffer, ta.data.byteOffset, ta.data.byteLength);
    const bb = Buffer.from(tb.data.buffer, tb.data.byteOffset, tb.data.byteLength);
    assert.ok(ba.equals(bb), `tensor ${name} differs`);
  }
}

describe("training", () => {
  test("MIM: run directory contents, and it learns", async () => {
    const root = await tmpDir("cf-run-mim-");
    const cfg = config("mim");
    const summary = await train(cfg, root, { verbose: false });
    for (const f of [
      "config.json",
      "log.jsonl",
      "summary.json",
      "reconstructions.png",
      "best.json",
      "checkpoints/last.safetensors",
      "checkpoints/last.opt.safetensors",
      "checkpoints/best.safetensors",
      "checkpoints/step-000010.safetensors",
      "checkpoints/step-000010.opt.safetensors",
    ]) {
      assert.ok(existsSync(nodePath.join(root, f)), `missing ${f}`);
    }
    assert.deepEqual(JSON.parse(readFileSync(nodePath.join(root, "config.json"), "utf8")), JSON.parse(JSON.stringify(cfg)));
    const png = readFileSync(nodePath.join(root, "reconstructions.png"));
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

    const log = readLogFile(root);
    assert.equal(log.length, cfg.steps);
    log.forEach((r, i) => {
      assert.equal(r.step, i + 1);
      for (const key of ["loss", "lr", "grad_norm", "images_per_second", "rss_mib"]) {
        assert.equal(typeof r[key], "number", `step ${i + 1}: ${key}`);
        assert.ok(Number.isFinite(r[key] as number), `step ${i + 1}: ${key} = ${r[key]}`);
      }
    });
    assert.equal(typeof log[9].eval_mim_loss, "number");
    assert.equal(typeof log[19].eval_mim_loss, "number");

    const onDisk = JSON.parse(readFileSync(nodePath.join(root, "summary.json"), "utf8"));
    assert.equal(onDisk.steps, cfg.steps);
    assert.equal(onDisk.task, "mim");
    assert.equal(summary.final.images, 32);
    const first = log[0].loss as number;
    const final = summary.final.mim_loss!;
    assert.ok(final < first, `held-out MIM loss ${final} is not below the step-1 loss ${first}`);
    assert.ok(final < 0.9 * first, `held-out MIM loss ${final} barely improved on ${first}`);
    assert.ok(summary.best.mim_loss! <= final + 1e-12);

    // best.safetensors round-trips through loadVisionCheckpoint
    const best = await loadVisionCheckpoint(nodePath.join(root, "checkpoints/best.safetensors"));
    assert.deepEqual(best.vision, cfg.vision);
    assert.deepEqual(best.sheet, resolveSheetConfig(cfg.sheet).config);
    assert.equal(best.step, summary.best.step);
    assert.deepEqual(JSON.parse(best.metadata.train_config), JSON.parse(JSON.stringify(cfg)));
    const file = await readSafetensors(nodePath.join(root, "checkpoints/best.safetensors"));
    const leaves = namedLeaves(best.params);
    // every tensor but the distance buffer `dist` is a parameter
    assert.deepEqual(leaves.map(([n]) => n).sort(), Object.keys(file.tensors).filter((n) => n !== "dist").sort());
    assert.deepEqual(Array.from(file.tensors.dist.data as Float32Array), Array.from(Float32Array.from(distanceMatrix(best.geometry))));
    for (const [name, leaf] of leaves) {
      assert.deepEqual([...leaf.shape], file.tensors[name].shape, name);
      assert.deepEqual(Array.from(await leaf.ref.data()), Array.from(file.tensors[name].data as Float32Array), name);
    }
    tree.dispose(best.params);
  });

  test("classification reaches >= 0.9 accuracy on an easy 2-class set", async () => {
    for (const seed of [0, 1, 2]) {
      const root = await tmpDir("cf-run-cls-");
      const cfg = config("classify", { steps: 30, eval_every: 30, checkpoint_every: 30, seed });
      const summary = await train(cfg, root, { verbose: false });
      assert.ok(summary.final.accuracy! >= 0.9, `seed ${seed}: accuracy ${summary.final.accuracy}`);
      assert.ok(existsSync(nodePath.join(root, "checkpoints/best.safetensors")));
      assert.ok(!existsSync(nodePath.join(root, "reconstructions.png")));
      const log = readLogFile(root);
      assert.equal(log.length, 30);
      assert.equal(typeof log[0].train_accuracy, "number");
      assert.equal(log[29].eval_accuracy, summary.final.accuracy);
      // classification checkpoints load too (head instead of decoder)
      const best = await loadVisionCheckpoint(nodePath.join(root, "checkpoints/best.safetensors"));
      assert.ok(best.params.head && !best.params.decoder);
      assert.deepEqual(best.vision, cfg.vision);
      tree.dispose(best.params);
    }
  });

  test("resume after an interruption gives the same final weights as an uninterrupted run", async () => {
    const cfg = config("mim", { steps: 6, checkpoint_every: 2, eval_every: 100 });
    const rootA = await tmpDir("cf-run-a-");
    const rootB = await tmpDir("cf-run-b-");
    await train(cfg, rootA, { verbose: false });
    const partial = await train(cfg, rootB, { verbose: false, stopAfter: 3 });
    assert.equal(partial.steps, 3);
    assert.equal(readLogFile(rootB).length, 3);
    assert.ok(!existsSync(nodePath.join(rootB, "summary.json")));
    await resume(rootB, { verbose: false });
    await assertSameTensors(nodePath.join(rootA, "checkpoints/last.safetensors"), nodePath.join(rootB, "checkpoints/last.safetensors"));
    await assertSameTensors(nodePath.join(rootA, "checkpoints/last.opt.safetensors"), nodePath.join(rootB, "checkpoints/last.opt.safetensors"));
    const logA = readLogFile(rootA);
    const logB = readLogFile(rootB);
    assert.deepEqual(logB.map((r) => r.step), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(
      logB.map((r) => r.loss),
      logA.map((r) => r.loss),
    );
    // a new run into a directory with checkpoints of the same config is refused (resume instead)
    await assert.rejects(train(cfg, rootB, { verbose: false }), /already has checkpoints/);
  });

  test("starting a new run in a directory holding a different run is refused", async () => {
    const root = await tmpDir("cf-run-diff-");
    await train(config("mim", { steps: 1, eval_every: 1, checkpoint_every: 1 }), root, { verbose: false });
    await assert.rejects(
      train(config("mim", { steps: 2, eval_every: 1, checkpoint_every: 1 }), root, { verbose: false }),
      /already holds a different run/,
    );
  });

  for (const backend of ["jax", "native"] as const) {
    test(`log_every (${backend}): one record per interval, the mean of its steps' records; the weights are log_every 1's`, async () => {
      // records at 3 and 6 (log_every), 5 (eval_every), 4 (checkpoint_every) and 7 (the end)
      const cfg = (log_every: number) => config("classify", { steps: 7, log_every, eval_every: 5, checkpoint_every: 4 });
      const rootEvery = await tmpDir("cf-run-log1-");
      const rootInterval = await tmpDir("cf-run-log3-");
      await train(cfg(1), rootEvery, { verbose: false, backend });
      await train(cfg(3), rootInterval, { verbose: false, backend });
      const every = readLogFile(rootEvery);
      const interval = readLogFile(rootInterval);
      assert.deepEqual(interval.map((r) => r.step), [3, 4, 5, 6, 7]);
      const spans = [[1, 3], [4, 4], [5, 5], [6, 6], [7, 7]];
      for (const [i, [from, to]] of spans.entries()) {
        const steps = every.slice(from - 1, to);
        const mean = (key: string) => steps.reduce((a, r) => a + (r[key] as number), 0) / steps.length;
        for (const key of ["loss", "task_loss", "wiring_cost", "grad_norm", "activation_l1"]) assertClose([interval[i][key] as number], [mean(key)], 1e-5, `${key} at step ${to}`);
        // accuracy over the interval's images (equal batches: the mean of the steps')
        assertClose([interval[i].train_accuracy as number], [mean("train_accuracy")], 1e-6, `train_accuracy at step ${to}`);
        assert.equal(interval[i].lr, every[to - 1].lr);
      }
      assert.equal(interval[2].eval_accuracy, every[4].eval_accuracy);
      await assertSameTensors(nodePath.join(rootEvery, "checkpoints/last.opt.safetensors"), nodePath.join(rootInterval, "checkpoints/last.opt.safetensors"));
    });
  }

  test("gradient accumulation: 2 x 8 gives the first-step loss and gradient norm of one batch of 16", async () => {
    // classification: no random masks, so the two micro-batches are exactly the halves of the batch of 16
    const common = { steps: 1, eval_every: 1, checkpoint_every: 1 };
    const rootFull = await tmpDir("cf-run-full-");
    const rootAccum = await tmpDir("cf-run-accum-");
    await train(config("classify", { ...common, batch_size: 16 }), rootFull, { verbose: false });
    await train(config("classify", { ...common, batch_size: 8, accum_steps: 2 }), rootAccum, { verbose: false });
    const [full] = readLogFile(rootFull);
    const [accum] = readLogFile(rootAccum);
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-5 * (1 + Math.abs(b));
    assert.ok(close(accum.loss as number, full.loss as number), `loss ${accum.loss} vs ${full.loss}`);
    assert.ok(close(accum.grad_norm as number, full.grad_norm as number), `grad_norm ${accum.grad_norm} vs ${full.grad_norm}`);
    assert.ok(close(accum.train_accuracy as number, full.train_accuracy as number));
  });
});

test("a train state's reading: the micro-batches' mean metrics, correct predictions summed, the steps' mean norm", () => {
  const metrics = (v: number): StepMetrics => ({
    loss: v,
    task: 2 * v,
    wiring: 3 * v,
    consistency: 0,
    repulsion: 0,
    activation_l1: v + 1,
    activation_hoyer: 0.5,
    spatial_correlation: 0,
    topo_blur: 0,
    correct: v,
  });
  const sums = new ReadingSums();
  for (const v of [1, 2, 6]) sums.addMicro(metrics(v));
  sums.addStep(1.5);
  sums.addStep(0.5);
  const reading = sums.take(true);
  assert.deepEqual(reading.metrics, { loss: 3, task: 6, wiring: 9, consistency: 0, repulsion: 0, activation_l1: 4, activation_hoyer: 0.5, spatial_correlation: 0, topo_blur: 0, correct: 9 });
  assert.equal(reading.steps, 2);
  assert.equal(reading.gradNorm, 1);
  assert.throws(() => sums.take(true), /no optimiser step since the last read/); // a read empties the sums
  sums.addMicro(metrics(5));
  sums.addStep(2);
  assert.deepEqual(sums.take(false), { metrics: metrics(5), steps: 1, gradNorm: 2, finite: false });
});

describe("fine-tuning from another task's checkpoint", () => {
  test("a MIM checkpoint starts a classification run with its encoder and a new head (final norm included)", async () => {
    const mimRoot = await tmpDir("cf-ft-mim-");
    await train(config("mim", { steps: 2, vision: { image_size: SIZE, patch_size: 4, channels: 1, task: "mim", num_classes: 2, final_norm: true } }), mimRoot, { verbose: false });
    const source = nodePath.join(mimRoot, "checkpoints/last.safetensors");
    const root = await tmpDir("cf-ft-cls-");
    const cls = config("classify", {
      steps: 2,
      seed: 7,
      optim: { lr: 1e-9, weight_decay: 0 }, // after one step the parameters are still the starting ones
      vision: { image_size: SIZE, patch_size: 4, channels: 1, task: "classify", num_classes: 2, final_norm: true },
    });
    await train(cls, root, { verbose: false, stopAfter: 1, initFrom: source });
    const mim = await loadVisionCheckpoint(source);
    const tuned = await loadVisionCheckpoint(nodePath.join(root, "checkpoints/last.safetensors"));
    const a = new Map(namedLeaves(mim.params, ""));
    const b = new Map(namedLeaves(tuned.params, ""));
    assert.ok(!b.has("decoder.weight") && b.has("head.weight") && b.has("head.norm.weight"), [...b.keys()].join(", "));
    for (const [name, leaf] of b) {
      if (name.startsWith("head.")) continue;
      assertClose((await leaf.ref.data()) as Float32Array, (await a.get(name)!.ref.data()) as Float32Array, 1e-6, name);
    }
    // the new head is the fresh one of the run's seed; its final norm starts at weight 1, bias 0
    const weight = (await b.get("head.norm.weight")!.ref.data()) as Float32Array;
    assert.ok(weight.every((v) => Math.abs(v - 1) < 1e-6));
    tree.dispose([mim.params, tuned.params]);
    // an encoder of another shape is refused, naming the reason
    const other = config("classify", { sheet: { geometry: { kind: "stacked", widths: [2, 2] }, dim: 4, qk_dim: 4, mlp_dim: 8, depth: 2 } });
    await assert.rejects(train(other, await tmpDir("cf-ft-bad-"), { verbose: false, initFrom: source }), /differs from the run's config beyond the readout/);
  });
});

describe("research levers in training", () => {
  test("the activation penalty lowers column activity; both runs log it", async () => {
    const run = async (coef: number) => {
      const root = await tmpDir("cf-run-act-");
      await train(config("classify", { steps: 12, eval_every: 12, activation_sparsity: { coef } }), root, { verbose: false });
      return readLogFile(root);
    };
    const [free, penalised] = [await run(0), await run(1)];
    for (const log of [free, penalised]) {
      for (const key of ["activation_l1", "activation_hoyer", "eval_activation_hoyer"]) assert.equal(typeof log[11][key], "number", key);
    }
    assert.ok(
      (penalised[11].activation_l1 as number) < 0.8 * (free[11].activation_l1 as number),
      `mean |x| with the penalty ${penalised[11].activation_l1} vs without ${free[11].activation_l1}`,
    );
  });

  test("feature consistency: logged, and a strong coefficient makes neighbouring columns' weights agree", async () => {
    const root = await tmpDir("cf-run-cons-");
    await train(config("classify", { steps: 12, eval_every: 12, consistency: { coef: 5, neighbours: 1 } }), root, { verbose: false });
    const log = readLogFile(root);
    const first = log[0].consistency as number;
    const last = log[11].consistency as number;
    assert.ok(last < 0.7 * first, `consistency penalty ${first} -> ${last}`);
    assert.equal(log[0].consistency_coef, 5);
  });

  test("learned positions: trained, checkpointed, resumed and loaded back as the analysis geometry", async () => {
    const root = await tmpDir("cf-run-pos-");
    const cfg = config("classify", { steps: 6, eval_every: 6, checkpoint_every: 3, wiring: { lambda: 1 } });
    cfg.sheet = { ...cfg.sheet, learn_positions: true };
    await train(cfg, root, { verbose: false, stopAfter: 3 });
    await resume(root, { verbose: false });
    const ckpt = await loadVisionCheckpoint(nodePath.join(root, "checkpoints/last.safetensors"));
    const { geometry } = resolveSheetConfig(cfg.sheet);
    assert.ok(ckpt.params.positions, "positions saved");
    assert.deepEqual(ckpt.params.positions.shape, [geometry.numColumns, geometry.positionDim]);
    const moved = (await ckpt.params.positions.ref.data()) as Float32Array;
    assert.ok(moved.some((v, i) => Math.abs(v - geometry.positions[i]) > 1e-4), "positions moved");
    const log = readLogFile(root);
    assert.equal(typeof log[5].repulsion, "number");
    const model = await loadTrainedModel(nodePath.join(root, "checkpoints/last.safetensors"));
    const expected = await withLearnedPositions(geometry, ckpt.params.positions.ref);
    assert.deepEqual(Array.from(distanceMatrix(model.session.geometry)), Array.from(distanceMatrix(expected)));
    tree.dispose(ckpt.params);
  });
});

/** Executable (JIT-compiled code) mappings of this process; null where /proc is missing. */
function codeMappings(): number | null {
  if (!existsSync("/proc/self/maps")) return null;
  return readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((l) => l.includes(" rwxp ")).length;
}

describe("compiled code stays bounded over long runs (the optimiser step's scalars are arguments, not constants)", { skip: codeMappings() === null ? "needs Linux /proc/self/maps" : false }, () => {
  // V8 never frees compiled Wasm, so a kernel compiled per step (jax-js bakes an eager op's
  // scalar into its kernel, e.g. a per-step clip scale) grows the mappings until the process
  // hits vm.max_map_count (65,530) and dies: that killed a 10-epoch run at step 17,139.
  const distinctScalars = async (op: (x: np.Array, s: number) => np.Array): Promise<number> => {
    const x = np.ones([64, 10]);
    await op(x.ref, 0.5).data(); // first compile
    const before = codeMappings()!;
    for (let i = 0; i < 100; i++) await op(x.ref, Math.random()).data();
    x.dispose();
    return codeMappings()! - before;
  };

  test("scaleTree (the per-step clip and accumulation scale) compiles once, whatever the scale", async () => {
    const added = await distinctScalars((x, s) => scaleTree({ x }, s).x);
    assert.ok(added < 20, `100 scales added ${added} code mappings: scaleTree compiles per scale`);
  });

  test("the measure sees a per-call compile (positive control: an eager multiply by a new scalar)", async () => {
    const added = await distinctScalars((x, s) => x.mul(s));
    assert.ok(added >= 60, `an eager op with 100 distinct scalars added only ${added} code mappings`);
  });
});
