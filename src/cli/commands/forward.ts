/** `columnformer forward`: run a sheet checkpoint on given input states. */
import type { Command } from "commander";
import { loadSheetCheckpoint } from "../../checkpoint/checkpoint.ts";
import { readSafetensors, writeSafetensors } from "../../io/safetensors.ts";
import { initEngine } from "../../engine/engine.ts";
import { numpy as np } from "../../engine/jax.ts";
import { sheetApply } from "../../model/sheet.ts";
import { connectivityArray } from "../../model/sheet-connectivity.ts";
import { nativeSheetApply } from "../../model/sheet-native.ts";
import { chooseBackend, prepareBackend } from "../../engine/backend.ts";

/** The jax-js result on the host. Consumes it. */
async function readSheetApply(out: { x: np.Array; attn: np.Array }): Promise<{ x: Float32Array; attn: Float32Array }> {
  return { x: (await out.x.data()) as Float32Array, attn: (await out.attn.data()) as Float32Array };
}

export function registerForward(program: Command): void {
  program
    .command("forward")
    .description(
      "run the sheet on input states: reads tensor x [batch, N, D], writes x (final states) and attn [batch, depth, N, N] " +
        "(a sparse sheet: attn [batch, depth, N, K] and its source columns connectivity [N, K] int32)",
    )
    .requiredOption("--checkpoint <file>", "sheet checkpoint (.safetensors)")
    .requiredOption("--input <file>", "safetensors file with tensor x [batch, N, D] float32")
    .requiredOption("--output <file>", "output safetensors file")
    .action(async (opts: { checkpoint: string; input: string; output: string }) => {
      await initEngine();
      const { config, params, connectivity } = await loadSheetCheckpoint(opts.checkpoint);
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
      const batch = x.shape[0];
      await prepareBackend();
      const { engine } = chooseBackend();
      const out = engine
        ? await nativeSheetApply(engine, params, data, batch, config, connectivity)
        : await readSheetApply(sheetApply(params, np.array(data).reshape(x.shape), config, connectivity ? connectivityArray(connectivity) : undefined));
      const n = config.num_columns;
      const width = connectivity ? connectivity.k : n;
      await writeSafetensors(opts.output, {
        x: { dtype: "F32", shape: [batch, n, config.dim], data: out.x },
        attn: {
          dtype: "F32",
          shape: [batch, config.depth, n, width],
          data: out.attn,
        },
        ...(connectivity ? { connectivity: { dtype: "I32", shape: [n, width], data: connectivity.indices } } : {}),
      });
      console.log(
        `wrote ${opts.output} (x [${batch}, ${n}, ${config.dim}], attn [${batch}, ${config.depth}, ${n}, ${width}]` +
          `${connectivity ? `, connectivity [${n}, ${width}]` : ""})`,
      );
    });
}
