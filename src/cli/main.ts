#!/usr/bin/env node
/** The `columnformer` command. Every failure ends as one line on stderr and a non-zero exit code. */
import { Command, CommanderError } from "commander";
import { installSignalCleanup } from "../io/atomic.ts";
import { registerForward } from "./commands/forward.ts";
import { registerInfo } from "./commands/info.ts";
import { registerInit } from "./commands/init.ts";
import { registerTrain } from "./commands/train.ts";
import { registerEval } from "./commands/eval.ts";
import { registerAnalyze } from "./commands/analyze.ts";
import { registerLesion } from "./commands/lesion.ts";
import { registerProbe } from "./commands/probe.ts";
import { registerSweep } from "./commands/sweep.ts";
import { registerCompare } from "./commands/compare.ts";
import { registerPrune } from "./commands/prune.ts";
import { registerGrow } from "./commands/grow.ts";
import { registerProgressive } from "./commands/progressive.ts";
import { registerView } from "./commands/view.ts";
import { parseBackend } from "../engine/backend.ts";

// Ctrl-C, kill and hang-up remove half-written temporary files and release run-directory locks
installSignalCleanup();

const program = new Command()
  .name("columnformer")
  .description("Build, train and study Columnformers: recurrent sheets of untied transformer columns in a geometric space.")
  .showHelpAfterError("(run with --help for usage)")
  .option("--backend <name>", "engine for the column sheet: native (C++ kernels, the default when built), webgpu (WebGPU kernels; without an adapter one line says so and the default runs) or jax (jax-js); also env COLUMNFORMER_BACKEND")
  .exitOverride()
  // one place decides the backend (src/engine/backend.ts); sweep children inherit it through the environment
  .hook("preAction", () => {
    const backend = program.opts<{ backend?: string }>().backend;
    if (backend !== undefined) process.env.COLUMNFORMER_BACKEND = parseBackend(backend, "--backend");
  });

registerInit(program);
registerForward(program);
registerInfo(program);
registerTrain(program);
registerEval(program);
registerProbe(program);
registerAnalyze(program);
registerLesion(program);
registerSweep(program);
registerCompare(program);
registerPrune(program);
registerGrow(program);
registerProgressive(program);
registerView(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (process.env.COLUMNFORMER_DEBUG) console.error(e);
  else console.error(`columnformer: error: ${(e as Error).message}`);
  process.exit(1);
}
