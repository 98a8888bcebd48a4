/** `columnformer analyze`: connectivity and topography of a trained sheet, as analysis.json, figures and report.html. */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { analyzeActivity, DEFAULT_ANALYSIS_OPTIONS } from "../../analysis/analyze.ts";
import { collectActivity } from "../../analysis/collect.ts";
import type { GratingActivity } from "../../analysis/field.ts";
import { parseResponseMode } from "../../analysis/population.ts";
import { gratingSet } from "../../data/gratings.ts";
import { writeReport } from "../../analysis/report.ts";
import type { ColumnWeights } from "../../analysis/weight-similarity.ts";
import { openDataset } from "../../data/index.ts";
import { initEngine } from "../../engine/engine.ts";
import { type numpy as np, tree } from "../../engine/jax.ts";
import { describeGeometry } from "../../geometry/index.ts";
import type { SheetConfig } from "../../model/config.ts";
import type { SheetParams } from "../../model/params.ts";
import { Progress } from "../../train/progress.ts";
import { analysisDirOf, readLog, type RunDir, openRunDir, writeJsonAtomic, preferredCheckpoint } from "../../train/run-dir.ts";
import { loadTrainedModel } from "../../train/trained-model.ts";
import { parseInteger, parseNumber } from "../options.ts";

/**
 * The sheet's untied per-column weight matrices, read to the host: attention q, k (and v, o
 * with value_proj) when untie_attn, MLP fc1, fc2 when untie_mlp (the matrices of the
 * feature-consistency penalty). Borrows `params`.
 */
async function readUntiedWeights(params: SheetParams, sheet: SheetConfig): Promise<ColumnWeights[]> {
  const leaves: [string, np.Array][] = [];
  if (sheet.untie_attn) {
    leaves.push(["sheet.attn.q.weight", params.attn.q.weight], ["sheet.attn.k.weight", params.attn.k.weight]);
    if (params.attn.v && params.attn.o) leaves.push(["sheet.attn.v.weight", params.attn.v.weight], ["sheet.attn.o.weight", params.attn.o.weight]);
  }
  if (sheet.untie_mlp) leaves.push(["sheet.mlp.fc1.weight", params.mlp.fc1.weight], ["sheet.mlp.fc2.weight", params.mlp.fc2.weight]);
  const out: ColumnWeights[] = [];
  for (const [name, leaf] of leaves) {
    const data = await leaf.ref.data();
    out.push({ name, shape: [...leaf.shape], values: data instanceof Float32Array ? data : Float32Array.from(data) });
  }
  return out;
}

export function registerAnalyze(program: Command): void {
  program
    .command("analyze")
    .description("measure and draw the connectivity and topography a trained model learned: analysis.json, report.html, figures/*.png|svg")
    .argument("<run-or-checkpoint>", "a run directory (uses checkpoints/best, else last) or a checkpoint file")
    .option("--images <n>", "held-out images to run (the first ones of the test split)", parseInteger, 1000)
    .option("--data <json>", "data set as JSON (default: the one it was trained on)")
    .option("--out <dir>", "output directory (default: RUN/analysis, or next to the checkpoint)")
    .option("--edge-fraction <f>", "fraction of strongest edges kept in the connectivity graph", parseNumber, DEFAULT_ANALYSIS_OPTIONS.edgeFraction)
    .option("--seed <n>", "seed of the random parts (Louvain order, null models, CKA pairs)", parseInteger, 0)
    .option("--response <mode>", "column response the field metrics' maps use: mean, norm, pc1 or feature:K", "mean")
    .option("--no-gratings", "skip the sine-grating set (orientation maps, circular variance, pinwheels)")
    .option("--no-unit-level", "skip unit-level maps (each column's D features as a sub-grid)")
    .option("--patch-threshold <t>", "Welch t above which a column is selective (patches, localiser)", parseNumber, DEFAULT_ANALYSIS_OPTIONS.field.patchThreshold)
    .action(async (target: string, opts: { images: number; data?: string; out?: string; edgeFraction: number; seed: number; response: string; gratings: boolean; unitLevel: boolean; patchThreshold: number }) => {
      const response = parseResponseMode(opts.response);
      if (!existsSync(target)) throw new Error(`${target} does not exist (give a run directory or a .safetensors checkpoint)`);
      let run: RunDir | null = null;
      let checkpoint = target;
      if (statSync(target).isDirectory()) {
        run = (await openRunDir(target)).dir;
        const preferred = preferredCheckpoint(run);
        if (preferred === null) throw new Error(`${target} has no checkpoints yet (checkpoints/best or last)`);
        checkpoint = preferred;
      }
      const outDir = opts.out ?? analysisDirOf(checkpoint);
      await initEngine();
      const { checkpoint: ckpt, config, session } = await loadTrainedModel(checkpoint, opts.data);
      const ds = await openDataset(config.data, "test");
      const limit = Math.min(opts.images, ds.length);
      process.stderr.write(`analyzing ${checkpoint} (${describeGeometry(session.geometry)}) on ${limit} ${ds.name} test images -> ${outDir}\n`);
      const progress = new Progress(limit, { label: "collect" });
      const activity = await collectActivity(session, ckpt.params, ds, limit, (done) => progress.update(done, {}));
      progress.done();
      let gratings: GratingActivity | undefined;
      if (opts.gratings) {
        const set = gratingSet({ size: session.vision.image_size, channels: session.vision.channels });
        gratings = {
          activity: await collectActivity(session, ckpt.params, set.dataset, set.dataset.length),
          orientations: set.orientations,
          orientationIndex: set.params.map((p) => p.orientationIndex),
          frequencyIndex: set.params.map((p) => p.frequencyIndex),
          frequencies: set.frequencies.length,
        };
      }
      const weights = await readUntiedWeights(ckpt.params.sheet, ckpt.sheet);
      const learnedPositions = ckpt.params.positions !== undefined;
      tree.dispose(ckpt.params);
      process.stderr.write("computing metrics...\n");
      const options = {
        ...DEFAULT_ANALYSIS_OPTIONS,
        edgeFraction: opts.edgeFraction,
        seed: opts.seed,
        field: { ...DEFAULT_ANALYSIS_OPTIONS.field, response, unitLevel: opts.unitLevel, patchThreshold: opts.patchThreshold },
      };
      const numClasses = config.vision.task === "classify" ? config.vision.num_classes : ds.numClasses;
      const result = analyzeActivity(activity, session.geometry, session.sheet.dim, activity.labels ? numClasses : null, options, {
        weights,
        neighbours: config.consistency.neighbours,
        outputArea: session.layout.outputArea,
        gratings,
      });
      await writeJsonAtomic(path.join(outDir, "analysis.json"), { checkpoint, step: ckpt.step, geometry: describeGeometry(session.geometry), ...result });
      const recon = run && existsSync(path.join(run.root, "reconstructions.png")) ? path.join(run.root, "reconstructions.png") : undefined;
      const figures = await writeReport(outDir, result, {
        title: `Columnformer analysis: ${path.basename(run?.root ?? checkpoint)} (step ${ckpt.step})`,
        geometry: session.geometry,
        activity,
        log: run ? await readLog(run) : undefined,
        reconstructionsPng: recon,
        classNames: ds.classNames,
        learnedPositions,
        orientations: gratings?.orientations,
      });
      const m = result.connectivity.mean;
      console.log(
        `wrote ${path.join(outDir, "analysis.json")}, report.html and ${figures.length} figures; ` +
          `mean attention distance ${m.mean_attention_distance.toFixed(3)}, wiring cost (L1) ${m.wiring_cost_l1.toFixed(3)}, ` +
          `modularity ${result.graph.modularity.toFixed(3)}, smoothness ${result.topography.smoothness_index.toFixed(3)}`,
      );
      const out = result.field.areas[result.field.areas.length - 1];
      const fmt = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "n/a" : v.toFixed(3));
      console.log(
        `field metrics (${out.name}): TDANN smoothness of preferred class ${fmt(out.columns_level.selectivity?.smoothness_preferred.smoothness)} ` +
          `(shuffled ${fmt(out.columns_level.selectivity?.smoothness_preferred.shuffled?.smoothness)}), Moran's I of max t ${fmt(out.columns_level.selectivity?.morans_i_max_t.I)}, ` +
          `orientation smoothness ${fmt(out.columns_level.orientation?.smoothness.smoothness)}, effective dimensionality ${fmt(result.field.effective_dimensionality.value)}`,
      );
      const ws = result.topography.weight_similarity_vs_distance;
      if (ws) {
        const known = ws.meanCosine.filter((v) => Number.isFinite(v));
        console.log(
          `weight similarity (cosine, ${ws.matrices.length} untied matrices): ${ws.neighbours ?? "nearest"} neighbours ${ws.neighbour_similarity.toFixed(3)}, ` +
            `nearest bin ${known.length ? known[0].toFixed(3) : "n/a"}, farthest bin ${known.length ? known[known.length - 1].toFixed(3) : "n/a"}`,
        );
      } else {
        console.log("weight similarity: no untied weights");
      }
    });
}
