/** `columnformer compare`: one table and three figures comparing the finished runs of a sweep. */
import path from "node:path";
import type { Command } from "commander";
import { readSweepDir, writeComparison } from "../../workflows/sweep/compare.ts";

export function registerCompare(program: Command): void {
  program
    .command("compare")
    .description(
      "compare the finished runs of a sweep: compare.md (table), compare.csv and figures of the task metric vs wiring cost, parameters and mean attention distance",
    )
    .argument("<sweep-dir>", "a sweep directory (the --out of columnformer sweep: sweep.json and one directory per run)")
    .option("--out <dir>", "where to write compare.md, compare.csv and the figures (default: the sweep directory)")
    .action(async (sweepDir: string, opts: { out?: string }) => {
      const listing = readSweepDir(sweepDir);
      const result = await writeComparison(listing, opts.out ?? listing.dir);
      process.stdout.write(result.table);
      if (result.unfinished.length) console.log(`\nunfinished: ${result.unfinished.join(", ")}`);
      const out = path.resolve(opts.out ?? listing.dir);
      process.stderr.write(
        `wrote ${path.join(out, "compare.md")}, compare.csv and ${result.files.filter((f) => f.endsWith(".svg")).length} figures (.svg, .png) ` +
          `for ${result.rows.length - result.unfinished.length} of ${result.rows.length} runs\n`,
      );
    });
}
