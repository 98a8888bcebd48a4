/**
 * What `columnformer view` serves next to the page (and `--export` writes): `manifest.json`
 * describes a run or a sweep; URLs in it are relative to the manifest's own folder.
 * Shared by the Node server (src/view/) and the page (src/viewer/page/).
 */

/** One record of a run's log.jsonl (numbers, strings, nested objects as logged). */
export type LogRecord = Record<string, unknown>;

/** A figure written by `columnformer analyze`. */
export interface FigureRef {
  name: string;
  url: string;
}

/** A run: its checkpoint (run in the page), held-out images, training log, summary and analysis. */
export interface RunManifest {
  kind: "run";
  name: string;
  /** URL of the checkpoint to load, or null with `problem` saying why (missing, unreadable). */
  checkpoint: string | null;
  /** The checkpoint's file on the serving machine (for messages). */
  checkpointPath: string | null;
  /** URL of the held-out images (see SampleSet), or null when none could be read (`samplesNote` says why). */
  samples: string | null;
  samplesNote: string | null;
  log: LogRecord[];
  summary: Record<string, unknown> | null;
  /** Scalar metrics from analysis.json, flattened ("connectivity.mean.wiring_cost_l1": 0.4). */
  analysis: Record<string, number> | null;
  figures: FigureRef[];
  /** A problem that stops the model from running (shown in the page). */
  problem: string | null;
}

/** One run of a sweep with its compare-table numbers. */
export interface SweepRunRef {
  name: string;
  /** URL of the run's manifest. */
  manifest: string;
  finished: boolean;
  values: Record<string, number | string | null>;
}

/** A sweep: its runs and their compare table. */
export interface SweepManifest {
  kind: "sweep";
  name: string;
  /** Column order of the compare table. */
  columns: string[];
  runs: SweepRunRef[];
}

export type Manifest = RunManifest | SweepManifest;

/** Held-out images for the input panel: images [H, W, C] in [0, 1], as flat number arrays. */
export interface SampleSet {
  /** Where they come from, e.g. "mnist (test split)". */
  source: string;
  image_size: number;
  channels: 1 | 3;
  labels: (number | null)[];
  classNames: string[] | null;
  images: number[][];
}
