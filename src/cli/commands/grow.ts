/** `columnformer grow`: refine the grid of a trained model's middle areas, copying every column into its f x f children, and train on. */
import type { Command } from "commander";
import { growRun, growTable } from "../../workflows/grow.ts";
import { parseInteger } from "../options.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerGrow(program: Command): void {
  program
    .command("grow")
    .description(
      "grow a trained dense model's sheet: refine the grid of areas (default: all but the input and output area) by --factor, " +
        "every new column a copy of the old column it refines (outputs unchanged), write a new run directory and train it",
    )
    .argument("<checkpoint>", "checkpoint (.safetensors) or run directory (its checkpoints/last)")
    .requiredOption("--factor <f>", "integer refinement factor >= 2: a w x w area becomes (f w) x (f w)", parseInteger)
    .option("--areas <names>", "areas to grow, comma-separated (default: every area but the input and output area)")
    .requiredOption("--out <dir>", "new run directory (config.json, init.safetensors = the grown parameters, grow.json)")
    .option("--steps <n>", "training steps after growing (0: only grow and evaluate; default: the original run's steps / 4)", parseInteger)
    .option("--set <key=value>", "override a training field of the new run, e.g. --set optim.lr=1e-4 (repeatable; not sheet/vision)", collect, [])
    .option("--quiet", "no progress output")
    .action(async (source: string, opts: { factor: number; areas?: string; out: string; steps?: number; set: string[]; quiet?: boolean }) => {
      const areas = opts.areas?.split(",").map((s) => s.trim()).filter((s) => s !== "");
      const result = await growRun(source, opts.out, {
        factor: opts.factor,
        areas: areas && areas.length > 0 ? areas : null,
        steps: opts.steps,
        overrides: opts.set,
        verbose: !opts.quiet,
      });
      console.log(growTable(result));
      console.log(`\nwrote ${result.run_dir} (grow.json; resume with columnformer train --resume ${result.run_dir})`);
    });
}
