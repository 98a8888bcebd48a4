/** `columnformer forward`: run a sheet checkpoint on given input states. */
import type { Command } from "commander";
import { loadSheetCheckpoint } from "../../checkpoint/checkpoint.ts";
import { readSafetensors, writeSafetensors } from "../../checkpoint/safetensors.ts";
import { initEngine } from "../../engine/engine.ts";
import { numpy as np } from "../../engine/jax.ts";
import { sheetApply } from "../../model/sheet.ts";

export function registerForward(program: Command): void {
  program
    .command("forward")
    .description("run the sheet on input states: reads tensor x [batch, N, D], writes x (final states) and attn [batch, depth, N, N]")
    .requiredOption("--checkpoint <file>", "sheet checkpoint (.safetensors)")
    .requiredOption("--input <file>", "safetensors file with tensor x [batch, N, D] float32")
    .requiredOption("--output <file>", "output safetensors file")
    .action(async (opts: { checkpoint: string; input: string; output: string }) => {
      await initEngine();
      const { config, params } = await loadSheetCheckpoint(opts.checkpoint);
      const input = await readSafetensors(opts.input);
      const x = input.tensors.x;
      if (!x) throw new Error(`${opts.input}: no tensor named "x" (expected x [batch, ${config.num_columns}, ${config.dim}] float32)`);
      const want = `[batch, ${config.num_columns}, ${config.dim}] F32`;
      if (x.dtype !== "F32" || x.shape.length !== 3 || x.shape[1] !== config.num_columns || x.shape[2] !== config.dim) {
        throw new Error(`${opts.input}: tensor "x" is [${x.shape.join(", ")}] ${x.dtype}, expected ${want}`);
      }
      const data = x.data as Float32Array;
      const bad = data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new Error(`${opts.input}: tensor "x" has a non-finite value (${data[bad]}) at flat index ${bad}`);
      const out = sheetApply(params, np.array(data).reshape(x.shape), config);
      const batch = x.shape[0];
      await writeSafetensors(opts.output, {
        x: { dtype: "F32", shape: [batch, config.num_columns, config.dim], data: (await out.x.data()) as Float32Array },
        attn: {
          dtype: "F32",
          shape: [batch, config.depth, config.num_columns, config.num_columns],
          data: (await out.attn.data()) as Float32Array,
        },
      });
      console.log(`wrote ${opts.output} (x [${batch}, ${config.num_columns}, ${config.dim}], attn [${batch}, ${config.depth}, ${config.num_columns}, ${config.num_columns}])`);
    });
}
