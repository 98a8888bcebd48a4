/**
 * What one finished sweep run reports: `<sweep dir>/<run name>/sweep-summary.json`.
 * Written by the sweep runner after training and the post-training
 * measurements; read by `columnformer compare`. Its presence marks a run finished.
 */
export interface RunSummary {
  /** Run name within the sweep (also its directory name). */
  name: string;
  /** The sweep's overrides for this run, dotted keys -> values (e.g. {"sheet.untie_mlp": false}). */
  overrides: Record<string, unknown>;
  task: "mim" | "classify";
  steps: number;
  /** Trainable parameters of the whole vision model. */
  parameters: number;
  /** Forward-pass matmul FLOPs per image (see src/model/cost.ts). */
  flops_per_image: number;
  /** Median training throughput over the run's log. */
  images_per_second: number;
  /** Wall-clock seconds spent training. */
  train_seconds: number;
  /** Final held-out evaluation: total loss, and the task's metric. */
  eval: { loss: number; mim_loss?: number; accuracy?: number };
  /** Linear-probe accuracy on frozen output-area features; null when the sweep disables the probe. */
  probe_accuracy: number | null;
  /** Unweighted L1 wiring cost (W = d / mean d) of the held-out attention, mean over steps. */
  wiring_cost: number;
  /** Attention-weighted mean distance between connected columns on held-out images, mean over steps. */
  mean_attention_distance: number;
}

/** The expanded plan, in the sweep directory. */
export const PLAN_FILE = "sweep.json";
/** A finished run's {@link RunSummary}, in its run directory. */
export const SUMMARY_FILE = "sweep-summary.json";
