/** `columnformer init`: a randomly initialised sheet checkpoint. */
import type { Command } from "commander";
import { saveSheetCheckpoint } from "../../checkpoint/checkpoint.ts";
import { initEngine } from "../../engine/engine.ts";
import { resolveSheetConfig } from "../../model/config.ts";
import { initSheet } from "../../model/sheet.ts";
import { resolveConnectivity } from "../../model/sheet-connectivity.ts";
import { tree } from "../../engine/jax.ts";
import { readConfigFile } from "../../io/config-file.ts";
import { parseInteger } from "../options.ts";

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("create a randomly initialised sheet checkpoint (same seed -> byte-identical file)")
    .requiredOption("--config <file>", "sheet config, JSON or YAML (geometry, dim, qk_dim, mlp_dim, depth, ...)")
    .option("--seed <n>", "random seed", parseInteger, 0)
    .requiredOption("--out <file>", "output checkpoint (.safetensors)")
    .action(async (opts: { config: string; seed: number; out: string }) => {
      const { config, geometry } = resolveSheetConfig(await readConfigFile(opts.config));
      await initEngine();
      const connectivity = resolveConnectivity(config, geometry); // sparse sheets: built once, saved as sheet.connectivity
      const params = initSheet(config, geometry, opts.seed, connectivity);
      await saveSheetCheckpoint(opts.out, config, geometry, params, { connectivity });
      tree.dispose(params);
      console.log(`wrote ${opts.out} (${config.num_columns} columns, seed ${opts.seed})`);
    });
}
