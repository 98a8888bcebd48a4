/** `columnformer probe`: linear probe (logistic regression) on frozen features, vs raw pixels. */
import type { Command } from "commander";
import { linearProbe } from "../../analysis/linear-probe.ts";
import { openDataset } from "../../data/index.ts";
import { initEngine } from "../../engine/engine.ts";
import { tree } from "../../engine/jax.ts";
import { initVision } from "../../model/vision.ts";
import { extractFeatures } from "../../train/evaluate.ts";
import { loadTrainedModel } from "../../train/trained-model.ts";
import { parseInteger } from "../options.ts";

export function registerProbe(program: Command): void {
  program
    .command("probe")
    .description("linear probe on the frozen output-area states of a trained model (the standard test of MIM), on raw pixels and on the same model at its random initialisation")
    .argument("<checkpoint>", "checkpoint (.safetensors) from a run's checkpoints/ folder")
    .option("--train-images <n>", "training images for the probe", parseInteger, 10000)
    .option("--test-images <n>", "test images", parseInteger, 10000)
    .option("--pooling <kind>", "flat (all output columns' states) or avg (mean over output columns)", "flat")
    .option("--epochs <n>", "probe epochs", parseInteger, 30)
    .option("--data <json>", "labelled data set as JSON (default: the one it was trained on)")
    .option("--no-pixels", "skip the raw-pixel baseline")
    .option("--no-random-init", "skip the baseline of the same model at its random initialisation (the run's seed)")
    .action(async (path: string, opts: { trainImages: number; testImages: number; pooling: string; epochs: number; data?: string; pixels: boolean; randomInit: boolean }) => {
      if (opts.pooling !== "flat" && opts.pooling !== "avg") throw new Error(`--pooling must be flat or avg, got "${opts.pooling}"`);
      await initEngine();
      const { checkpoint: ckpt, config, session } = await loadTrainedModel(path, opts.data);
      const [trainSet, testSet] = await Promise.all([openDataset(config.data, "train"), openDataset(config.data, "test")]);
      const classes = trainSet.numClasses;
      if (!classes) throw new Error(`${trainSet.name} has no labels: a probe needs a labelled data set (pass --data)`);
      const log = (s: string) => process.stderr.write(`${s}\n`);
      log(`extracting ${opts.pooling} features of ${opts.trainImages} train and ${opts.testImages} test images...`);
      const tr = await extractFeatures(session, ckpt.params, trainSet, opts.trainImages, opts.pooling);
      const te = await extractFeatures(session, ckpt.params, testSet, opts.testImages, opts.pooling);
      const features = await linearProbe(tr, te, tr.dim, classes, { epochs: opts.epochs, seed: config.seed });
      const result: Record<string, unknown> = { checkpoint: path, pooling: opts.pooling, feature_dim: tr.dim, features };
      if (opts.pixels) {
        log("probing raw pixels...");
        const pxTrain = await extractFeatures(session, ckpt.params, trainSet, opts.trainImages, "pixels");
        const pxTest = await extractFeatures(session, ckpt.params, testSet, opts.testImages, "pixels");
        result.pixels = await linearProbe(pxTrain, pxTest, pxTrain.dim, classes, {
          epochs: opts.epochs,
          seed: config.seed,
        });
      }
      if (opts.randomInit) {
        log("probing the randomly initialised model...");
        const fresh = initVision(session.sheet, session.vision, session.geometry, config.seed, session.connectivity);
        const rTrain = await extractFeatures(session, fresh, trainSet, opts.trainImages, opts.pooling);
        const rTest = await extractFeatures(session, fresh, testSet, opts.testImages, opts.pooling);
        tree.dispose(fresh);
        result.random_init = await linearProbe(rTrain, rTest, rTrain.dim, classes, { epochs: opts.epochs, seed: config.seed });
      }
      tree.dispose(ckpt.params);
      console.log(JSON.stringify(result, null, 2));
    });
}
