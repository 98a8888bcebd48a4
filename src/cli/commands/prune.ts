/** `columnformer prune`: keep each column's K most-attended sources, fine-tune the sparse sheet, and chart the curve. */
import type { Command } from "commander";
import { parseKList, pruneCurve, pruneTable } from "../../workflows/prune.ts";
import { parseInteger } from "../options.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerPrune(program: Command): void {
  program
    .command("prune")
    .description(
      "prune a trained model to its K most-attended sources per column (mean held-out attention over images and steps), " +
        "fine-tune the sparse sheet, evaluate; several K give a curve (prune.json, prune.csv, prune-curve.svg/.png)",
    )
    .argument("<checkpoint>", "checkpoint (.safetensors) or run directory (its checkpoints/last)")
    .requiredOption("--k <list>", "sources kept per column, one K or several: 2,4,8,16")
    .requiredOption("--out <dir>", "new run directory (one K) or directory of run directories k-<K>/ (several)")
    .option("--steps <n>", "fine-tuning steps per K (0: only prune and evaluate; default: the original run's steps / 4)", parseInteger)
    .option("--images <n>", "held-out images for the mean attention (the criterion)", parseInteger, 500)
    .option("--split <split>", "split the criterion images come from: test or train", "test")
    .option("--set <key=value>", "override a training field of the fine-tuning runs, e.g. --set optim.lr=1e-4 (repeatable; not sheet/vision)", collect, [])
    .option("--quiet", "no progress output")
    .action(async (source: string, opts: { k: string; out: string; steps?: number; images: number; split: string; set: string[]; quiet?: boolean }) => {
      if (opts.split !== "train" && opts.split !== "test") throw new Error(`--split must be train or test, got "${opts.split}"`);
      if (opts.images < 1) throw new Error(`--images must be >= 1, got ${opts.images}`);
      const result = await pruneCurve(source, opts.out, {
        ks: parseKList(opts.k),
        steps: opts.steps,
        images: opts.images,
        split: opts.split,
        overrides: opts.set,
        verbose: !opts.quiet,
      });
      console.log(pruneTable(result));
      console.log(`\nwrote ${opts.out}/prune.json, prune.csv, prune-curve.svg/.png`);
    });
}
