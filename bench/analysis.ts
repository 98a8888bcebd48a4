/**
 * The analysis benchmark: `columnformer analyze` work (collect attention and
 * states, every metric, every figure and the report) for a tiny-preset model
 * on 1,000 held-out MNIST images, plus the sine-grating set and the published-definition
 * metrics (field.ts: unit-level maps included). The budget is 1 minute on 2 cores.
 * The model is freshly initialised: the work does not depend on training.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { analyzeActivity } from "../src/analysis/analyze.ts";
import { collectActivity } from "../src/analysis/collect.ts";
import { writeReport } from "../src/analysis/report.ts";
import { openDataset } from "../src/data/index.ts";
import { gratingSet } from "../src/data/gratings.ts";
import { tree } from "../src/engine/jax.ts";
import { initVision } from "../src/model/vision.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { PRESETS } from "../src/train/presets.ts";
import { createSession } from "../src/train/session.ts";
import type { BenchResult } from "./harness.ts";
import { timeCall } from "./harness.ts";

/** Images analysed. */
export const ANALYSIS_IMAGES = 1000;

/** Time the whole analysis once cold (compile included), once warm, and `repeats` more (default 1: it is slow). */
export async function benchAnalysis(ctx: { repeats: number; onStart: (name: string) => void }): Promise<BenchResult[]> {
  ctx.onStart(`analysis (tiny preset, ${ANALYSIS_IMAGES} images)`);
  const config = parseTrainConfig(PRESETS.tiny);
  const session = createSession(config);
  const params = initVision(session.sheet, session.vision, session.geometry, 0);
  const ds = await openDataset(config.data, "test");
  const out = mkdtempSync(path.join(os.tmpdir(), "cf-bench-analysis-"));
  try {
    const timing = await timeCall(async () => {
      const activity = await collectActivity(session, params, ds, ANALYSIS_IMAGES);
      const set = gratingSet({ size: session.vision.image_size, channels: session.vision.channels });
      const gratings = {
        activity: await collectActivity(session, params, set.dataset, set.dataset.length),
        orientations: set.orientations,
        orientationIndex: set.params.map((p) => p.orientationIndex),
        frequencyIndex: set.params.map((p) => p.frequencyIndex),
        frequencies: set.frequencies.length,
      };
      const result = analyzeActivity(activity, session.geometry, session.sheet.dim, ds.numClasses, undefined, { outputArea: session.layout.outputArea, gratings });
      await writeReport(out, result, { title: "bench", geometry: session.geometry, activity, classNames: ds.classNames, orientations: set.orientations });
    }, Math.min(ctx.repeats, 1));
    return [
      {
        name: `analysis tiny, ${ANALYSIS_IMAGES} images`,
        workload: { preset: "tiny", images: ANALYSIS_IMAGES, parts: "collect (+ gratings) + metrics (+ field metrics) + figures + report" },
        flops: 0,
        flopConvention: "not counted (mixed work)",
        gflopsPerSecMedian: 0,
        gflopsPerSecBest: 0,
        ...timing,
      },
    ];
  } finally {
    tree.dispose(params);
    rmSync(out, { recursive: true, force: true });
  }
}
