/**
 * Small statistics for seed replicates: mean, sample SD, Student-t 95 % confidence intervals and
 * Welch's two-sample t-test. The t distribution's CDF is the regularised incomplete beta
 * function (continued fraction, Numerical Recipes 6.4); its quantile is found by bisection.
 */

/** ln Gamma(x) (Lanczos, g = 7, 9 terms; |error| < 1e-13 for x > 0). */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaCf(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaCf(a, b, x)) / a : 1 - (front * betaCf(b, a, 1 - x)) / b;
}

/** P(T <= t) for Student's t with `df` degrees of freedom (df > 0, not necessarily an integer). */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t (bisection on the CDF, |error| < 1e-10). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`quantile needs 0 < p < 1, got ${p}`);
  let lo = -1e4;
  let hi = 1e4;
  for (let i = 0; i < 200 && hi - lo > 1e-11; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Mean, sample SD (n - 1) and the Student-t 95 % confidence interval of the mean. */
export interface Replicates {
  n: number;
  mean: number;
  /** NaN for n < 2. */
  std: number;
  /** [mean - t_{0.975, n-1} SD / sqrt(n), mean + ...]; [NaN, NaN] for n < 2. */
  ci95: [number, number];
}

/** Summary of replicate values. */
export function replicates(values: readonly number[]): Replicates {
  const n = values.length;
  const mean = n ? values.reduce((a, v) => a + v, 0) / n : NaN;
  if (n < 2) return { n, mean, std: NaN, ci95: [NaN, NaN] };
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  const half = (studentTQuantile(0.975, n - 1) * std) / Math.sqrt(n);
  return { n, mean, std, ci95: [mean - half, mean + half] };
}

/**
 * Welch's two-sample t-test (unequal variances): t = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b),
 * Welch-Satterthwaite df, two-sided p. NaN when either sample has fewer than 2 values or both have
 * zero variance (then p is 0 if the means differ, 1 if equal).
 */
export function welchTTest(a: readonly number[], b: readonly number[]): { t: number; df: number; p: number } {
  const ra = replicates(a);
  const rb = replicates(b);
  if (ra.n < 2 || rb.n < 2) return { t: NaN, df: NaN, p: NaN };
  const va = (ra.std * ra.std) / ra.n;
  const vb = (rb.std * rb.std) / rb.n;
  if (va + vb === 0) return { t: ra.mean === rb.mean ? 0 : Infinity, df: NaN, p: ra.mean === rb.mean ? 1 : 0 };
  const t = (ra.mean - rb.mean) / Math.sqrt(va + vb);
  const df = (va + vb) ** 2 / ((va * va) / (ra.n - 1) + (vb * vb) / (rb.n - 1));
  return { t, df, p: 2 * (1 - studentTCdf(Math.abs(t), df)) };
}
