/**
 * Learning-rate schedules: plain functions from a 0-based step index (the
 * number of optimiser updates already done, i.e. `AdamWState.step`) to the
 * learning rate for the update about to be taken.
 */

/** Maps a 0-based step index to a learning rate. */
export type Schedule = (step: number) => number;

/** Options of {@link cosineSchedule}. */
export interface CosineScheduleOptions {
  /** Learning rate at the end of warm-up. */
  peak_lr: number;
  /** Number of linear warm-up steps (0 = start at the peak). */
  warmup_steps: number;
  /** Step at which the cosine reaches its floor; later steps stay there. */
  total_steps: number;
  /** Floor as a fraction of `peak_lr` (default 0.05). */
  final_lr_fraction?: number;
}

/**
 * Linear warm-up then cosine decay. With `W = warmup_steps`, `T = total_steps`,
 * `floor = final_lr_fraction * peak_lr`:
 *
 * - `step < W`:      `lr = peak_lr * (step + 1) / W` (so step 0 gets peak/W and step W-1 the peak);
 * - `W <= step < T`: `lr = floor + (peak_lr - floor) * (1 + cos(pi * (step - W) / (T - W))) / 2`
 *   (the peak at step W, halfway between peak and floor at step W + (T - W)/2);
 * - `step >= T`:     `lr = floor`.
 *
 * Requires `0 <= W <= T`, `T > 0`, `peak_lr >= 0`, `0 <= final_lr_fraction <= 1`.
 * Negative or non-integer steps are rejected.
 */
export function cosineSchedule(opts: CosineScheduleOptions): Schedule {
  const { peak_lr: peak, warmup_steps: W, total_steps: T } = opts;
  const frac = opts.final_lr_fraction ?? 0.05;
  if (!(Number.isFinite(peak) && peak >= 0)) throw new RangeError(`cosineSchedule: peak_lr must be >= 0, got ${peak}`);
  if (!Number.isInteger(W) || W < 0) throw new RangeError(`cosineSchedule: warmup_steps must be an integer >= 0, got ${W}`);
  if (!Number.isInteger(T) || T <= 0 || T < W) {
    throw new RangeError(`cosineSchedule: total_steps must be an integer > 0 and >= warmup_steps, got ${T}`);
  }
  if (!(frac >= 0 && frac <= 1)) throw new RangeError(`cosineSchedule: final_lr_fraction must be in [0, 1], got ${frac}`);
  const floor = frac * peak;
  return (step: number): number => {
    checkStep(step);
    if (step < W) return (peak * (step + 1)) / W;
    if (step >= T) return floor;
    const progress = (step - W) / (T - W);
    return floor + ((peak - floor) * (1 + Math.cos(Math.PI * progress))) / 2;
  };
}

/** A schedule that returns `lr` at every step. */
export function constantSchedule(lr: number): Schedule {
  if (!(Number.isFinite(lr) && lr >= 0)) throw new RangeError(`constantSchedule: lr must be >= 0, got ${lr}`);
  return (step: number): number => {
    checkStep(step);
    return lr;
  };
}

function checkStep(step: number): void {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`schedule: step must be an integer >= 0, got ${step}`);
}

/** A penalty schedule as configured (see penaltyScheduleSchema in config.ts). */
export interface PenaltyScheduleConfig {
  kind: "constant" | "warmup" | "cosine";
  warmup_fraction: number;
  final_fraction: number;
}

/**
 * The coefficient of a penalty (wiring cost, feature consistency) over
 * `totalSteps`: `constant`; `warmup` = linear from 0 to `coef` over
 * warmup_fraction of the steps, then `coef`; `cosine` = the same warm-up, then
 * cosine decay to final_fraction * coef (as {@link cosineSchedule}).
 */
export function penaltySchedule(coef: number, config: PenaltyScheduleConfig, totalSteps: number): Schedule {
  if (config.kind === "constant") return constantSchedule(coef);
  const warmup = Math.round(config.warmup_fraction * totalSteps);
  if (config.kind === "warmup") {
    // a cosine whose floor is its peak is flat after the warm-up
    return cosineSchedule({ peak_lr: coef, warmup_steps: warmup, total_steps: Math.max(totalSteps, 1), final_lr_fraction: 1 });
  }
  return cosineSchedule({ peak_lr: coef, warmup_steps: warmup, total_steps: Math.max(totalSteps, 1), final_lr_fraction: config.final_fraction });
}
