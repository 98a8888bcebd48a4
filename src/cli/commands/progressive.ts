/** `columnformer progressive`: a schedule of phases (train, prune to K, grow the sheet), each an ordinary run directory. */
import type { Command } from "commander";
import { loadProgressive, planTable, progressiveTable, runProgressive } from "../../workflows/progressive.ts";

export function registerProgressive(program: Command): void {
  program
    .command("progressive")
    .description(
      "run a progressive-training file: phases train / prune (to K sources per column) / grow (refine middle areas), " +
        "each in <out>/<i>-<kind> and starting from the previous phase's parameters; rerun to resume (finished phases are skipped)",
    )
    .argument("<file>", "progressive file (YAML or JSON): name, preset?, base?, set?, phases")
    .option("--out <dir>", "output directory (default runs/progressive/<name>)")
    .option("--dry-run", "validate the file and print the plan; train nothing")
    .option("--quiet", "no progress output")
    .action(async (file: string, opts: { out?: string; dryRun?: boolean; quiet?: boolean }) => {
      const plan = await loadProgressive(file);
      if (opts.dryRun) {
        console.log(planTable(plan));
        return;
      }
      const result = await runProgressive(plan, { out: opts.out, verbose: !opts.quiet });
      console.log(progressiveTable(result));
      console.log(`\nwrote ${result.out}/progressive.json`);
    });
}
