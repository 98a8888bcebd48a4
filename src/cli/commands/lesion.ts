/** `columnformer lesion`: silence columns and measure the held-out task against equal-size random lesions. */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { collectActivity } from "../../analysis/collect.ts";
import { compareLesion, keepMask, type LesionComparison, type LesionKind, lesionEvaluator } from "../../analysis/lesion.ts";
import { responsesByMode } from "../../analysis/population.ts";
import { welchSelectivity } from "../../analysis/selectivity.ts";
import { openDataset } from "../../data/index.ts";
import { initEngine } from "../../engine/engine.ts";
import { tree } from "../../engine/jax.ts";
import { areaByName } from "../../geometry/index.ts";
import { openRunDir, preferredCheckpoint, writeJsonAtomic } from "../../train/run-dir.ts";
import { loadTrainedModel } from "../../train/trained-model.ts";
import { lineChart } from "../../viz/charts.ts";
import { writeFigure } from "../../viz/render.ts";
import { parseInteger } from "../options.ts";

const KINDS: LesionKind[] = ["disc", "random", "selective"];

function parseFractions(text: string): number[] {
  const out = text.split(",").map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((f) => !(f >= 0 && f <= 1))) throw new Error(`--fraction takes fractions in [0, 1], comma-separated (e.g. 0.1,0.2,0.5), got ${text}`);
  return out;
}

export function registerLesion(program: Command): void {
  program
    .command("lesion")
    .description("silence columns (state held at zero at every step) and report the held-out accuracy drop per class (or MIM loss rise) against equal-size random lesions; several fractions give a lesion curve")
    .argument("<run-or-checkpoint>", "a run directory (uses checkpoints/best, else last) or a checkpoint file")
    .requiredOption("--kind <kind>", `disc, random or selective`)
    .requiredOption("--fraction <f>", "fraction of the area's columns to silence; comma-separated for a curve (0.1,0.2,0.5)")
    .option("--class <c>", "target class: selective lesions take its most selective columns, disc lesions centre on its most selective column", parseInteger)
    .option("--area <name>", "area to lesion (default: the output area)")
    .option("--images <n>", "held-out images measured (the first ones of the test split)", parseInteger, 1000)
    .option("--select-images <n>", "training-split images that define selectivity (Welch t of the class vs the rest, column mean response)", parseInteger, 500)
    .option("--controls <n>", "random lesions of the same size per fraction", parseInteger, 3)
    .option("--data <json>", "data set as JSON (default: the one it was trained on)")
    .option("--out <dir>", "output directory (default: RUN/lesion-KIND)")
    .option("--seed <n>", "seed of the random lesions and the disc centre", parseInteger, 0)
    .action(async (target: string, opts: { kind: string; fraction: string; class?: number; area?: string; images: number; selectImages: number; controls: number; data?: string; out?: string; seed: number }) => {
      if (!KINDS.includes(opts.kind as LesionKind)) throw new Error(`--kind must be disc, random or selective, got ${opts.kind}`);
      const kind = opts.kind as LesionKind;
      const fractions = parseFractions(opts.fraction);
      if (kind === "selective" && opts.class === undefined) throw new Error("--kind selective needs --class C");
      if (opts.controls < 0) throw new Error(`--controls must be >= 0, got ${opts.controls}`);
      if (!existsSync(target)) throw new Error(`${target} does not exist (give a run directory or a .safetensors checkpoint)`);
      let checkpoint = target;
      let root: string | null = null;
      if (statSync(target).isDirectory()) {
        const run = (await openRunDir(target)).dir;
        root = run.root;
        const preferred = preferredCheckpoint(run);
        if (preferred === null) throw new Error(`${target} has no checkpoints yet (checkpoints/best or last)`);
        checkpoint = preferred;
      }
      const outDir = opts.out ?? path.join(root ?? path.dirname(checkpoint), `lesion-${kind}`);
      await initEngine();
      const { checkpoint: ckpt, config, session } = await loadTrainedModel(checkpoint, opts.data);
      const area = opts.area ? areaByName(session.geometry, opts.area) : session.layout.outputArea;
      const classes = config.vision.task === "classify" ? config.vision.num_classes : null;
      if (opts.class !== undefined && (classes === null || opts.class < 0 || opts.class >= classes)) {
        throw new Error(classes === null ? "--class needs a classification model (this one is MIM)" : `--class must be in 0..${classes - 1}, got ${opts.class}`);
      }
      const ds = await openDataset(config.data, "test");
      const limit = Math.min(opts.images, ds.length);
      let selectivity: Float64Array | undefined;
      if (opts.class !== undefined) {
        const train = await openDataset(config.data, "train");
        const act = await collectActivity(session, ckpt.params, train, Math.min(opts.selectImages, train.length));
        if (!act.labels) throw new Error("selectivity needs a labelled data set");
        const n = session.geometry.numColumns;
        const r = responsesByMode(act.states, act.images, n, session.sheet.dim, "mean");
        selectivity = welchSelectivity(r, act.labels, act.images, n, classes!).t.slice(opts.class * n, (opts.class + 1) * n);
      }
      process.stderr.write(`lesioning ${area.name} of ${checkpoint} (${kind}, fractions ${fractions.join(", ")}) on ${limit} ${ds.name} test images -> ${outDir}\n`);
      const evaluator = lesionEvaluator(session);
      const baseline = await evaluator.run(ckpt.params, ds, limit, keepMask(session.geometry.numColumns, []));
      const results: LesionComparison[] = [];
      for (const fraction of fractions) {
        results.push(await compareLesion(evaluator, session, ckpt.params, ds, limit, { kind, fraction, area, class: opts.class, selectivity, seed: opts.seed }, opts.controls, baseline));
        const r = results[results.length - 1];
        console.log(
          `fraction ${fraction}: ${r.columns.length} columns; ${classes ? "accuracy drop" : "MIM loss rise"} ${r.effect.toFixed(4)} ` +
            `(random ${r.random_effect.mean.toFixed(4)} +- ${Number.isFinite(r.random_effect.std) ? r.random_effect.std.toFixed(4) : "n/a"})` +
            (r.specificity !== null ? `; class ${opts.class} drop ${r.per_class_drop![opts.class!].toFixed(4)}, specificity ${r.specificity.toFixed(4)}` : ""),
        );
      }
      evaluator.dispose();
      tree.dispose(ckpt.params);
      const metric = classes ? (opts.class !== undefined ? `class ${opts.class} accuracy` : "accuracy") : "MIM loss";
      const value = (e: LesionComparison["lesioned"]) => (classes ? (opts.class !== undefined ? e.per_class_accuracy![opts.class] : e.accuracy!) : e.mim_loss!);
      const xs = [0, ...fractions];
      const series = [
        { name: `${kind} lesion`, x: xs, y: [value(baseline), ...results.map((r) => value(r.lesioned))] },
        ...(opts.controls > 0 ? [{ name: `random lesion (mean of ${opts.controls})`, x: xs, y: [value(baseline), ...results.map((r) => r.random.reduce((a, e) => a + value(e), 0) / r.random.length)] }] : []),
      ];
      const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
      const svg = lineChart({
        title: `Lesion curve: ${kind} lesions of ${area.name}`,
        xLabel: `fraction of ${area.name} silenced`,
        yLabel: metric,
        series: series.map((s) => ({ name: s.name, x: order.map((i) => s.x[i]), y: order.map((i) => s.y[i]) })),
      });
      const fig = await writeFigure(path.join(outDir, "lesion-curve"), svg);
      await writeJsonAtomic(path.join(outDir, "lesion.json"), {
        checkpoint,
        step: ckpt.step,
        definition:
          "silenced columns' states are held at 0 before and after every recurrent step; effect = accuracy drop (baseline - lesioned) or MIM-loss rise (lesioned - baseline); random = equal-size uniformly drawn lesions of the same area; specificity = the class's accuracy drop minus the mean drop of the other classes; selectivity (disc centre, selective lesions) = Welch t of the class vs the rest of the column-mean response on training images",
        kind,
        area: area.name,
        class: opts.class ?? null,
        images: limit,
        baseline: { ...baseline, predictions: undefined },
        lesions: results,
      });
      console.log(`wrote ${path.join(outDir, "lesion.json")} and ${fig.png}`);
    });
}
