/**
 * Lesions: silence a set of columns (their state held at exactly zero before and after every
 * recurrent step, see `lesion` in visionEncode) and measure the held-out task against an
 * equal-size random lesion of the same area, as TDANN (Margalit et al. 2024) and ITN (Blauch et
 * al. 2022) lesion category-selective patches.
 *
 * Note: a silenced column's state is zero, so it carries no stimulus information, but its
 * LayerNorm output (the norm's bias) still produces a constant key and value that other
 * columns may attend to; the sheet's attention itself is not masked.
 *
 * Lesion kinds (k = round(fraction * columns of the area)):
 * - "random": k columns of the area drawn uniformly (seeded);
 * - "disc": the k columns nearest (sheet distance) to a centre: the column of largest
 *   selectivity for `class` when given, else a random column of the area (seeded);
 * - "selective": the k columns of the area with the largest Welch t for `class`.
 */
import type { ImageDataset } from "../data/index.ts";
import { Rng, mixSeed } from "../engine/rng.ts";
import { jit, numpy as np, tree } from "../engine/jax.ts";
import type { Area, Geometry } from "../geometry/index.ts";
import { columnDistance, geometryMetric } from "../geometry/metric.ts";
import { connectivityArray } from "../model/sheet-connectivity.ts";
import { classify, decodePatches, type VisionParams, visionEncode } from "../model/vision.ts";
import { maskedMse, normalizePatches } from "../objectives/mim.ts";
import type { DeviceBatch, SheetInputs } from "../train/loss.ts";
import { heldOutBatches, maskSeed, type Session, toDevice } from "../train/session.ts";

/** Kinds of lesion. */
export type LesionKind = "disc" | "random" | "selective";

/** Which columns to silence. */
export interface LesionSpec {
  kind: LesionKind;
  /** Fraction of the area's columns, in [0, 1]. */
  fraction: number;
  /** The area lesioned. */
  area: Area;
  /** Target class (required for "selective"; the disc's centre for "disc"). */
  class?: number;
  /** Welch t of `class` for every column of the sheet [N] (required with `class`). */
  selectivity?: ArrayLike<number>;
  seed?: number;
}

/** Columns silenced by a lesion spec, sorted (indices into the sheet). */
export function lesionColumns(spec: LesionSpec, geometry: Geometry): number[] {
  const { area } = spec;
  const size = area.end - area.start;
  if (!(spec.fraction >= 0 && spec.fraction <= 1)) throw new RangeError(`lesion fraction must be in [0, 1], got ${spec.fraction}`);
  const k = Math.round(spec.fraction * size);
  const members = Array.from({ length: size }, (_, i) => area.start + i);
  const rng = new Rng(mixSeed(spec.seed ?? 0, 0x6c6573));
  const score = (c: number) => {
    const v = spec.selectivity?.[c];
    return v !== undefined && Number.isFinite(v) ? v : -Infinity;
  };
  if ((spec.kind === "selective" || (spec.kind === "disc" && spec.class !== undefined)) && !spec.selectivity) {
    throw new Error(`a ${spec.kind} lesion for a class needs the columns' selectivity`);
  }
  let chosen: number[];
  if (spec.kind === "random") {
    chosen = rng.shuffle(members.slice()).slice(0, k);
  } else if (spec.kind === "selective") {
    if (spec.class === undefined) throw new Error("a selective lesion needs a class (--class C)");
    chosen = members.slice().sort((a, b) => score(b) - score(a) || a - b).slice(0, k);
  } else {
    const centre = spec.class !== undefined ? members.reduce((best, c) => (score(c) > score(best) ? c : best), members[0]) : members[rng.int(size)];
    const metric = geometryMetric(geometry);
    const d = (j: number) => Math.fround(columnDistance(metric, centre, j));
    chosen = members.slice().sort((a, b) => d(a) - d(b) || a - b).slice(0, k);
  }
  return chosen.sort((a, b) => a - b);
}

/** A keep-mask [N] (1 = intact, 0 = silenced). */
export function keepMask(n: number, silenced: readonly number[]): Float32Array {
  const keep = new Float32Array(n).fill(1);
  for (const c of silenced) keep[c] = 0;
  return keep;
}

/** Held-out performance of a (lesioned) model. */
export interface LesionEval {
  images: number;
  /** Classification: top-1 accuracy overall and per class (NaN for a class without images). */
  accuracy?: number;
  per_class_accuracy?: number[];
  /** Images per class. */
  class_counts?: number[];
  /** MIM: held-out MIM loss (the masks of `columnformer eval`). */
  mim_loss?: number;
  /** Classification: predicted class of every image. */
  predictions?: number[];
}

/**
 * A jitted, lesionable evaluator for a session: `run(params, ds, limit, keep)`; dispose when done.
 * It always runs the jax-js reference model (visionEncode), whatever the session's backend.
 */
export function lesionEvaluator(session: Session) {
  const { sheet, vision, layout } = session;
  const idx = session.connectivity ? connectivityArray(session.connectivity) : null;
  const isMim = vision.task === "mim";
  const fn = jit((p: VisionParams, batch: DeviceBatch, keep: np.Array, inputs: SheetInputs) => {
    const { decoder, head, positions, ...encoder } = p;
    tree.dispose(positions);
    const { out, attn, patches } = visionEncode(encoder, batch.images, batch.mask?.ref ?? null, sheet, vision, layout, false, inputs.connectivity, keep);
    attn.dispose();
    if (batch.mask) {
      tree.dispose(head);
      return maskedMse(decodePatches(decoder!, out), normalizePatches(patches), batch.mask);
    }
    tree.dispose([decoder, patches, batch.labels]);
    return classify(head!, out); // logits [B, classes]
  });
  const run = async (params: VisionParams, ds: ImageDataset, limit: number, keep: Float32Array): Promise<LesionEval> => {
    let images = 0;
    let loss = 0;
    let index = 0;
    const predictions: number[] = [];
    const labels: number[] = [];
    for await (const host of heldOutBatches(session, ds, limit)) {
      // the masks of evaluate() (purpose 2), so an unlesioned MIM loss equals `columnformer eval`'s
      const batch = toDevice(session, host, maskSeed(session.config.seed, 2, index++));
      const result = fn(tree.ref(params), batch, np.array(keep), idx ? { connectivity: idx.ref } : {});
      if (isMim) {
        loss += (await result.data())[0] * host.size;
      } else {
        const logits = (await result.data()) as Float32Array;
        const k = logits.length / host.size;
        for (let b = 0; b < host.size; b++) {
          let best = 0;
          for (let c = 1; c < k; c++) if (logits[b * k + c] > logits[b * k + best]) best = c;
          predictions.push(best);
        }
        labels.push(...host.labels!);
      }
      images += host.size;
    }
    if (images === 0) throw new Error(`no readable held-out images in ${ds.name}`);
    if (isMim) return { images, mim_loss: loss / images };
    const classes = vision.num_classes;
    const correct = new Array<number>(classes).fill(0);
    const counts = new Array<number>(classes).fill(0);
    labels.forEach((y, i) => {
      counts[y]++;
      if (predictions[i] === y) correct[y]++;
    });
    return {
      images,
      accuracy: correct.reduce((a, v) => a + v, 0) / images,
      per_class_accuracy: counts.map((c, y) => (c > 0 ? correct[y] / c : NaN)),
      class_counts: counts,
      predictions,
    };
  };
  return {
    run,
    dispose: () => {
      fn.dispose();
      idx?.dispose();
    },
  };
}

/** One lesion against its equal-size random controls. */
export interface LesionComparison {
  kind: LesionKind;
  fraction: number;
  area: string;
  class: number | null;
  /** Columns silenced by the targeted lesion. */
  columns: number[];
  baseline: Omit<LesionEval, "predictions">;
  lesioned: Omit<LesionEval, "predictions">;
  /** The random controls (same area, same size, seeds 1..controls). */
  random: Omit<LesionEval, "predictions">[];
  /** Classification: accuracy drop per class (baseline - lesioned) and its random-control mean and SD. MIM: null. */
  per_class_drop: number[] | null;
  random_per_class_drop: { mean: number[]; std: number[] } | null;
  /** Overall: accuracy drop (classification) or MIM-loss rise, targeted and random (mean, SD). */
  effect: number;
  random_effect: { mean: number; std: number };
  /** With a class: its drop minus the mean drop of the other classes (a category-specific deficit). */
  specificity: number | null;
}

const strip = (e: LesionEval): Omit<LesionEval, "predictions"> => {
  const { predictions: _, ...rest } = e;
  return rest;
};

function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, v) => a + v, 0) / (xs.length || 1);
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, v) => a + (v - mean) ** 2, 0) / (xs.length - 1)) : NaN;
  return { mean, std };
}

/** Effect of a lesion: accuracy drop (classification) or MIM-loss rise. */
function effectOf(base: LesionEval, les: LesionEval): number {
  return base.mim_loss !== undefined ? les.mim_loss! - base.mim_loss : base.accuracy! - les.accuracy!;
}

/**
 * Run a targeted lesion and `controls` random lesions of the same size in the same area
 * (borrows `params`). `baseline` may be passed in to share it between fractions.
 */
export async function compareLesion(
  evaluator: ReturnType<typeof lesionEvaluator>,
  session: Session,
  params: VisionParams,
  ds: ImageDataset,
  limit: number,
  spec: LesionSpec,
  controls: number,
  baseline?: LesionEval,
): Promise<LesionComparison> {
  const n = session.geometry.numColumns;
  const base = baseline ?? (await evaluator.run(params, ds, limit, keepMask(n, [])));
  const columns = lesionColumns(spec, session.geometry);
  const les = await evaluator.run(params, ds, limit, keepMask(n, columns));
  const random: LesionEval[] = [];
  for (let r = 0; r < controls; r++) {
    const cols = lesionColumns({ kind: "random", fraction: spec.fraction, area: spec.area, seed: mixSeed(spec.seed ?? 0, 1 + r) }, session.geometry);
    random.push(await evaluator.run(params, ds, limit, keepMask(n, cols)));
  }
  const drop = (e: LesionEval) => base.per_class_accuracy!.map((a, y) => a - e.per_class_accuracy![y]);
  const perClass = base.per_class_accuracy ? drop(les) : null;
  let randomPerClass: LesionComparison["random_per_class_drop"] = null;
  if (perClass) {
    const drops = random.map(drop);
    const stats = perClass.map((_, y) => meanStd(drops.map((d) => d[y])));
    randomPerClass = { mean: stats.map((s) => s.mean), std: stats.map((s) => s.std) };
  }
  let specificity: number | null = null;
  if (perClass && spec.class !== undefined) {
    const others = perClass.filter((v, y) => y !== spec.class && Number.isFinite(v));
    specificity = perClass[spec.class] - (others.length ? others.reduce((a, v) => a + v, 0) / others.length : NaN);
  }
  return {
    kind: spec.kind,
    fraction: spec.fraction,
    area: spec.area.name,
    class: spec.class ?? null,
    columns,
    baseline: strip(base),
    lesioned: strip(les),
    random: random.map(strip),
    per_class_drop: perClass,
    random_per_class_drop: randomPerClass,
    effect: effectOf(base, les),
    random_effect: meanStd(random.map((e) => effectOf(base, e))),
    specificity,
  };
}
