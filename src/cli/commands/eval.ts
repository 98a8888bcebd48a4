/** `columnformer eval`: held-out loss / accuracy of a trained checkpoint. */
import type { Command } from "commander";
import { loadVisionCheckpoint } from "../../checkpoint/vision-checkpoint.ts";
import { openDataset, parseDataSpec } from "../../data/index.ts";
import { initEngine } from "../../engine/engine.ts";
import { tree } from "../../engine/jax.ts";
import { parseTrainConfig } from "../../train/config.ts";
import { evaluate } from "../../train/evaluate.ts";
import { createSession } from "../../train/session.ts";
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
      await initEngine();
      const ckpt = await loadVisionCheckpoint(path);
      if (!ckpt.metadata.train_config) throw new Error(`${path} has no train_config metadata; was it written by columnformer train?`);
      const config = parseTrainConfig(JSON.parse(ckpt.metadata.train_config));
      if (opts.data) config.data = parseDataSpec(JSON.parse(opts.data));
      const session = createSession(config);
      const ds = await openDataset(config.data, opts.split);
      const result = await evaluate(session, ckpt.params, ds, opts.images);
      tree.dispose(ckpt.params);
      console.log(JSON.stringify({ checkpoint: path, step: ckpt.step, split: opts.split, ...result }, null, 2));
    });
}
