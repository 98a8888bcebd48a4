/** `columnformer info`: describe a checkpoint. */
import type { Command } from "commander";
import { checkpointConfig, sheetParameterCount } from "../../checkpoint/checkpoint.ts";
import { readSafetensors } from "../../io/safetensors.ts";
import { describeGeometry } from "../../geometry/index.ts";
import { connectivityK } from "../../model/config.ts";

export function registerInfo(program: Command): void {
  program
    .command("info")
    .description("print a checkpoint's config, parameter count and geometry")
    .argument("<checkpoint>", "checkpoint (.safetensors)")
    .option("--json", "print machine-readable JSON")
    .action(async (path: string, opts: { json?: boolean }) => {
      const file = await readSafetensors(path);
      const { config, geometry } = checkpointConfig(file, path);
      const parameters = sheetParameterCount(config);
      const tensors = Object.entries(file.tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
      if (opts.json) {
        console.log(JSON.stringify({ config, parameters, geometry: describeGeometry(geometry), areas: geometry.areas, tensors }, null, 2));
        return;
      }
      console.log(`checkpoint  ${path}`);
      console.log(`geometry    ${describeGeometry(geometry)}`);
      console.log(`areas       ${geometry.areas.map((a) => `${a.name} [${a.start}, ${a.end})${a.grid ? ` ${a.grid[0]}x${a.grid[1]}` : ""}`).join(", ")}`);
      const k = connectivityK(config);
      console.log(
        `sheet       N ${config.num_columns}, dim ${config.dim}, qk_dim ${config.qk_dim}, mlp_dim ${config.mlp_dim}, depth ${config.depth}` +
          (k === null ? "" : `, sparse: ${config.connectivity!.kind} connectivity, K ${k} sources per column`),
      );
      console.log(`parameters  ${parameters.toLocaleString("en-US")} (sheet)`);
      console.log("config");
      for (const [k, v] of Object.entries(config)) console.log(`  ${k.padEnd(16)} ${JSON.stringify(v)}`);
      console.log("tensors");
      for (const t of tensors) console.log(`  ${t.name.padEnd(28)} ${t.dtype} [${t.shape.join(", ")}]`);
    });
}
