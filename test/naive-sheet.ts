/**
 * An independent, deliberately naive reference of the column sheet: plain
 * nested loops over Float64 numbers, no jax-js. Tests compare the real model
 * against it. Follows the model as written in docs/model.md (the pseudo-code and field table), not the model code.
 */

export type Vec = number[];
export type Mat = number[][];

/** Error function, Abramowitz & Stegun 7.1.26 refined by a series for small |x| (|error| < 1e-9 via series/continued fraction). */
export function erf(x: number): number {
  // Maclaurin series converges fast for |x| < 3; beyond, erf is 1 to double precision for our purposes.
  if (Math.abs(x) > 5) return Math.sign(x);
  let sum = 0;
  let term = x;
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
    if (Math.abs(term) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));

export interface NaiveSheet {
  n: number;
  d: number;
  qk: number;
  mlp: number;
  norm1: { weight: Mat; bias: Mat }; // [N][D]
  q: { weight: Mat[]; bias: Mat }; // [N][qk][D], [N][qk]
  k: { weight: Mat[] }; // [N][qk][D]
  attnBias: Mat; // [N][N]
  norm2: { weight: Mat; bias: Mat };
  fc1: { weight: Mat[]; bias: Mat }; // [N][mlp][D], [N][mlp]
  fc2: { weight: Mat[] }; // [N][D][mlp]
}

/** y = W x + b for one column. */
export function linear(w: Mat, x: Vec, b?: Vec): Vec {
  return w.map((row, o) => row.reduce((s, wi, i) => s + wi * x[i], 0) + (b ? b[o] : 0));
}

export function layerNorm(x: Vec, w: Vec, b: Vec, eps: number): Vec {
  const mean = x.reduce((s, v) => s + v, 0) / x.length;
  const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * w[i] + b[i]);
}

/** One sample's sheet step. x: [N][D]. Returns new x and attention [N][N]. */
export function naiveStep(p: NaiveSheet, x: Mat, scale: number, skipAttn: boolean, eps: number): { x: Mat; attn: Mat } {
  const h = x.map((xn, n) => layerNorm(xn, p.norm1.weight[n], p.norm1.bias[n], eps));
  const q = h.map((hn, n) => linear(p.q.weight[n], hn, p.q.bias[n]));
  const k = h.map((hn, n) => linear(p.k.weight[n], hn));
  const attn: Mat = [];
  for (let i = 0; i < p.n; i++) {
    const scores: number[] = [];
    for (let j = 0; j < p.n; j++) {
      let dot = 0;
      for (let c = 0; c < p.qk; c++) dot += q[i][c] * k[j][c];
      scores.push(scale * dot + p.attnBias[i][j]);
    }
    const m = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - m));
    const z = e.reduce((a, b) => a + b, 0);
    attn.push(e.map((v) => v / z));
  }
  const a: Mat = attn.map((row) => {
    const out = new Array(p.d).fill(0);
    row.forEach((w, j) => {
      h[j].forEach((v, c) => {
        out[c] += w * v;
      });
    });
    return out;
  });
  const y = x.map((xn, n) => xn.map((v, c) => (skipAttn ? v + a[n][c] : a[n][c])));
  const out = y.map((yn, n) => {
    const z = layerNorm(yn, p.norm2.weight[n], p.norm2.bias[n], eps);
    const hidden = linear(p.fc1.weight[n], z, p.fc1.bias[n]).map(gelu);
    const m = linear(p.fc2.weight[n], hidden);
    return yn.map((v, c) => v + m[c]);
  });
  return { x: out, attn };
}

/** Apply `depth` steps to each sample of x: [B][N][D]. */
export function naiveSheet(
  p: NaiveSheet,
  x: Mat[],
  depth: number,
  scale: number,
  skipAttn: boolean,
  eps: number,
): { x: Mat[]; attn: Mat[][] } {
  const outX: Mat[] = [];
  const outA: Mat[][] = [];
  for (const sample of x) {
    let s = sample;
    const maps: Mat[] = [];
    for (let t = 0; t < depth; t++) {
      const r = naiveStep(p, s, scale, skipAttn, eps);
      s = r.x;
      maps.push(r.attn);
    }
    outX.push(s);
    outA.push(maps);
  }
  return { x: outX, attn: outA };
}

/** Deterministic pseudo-random numbers in [-1, 1) for test data (mulberry32). */
export function seededValues(seed: number, count: number): number[] {
  let a = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push(((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1);
  }
  return out;
}

/** Nested arrays of numbers: Vec, Mat, Mat[], ... */
export type Nested = number[] | Nested[];

/**
 * Reshape a flat list into nested arrays of the given shape. `T` is the nesting the caller
 * expects (Vec for one dimension, Mat for two, ...); it is inferred from where the result goes.
 */
export function nest<T extends Nested = Nested>(flat: ArrayLike<number>, shape: number[]): T {
  if (shape.length === 1) return Array.from(flat).slice(0, shape[0]) as T;
  const stride = shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0] }, (_, i) =>
    nest(Array.from(flat).slice(i * stride, (i + 1) * stride), shape.slice(1)),
  ) as T;
}
