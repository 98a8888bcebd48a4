/**
 * Row kernels: one 64-thread workgroup per row, reductions through workgroup memory in a fixed
 * order. LayerNorm forward (statistics and output, or the output from saved statistics: the
 * backward's recomputation) and backward, the softmax with the learned bias and its backward
 * with the wiring cost folded in, and the per-row activity sums (|x| and x^2) of the L1 penalty
 * and the Hoyer measure. Semantics follow native/sheet_kernels.cc (ln_forward, ln_backward,
 * softmax_row, softmax_back_row, the statistics in col_forward2).
 */
import type { Kernel } from "./program.ts";
import { WGSL_MATH } from "./wgsl-math.ts";

/**
 * Workgroup sum and max of one value per thread: every thread reads all 64 partials in order
 * after one barrier (a fixed order, the same result in every thread). Not a tree: on Dawn's
 * OpenGL ES backend over llvmpipe a tree reduction (a barrier inside a loop whose body
 * branches on the thread index) returns wrong sums.
 */
const REDUCE = /* wgsl */ `
var<workgroup> red: array<f32, 64>;
fn wg_sum(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  var r = 0.0;
  for (var s = 0u; s < 64u; s++) { r = r + red[s]; }
  workgroupBarrier();
  return r;
}
fn wg_max(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  var r = red[0];
  for (var s = 1u; s < 64u; s++) { r = max(r, red[s]); }
  workgroupBarrier();
  return r;
}`;

/**
 * LayerNorm of rows r = b * N + n of D features: x[xOff + r D + d] -> h[hOff + r D + d] with the
 * affine of column n (w[wOff + n wN + d], likewise b). mode 0: compute mu, rs and store them at
 * stat[muOff + r], stat[rsOff + r]; mode 1: read them (recomputation).
 */
export const LN_FORWARD: Kernel = {
  name: "ln_forward",
  fields: ["N", "D", "xOff", "hOff", "wOff", "wN", "muOff", "rsOff", "mode", "eps:f32"],
  buffers: [
    ["x", "read"],
    ["w", "read"],
    ["bb", "read"],
    ["h", "read_write"],
    ["stat", "read_write"],
  ],
  workgroupSize: 64,
  helpers: REDUCE,
  body: /* wgsl */ `
  let r = wid;
  let n = r % u.N;
  let xb = u.xOff + r * u.D;
  var mu: f32;
  var rs: f32;
  if (u.mode == 0u) {
    var s = 0.0;
    for (var d = li; d < u.D; d += 64u) { s = s + x[xb + d]; }
    mu = wg_sum(s, li) / f32(u.D);
    var v = 0.0;
    for (var d = li; d < u.D; d += 64u) { let t = x[xb + d] - mu; v = v + t * t; }
    let vr = wg_sum(v, li) / f32(u.D);
    rs = 1.0 / sqrt(vr + u.eps);
    if (li == 0u) { stat[u.muOff + r] = mu; stat[u.rsOff + r] = rs; }
  } else {
    mu = stat[u.muOff + r];
    rs = stat[u.rsOff + r];
  }
  let wb = u.wOff + n * u.wN;
  for (var d = li; d < u.D; d += 64u) {
    h[u.hOff + r * u.D + d] = (x[xb + d] - mu) * rs * w[wb + d] + bb[wb + d];
  }`,
};

/**
 * LayerNorm backward of rows r: dx[r D + d] += rs (g - mean_d g - xhat mean_d(g xhat)),
 * g = dh w; also writes pw[r D + d] = dh xhat (summed into the weight gradient by ROWSUM; the
 * bias gradient is the row sum of dh itself).
 */
export const LN_BACKWARD: Kernel = {
  name: "ln_backward",
  fields: ["N", "D", "xOff", "wOff", "wN", "muOff", "rsOff"],
  buffers: [
    ["dh", "read"],
    ["x", "read"],
    ["stat", "read"],
    ["w", "read"],
    ["dx", "read_write"],
    ["pw", "read_write"],
  ],
  workgroupSize: 64,
  helpers: REDUCE,
  body: /* wgsl */ `
  let r = wid;
  let n = r % u.N;
  let xb = u.xOff + r * u.D;
  let rb = r * u.D;
  let wb = u.wOff + n * u.wN;
  let mu = stat[u.muOff + r];
  let rs = stat[u.rsOff + r];
  var a = 0.0;
  var c = 0.0;
  for (var d = li; d < u.D; d += 64u) {
    let g = dh[rb + d] * w[wb + d];
    let xh = (x[xb + d] - mu) * rs;
    a = a + g;
    c = c + g * xh;
  }
  let mg = wg_sum(a, li) / f32(u.D);
  let mgx = wg_sum(c, li) / f32(u.D);
  for (var d = li; d < u.D; d += 64u) {
    let dhv = dh[rb + d];
    let xh = (x[xb + d] - mu) * rs;
    dx[rb + d] = dx[rb + d] + rs * (dhv * w[wb + d] - mg - xh * mgx);
    pw[rb + d] = dhv * xh;
  }`,
};

/**
 * Softmax of rows r < R of W scores in place, s[sOff + r W + j] = softmax_j(s + bias[bOff + i W + j]),
 * i = r % N (the target column); bias only when hasBias.
 */
export const SOFTMAX: Kernel = {
  name: "softmax",
  fields: ["N", "W", "sOff", "bOff", "hasBias"],
  buffers: [
    ["s", "read_write"],
    ["bias", "read"],
  ],
  workgroupSize: 64,
  helpers: REDUCE + WGSL_MATH,
  body: /* wgsl */ `
  let r = wid;
  let i = r % u.N;
  let sb = u.sOff + r * u.W;
  let bb = u.bOff + i * u.W;
  var m = -3.0e38;
  for (var j = li; j < u.W; j += 64u) {
    var t = s[sb + j];
    if (u.hasBias != 0u) { t = t + bias[bb + j]; s[sb + j] = t; }
    m = max(m, t);
  }
  let mx = wg_max(m, li);
  var acc = 0.0;
  for (var j = li; j < u.W; j += 64u) {
    let e = cf_exp(s[sb + j] - mx);
    s[sb + j] = e;
    acc = acc + e;
  }
  let inv = 1.0 / wg_sum(acc, li);
  for (var j = li; j < u.W; j += 64u) { s[sb + j] = s[sb + j] * inv; }`,
};

/**
 * Softmax backward of rows r, in place over g: g = dA (+ cw * wir[i W + j]); dS = A (g - sum_j A g).
 * cw = scalars[0] (0: no wiring term).
 */
export const SOFTMAX_BACKWARD: Kernel = {
  name: "softmax_backward",
  fields: ["N", "W", "aOff", "gOff"],
  buffers: [
    ["a", "read"],
    ["g", "read_write"],
    ["wir", "read"],
    ["scalars", "read"],
  ],
  workgroupSize: 64,
  helpers: REDUCE,
  body: /* wgsl */ `
  let r = wid;
  let i = r % u.N;
  let ab = u.aOff + r * u.W;
  let gb = u.gOff + r * u.W;
  let cw = scalars[0];
  var dot = 0.0;
  for (var j = li; j < u.W; j += 64u) {
    var t = g[gb + j];
    if (cw != 0.0) { t = t + cw * wir[i * u.W + j]; g[gb + j] = t; }
    dot = dot + a[ab + j] * t;
  }
  let tot = wg_sum(dot, li);
  for (var j = li; j < u.W; j += 64u) { g[gb + j] = a[ab + j] * (g[gb + j] - tot); }`,
};

/** Per row r of D features: out[oOff + 2 r] = sum |x|, out[oOff + 2 r + 1] = sum x^2. */
export const ROW_ACTIVITY: Kernel = {
  name: "row_activity",
  fields: ["D", "oOff"],
  buffers: [
    ["x", "read"],
    ["out", "read_write"],
  ],
  workgroupSize: 64,
  helpers: REDUCE,
  body: /* wgsl */ `
  let r = wid;
  var s1 = 0.0;
  var s2 = 0.0;
  for (var d = li; d < u.D; d += 64u) { let v = x[r * u.D + d]; s1 = s1 + abs(v); s2 = s2 + v * v; }
  let a1 = wg_sum(s1, li);
  let a2 = wg_sum(s2, li);
  if (li == 0u) { out[u.oOff + 2u * r] = a1; out[u.oOff + 2u * r + 1u] = a2; }`,
};
