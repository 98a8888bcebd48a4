/**
 * A live, single-line training progress display:
 *
 * ```
 * train 1200/5000 [█████░░░░░░░░░░░░░░░]  24% | loss 0.4312 | img/s 812 | ETA 3m05s
 * ```
 *
 * On a TTY the line is redrawn in place with `\r` (throttled); elsewhere (CI,
 * files, pipes) a plain line is printed at most every few seconds and once at
 * the end, so logs stay short.
 */

/** The part of a writable stream that {@link Progress} uses; `process.stderr` fits. */
export interface ProgressStream {
  /** Write text. */
  write(chunk: string): boolean;
  /** True when the stream is an interactive terminal. */
  isTTY?: boolean;
  /** Terminal width, used to keep the redrawn line from wrapping. */
  columns?: number;
}

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** Where to draw (default `process.stderr`). */
  stream?: ProgressStream;
  /** Text at the start of the line (default none). */
  label?: string;
  /**
   * Minimum time between two outputs, in ms. Default 200 on a TTY (redraws)
   * and 10000 elsewhere (plain lines).
   */
  intervalMs?: number;
  /** Clock in ms (default `performance.now`); for tests. */
  now?: () => number;
}

const BAR_WIDTH = 20;
/** Number of recent (step, time) samples the ETA's moving average spans. */
const ETA_WINDOW = 50;

/**
 * Format a duration compactly: `"1h02m"`, `"3m05s"`, `"12s"`. Rounds to whole
 * seconds; negative values read as 0; non-finite values as `"?"`.
 *
 * @param seconds Duration in seconds.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

/** Compact number: integers as is, otherwise ~4 significant digits. */
function formatValue(v: number | string): string {
  if (typeof v === "string") return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 1e-3) return String(Number(v.toPrecision(4)));
  return v.toExponential(2);
}

/**
 * A progress line for a loop of `total` steps. Call {@link Progress.update}
 * every step (cheap: output is throttled) and {@link Progress.done} at the end.
 */
export class Progress {
  private readonly total: number;
  private readonly stream: ProgressStream;
  private readonly label: string;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly startTime: number;
  /** Recent (step, time ms) samples for the ETA. */
  private readonly samples: { step: number; t: number }[] = [];
  private lastOutput = -Infinity;
  private lastStep = 0;
  private lastFields: Record<string, number | string> = {};
  private finished = false;

  /**
   * @param total Number of steps (the last step is `total`).
   * @param opts Stream, label, output interval and clock.
   */
  constructor(total: number, opts: ProgressOptions = {}) {
    this.total = total;
    this.stream = opts.stream ?? process.stderr;
    this.label = opts.label ?? "";
    this.tty = this.stream.isTTY === true;
    this.intervalMs = opts.intervalMs ?? (this.tty ? 200 : 10_000);
    this.now = opts.now ?? (() => performance.now());
    this.startTime = this.now();
  }

  /**
   * Record that `step` steps are done and show `fields` (e.g. `{ loss, "img/s": r }`),
   * in the given order. Output is throttled to the interval.
   *
   * @param step Steps completed so far (1-based count, up to `total`).
   * @param fields Values to show after the bar.
   */
  update(step: number, fields: Record<string, number | string> = {}): void {
    if (this.finished) return;
    const t = this.now();
    this.lastStep = step;
    this.lastFields = fields;
    const last = this.samples[this.samples.length - 1];
    if (last === undefined || step !== last.step) {
      this.samples.push({ step, t });
      if (this.samples.length > ETA_WINDOW) this.samples.shift();
    }
    if (t - this.lastOutput < this.intervalMs) return;
    this.lastOutput = t;
    this.emit(this.line(`ETA ${formatDuration(this.etaSeconds())}`));
  }

  /**
   * Finish: show the final line (with the elapsed time instead of the ETA),
   * end it with a newline, then print `message` on its own line if given.
   * Later calls to update/done are ignored.
   *
   * @param message Optional closing message.
   */
  done(message?: string): void {
    if (this.finished) return;
    this.finished = true;
    const elapsed = (this.now() - this.startTime) / 1000;
    if (this.tty) {
      this.stream.write(`\r${this.fit(this.line(`took ${formatDuration(elapsed)}`))}\x1b[K\n`);
    } else {
      this.stream.write(`${this.line(`took ${formatDuration(elapsed)}`)}\n`);
    }
    if (message !== undefined) this.stream.write(`${message}\n`);
  }

  /** Seconds left, from the average step time over the recent window (NaN when unknown). */
  private etaSeconds(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first === undefined || last === undefined || last.step <= first.step) return NaN;
    const msPerStep = (last.t - first.t) / (last.step - first.step);
    return (Math.max(0, this.total - last.step) * msPerStep) / 1000;
  }

  private line(tail: string): string {
    const step = this.lastStep;
    const frac = this.total > 0 ? Math.min(1, Math.max(0, step / this.total)) : 0;
    const filled = Math.round(frac * BAR_WIDTH);
    const bar = "█".repeat(filled) + "░".repeat(BAR_WIDTH - filled);
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    const parts = [`${this.label ? `${this.label} ` : ""}${step}/${this.total} [${bar}] ${pct}`];
    for (const [k, v] of Object.entries(this.lastFields)) parts.push(`${k} ${formatValue(v)}`);
    parts.push(tail);
    return parts.join(" | ");
  }

  /** Cut a line to the terminal width so a redraw never wraps. */
  private fit(text: string): string {
    const cols = this.stream.columns;
    return cols !== undefined && cols > 1 && text.length > cols - 1 ? text.slice(0, cols - 1) : text;
  }

  private emit(text: string): void {
    if (this.tty) this.stream.write(`\r${this.fit(text)}\x1b[K`);
    else this.stream.write(`${text}\n`);
  }
}
