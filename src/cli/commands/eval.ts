/** `columnformer eval`: held-out loss / accuracy of a trained checkpoint. */
import type { Command } from "commander";
import { openDataset } from "../../data/index.ts";
import { initEngine } from "../../engine/engine.ts";
import { tree } from "../../engine/jax.ts";
import { evaluate } from "../../train/evaluate.ts";
import { loadTrainedModel } from "../../train/trained-model.ts";
import { parseInteger } from "../options.ts";

export function registerEval(program: Command): void {
  program
    .command("eval")
    .description("evaluate a checkpoint written by train (MIM loss or top-1 accuracy, and wiring cost) on a split")
    .argument("<checkpoint>", "checkpoint (.safetensors) from a run's checkpoints/ folder")
    .option("--split <split>", "train or test", "test")
    .option("--images <n>", "number of images (the first ones of the split)", parseInteger, 10000)
    .option("--data <json>", 'data set as JSON, e.g. \'{"kind":"fashion-mnist"}\' (default: the one it was trained on)')
    .action(async (path: string, opts: { split: string; images: number; data?: string }) => {
      if (opts.split !== "train" && opts.split !== "test") throw new Error(`--split must be train or test, got "${opts.split}"`);
      if (opts.images < 1) throw new Error(`--images must be at least 1, got ${opts.images}`);
      await initEngine();
      const { checkpoint: ckpt, config, session } = await loadTrainedModel(path, opts.data);
      const ds = await openDataset(config.data, opts.split);
      const result = await evaluate(session, ckpt.params, ds, opts.images);
      tree.dispose(ckpt.params);
      const metric = result.mim_loss ?? result.accuracy;
      if (metric === undefined || metric === null || !Number.isFinite(metric)) {
        throw new Error(`${path}: its ${result.mim_loss !== undefined ? "MIM loss" : "accuracy"} on ${opts.split} is not finite (${metric}); the model diverged, use an earlier checkpoint of its run`);
      }
      console.log(JSON.stringify({ checkpoint: path, step: ckpt.step, split: opts.split, ...result }, null, 2));
    });
}
