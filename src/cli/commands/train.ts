/** `columnformer train`: train a vision Columnformer (MIM or classification). */
import type { Command } from "commander";
import { applyOverrides, mergeConfig, parseOverride } from "../../io/overrides.ts";
import { parseTrainConfig } from "../../train/config.ts";
import { PRESETS, type PresetName } from "../../train/presets.ts";
import { resume, train } from "../../train/trainer.ts";
import { readConfigFile } from "../../io/config-file.ts";
import { parseInteger } from "../options.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description("train on images: a preset, then --config, then --set overrides; writes a run directory")
    .option("--preset <name>", `starting point: ${Object.keys(PRESETS).join(", ")}`, "tiny")
    .option("--config <file>", "training config, JSON or YAML, merged over the preset")
    .option("--set <key=value>", "override one field, e.g. --set sheet.depth=6 --set wiring.lambda=0.01 (repeatable)", collect, [])
    .option("--steps <n>", "shortcut for --set steps=N; with --resume: train the run to N steps", parseInteger)
    .option("--out <dir>", "run directory (default: a new runs/PRESET-TASK-TIMESTAMP, so no earlier run is touched)")
    .option("--resume <dir>", "continue an interrupted run from its last checkpoint")
    .option("--init-from <checkpoint>", "start from this checkpoint's parameters (same sheet and front end; a different task gets a new readout, e.g. fine-tuning a MIM model)")
    .option("--quiet", "no progress output")
    .action(async (opts: { preset: string; config?: string; set: string[]; steps?: number; out?: string; resume?: string; initFrom?: string; quiet?: boolean }, command: Command) => {
      if (opts.resume) {
        // a resumed run keeps its own config (config.json); only its length may change
        const ignored = [
          ...(command.getOptionValueSource("preset") === "cli" ? ["--preset"] : []),
          ...(opts.config ? ["--config"] : []),
          ...(opts.set.length > 0 ? ["--set"] : []),
          ...(opts.out ? ["--out"] : []),
          ...(opts.initFrom ? ["--init-from"] : []),
        ];
        if (ignored.length > 0) {
          throw new Error(
            `--resume continues ${opts.resume} with its own config.json, so ${ignored.join(", ")} cannot be used with it; ` +
              `only --steps N (train to N steps) and --quiet can; to change the config, start a new run with --out`,
          );
        }
        await resume(opts.resume, { verbose: !opts.quiet, steps: opts.steps });
        return;
      }
      if (!(opts.preset in PRESETS)) throw new Error(`unknown preset "${opts.preset}"; choose one of ${Object.keys(PRESETS).join(", ")}`);
      let raw: unknown = PRESETS[opts.preset as PresetName];
      if (opts.config) raw = mergeConfig(raw, await readConfigFile(opts.config));
      raw = applyOverrides(raw, [...opts.set.map(parseOverride), ...(opts.steps !== undefined ? [["steps", opts.steps] as const] : [])]);
      const config = parseTrainConfig(raw);
      const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
      await train(config, opts.out ?? `runs/${opts.preset}-${config.vision.task}-${stamp}`, { verbose: !opts.quiet, initFrom: opts.initFrom });
    });
}
