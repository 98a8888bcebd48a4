/**
 * Attention kernels beyond the GEMMs: the head mean of the maps (written out and summed for
 * attnMean), and the sparse sheet's [N, K] attention, where column i reads the sources
 * idx[i K + t]: scores, A v, and the backward (dA, dq, and dk, dv gathered through the reverse
 * index: for each source j the connections (i, t) with idx[i K + t] = j, in order of i, so
 * nothing is scattered and sums run in a fixed order).
 *
 * Layouts (as native/sheet_kernels.cc): q, k [B][N][H QK], v, the attention output [B][N][D]
 * (head g owns features g dh .. (g + 1) dh), maps of a batch chunk [b][H][N][W] with b local to
 * the chunk and b0 its first batch element.
 */
import type { Kernel } from "./program.ts";

const G = 256;

/**
 * For e < N W: m_b = mean over heads of a[b][g][e] (sum of a / H, in head order); attn[((b0 + b) S + s) N W + e] = m_b
 * when hasOut; amean[e] += sum_b m_b.
 */
export const HEAD_MEAN: Kernel = {
  name: "head_mean",
  fields: ["NW", "H", "Bc", "b0", "S", "s", "hasOut", "invH:f32"],
  buffers: [
    ["a", "read"],
    ["attn", "read_write"],
    ["amean", "read_write"],
  ],
  workgroupSize: G,
  body: /* wgsl */ `
  let e = wid * ${G}u + li;
  if (e >= u.NW) { return; }
  var acc = amean[e];
  for (var b = 0u; b < u.Bc; b++) {
    var m = 0.0;
    if (u.H == 1u) { m = a[b * u.NW + e]; } else {
      for (var g = 0u; g < u.H; g++) { m = m + u.invH * a[(b * u.H + g) * u.NW + e]; }
    }
    if (u.hasOut != 0u) { attn[((u.b0 + b) * u.S + u.s) * u.NW + e] = m; }
    acc = acc + m;
  }
  amean[e] = acc;`,
};

const SPARSE_FIELDS = ["count", "N", "K", "H", "QK", "dh", "D", "HQ", "b0", "scale:f32"] as const;

/** s[((b H + g) N + i) K + t] = scale * q_{b,i,g} . k_{b,idx[i,t],g}. */
export const SPARSE_SCORES: Kernel = {
  name: "sparse_scores",
  fields: SPARSE_FIELDS,
  buffers: [
    ["q", "read"],
    ["k", "read"],
    ["idx", "read", "i32"],
    ["s", "read_write"],
  ],
  workgroupSize: G,
  body: /* wgsl */ `
  let e = wid * ${G}u + li;
  if (e >= u.count) { return; }
  let t = e % u.K;
  let i = (e / u.K) % u.N;
  let g = (e / (u.K * u.N)) % u.H;
  let b = e / (u.K * u.N * u.H);
  let j = u32(idx[i * u.K + t]);
  let base = (u.b0 + b) * u.N * u.HQ + g * u.QK;
  var acc = 0.0;
  for (var c = 0u; c < u.QK; c++) { acc = acc + q[base + i * u.HQ + c] * k[base + j * u.HQ + c]; }
  s[e] = u.scale * acc;`,
};

/** out[b, i, g dh + c] = sum_t A[b, g, i, t] v[b, idx[i, t], g dh + c]. */
export const SPARSE_AV: Kernel = {
  name: "sparse_av",
  fields: SPARSE_FIELDS,
  buffers: [
    ["a", "read"],
    ["v", "read"],
    ["idx", "read", "i32"],
    ["out", "read_write"],
  ],
  workgroupSize: G,
  body: /* wgsl */ `
  let e = wid * ${G}u + li;
  if (e >= u.count) { return; }
  let c = e % u.dh;
  let g = (e / u.dh) % u.H;
  let i = (e / u.D) % u.N;
  let b = e / (u.D * u.N);
  let vb = (u.b0 + b) * u.N * u.D + g * u.dh + c;
  let ab = ((b * u.H + g) * u.N + i) * u.K;
  var acc = 0.0;
  for (var t = 0u; t < u.K; t++) { acc = acc + a[ab + t] * v[vb + u32(idx[i * u.K + t]) * u.D]; }
  out[vb + i * u.D] = acc;`,
};

/** dA[b, g, i, t] = dout_{b,i,g} . v_{b,idx[i,t],g}. */
export const SPARSE_DA: Kernel = {
  name: "sparse_da",
  fields: SPARSE_FIELDS,
  buffers: [
    ["dout", "read"],
    ["v", "read"],
    ["idx", "read", "i32"],
    ["da", "read_write"],
  ],
  workgroupSize: G,
  body: /* wgsl */ `
  let e = wid * ${G}u + li;
  if (e >= u.count) { return; }
  let t = e % u.K;
  let i = (e / u.K) % u.N;
  let g = (e / (u.K * u.N)) % u.H;
  let b = e / (u.K * u.N * u.H);
  let j = u32(idx[i * u.K + t]);
  let base = (u.b0 + b) * u.N * u.D + g * u.dh;
  var acc = 0.0;
  for (var c = 0u; c < u.dh; c++) { acc = acc + dout[base + i * u.D + c] * v[base + j * u.D + c]; }
  da[e] = acc;`,
};

/** dq[b, i, g QK + c] = sum_t (scale dS[b, g, i, t]) k[b, idx[i, t], g QK + c]. */
export const SPARSE_DQ: Kernel = {
  name: "sparse_dq",
  fields: SPARSE_FIELDS,
  buffers: [
    ["ds", "read"],
    ["k", "read"],
    ["idx", "read", "i32"],
    ["dq", "read_write"],
  ],
  workgroupSize: G,
  body: /* wgsl */ `
  let e = wid * ${G}u + li;
  if (e >= u.count) { return; }
  let c = e % u.QK;
  let g = (e / u.QK) % u.H;
  let i = (e / u.HQ) % u.N;
  let b = e / (u.HQ * u.N);
  let kb = (u.b0 + b) * u.N * u.HQ + g * u.QK + c;
  let sb = ((b * u.H + g) * u.N + i) * u.K;
  var acc = 0.0;
  for (var t = 0u; t < u.K; t++) { acc = acc + (u.scale * ds[sb + t]) * k[kb + u32(idx[i * u.K + t]) * u.HQ]; }
  dq[kb + i * u.HQ] = acc;`,
};

/**
 * mode 0 (dk): out[b, j, g QK + c] = sum_{(i,t) -> j} (scale dS[b, g, i, t]) q[b, i, g QK + c];
 * mode 1 (dv): out[b, j, g dh + c] = sum_{(i,t) -> j} A[b, g, i, t] dout[b, i, g dh + c].
 * revStart [N + 1], revList: connection indices p = i K + t by source.
 */
export const SPARSE_GATHER_BACK: Kernel = {
  name: "sparse_gather_back",
  fields: [...SPARSE_FIELDS, "mode"],
  buffers: [
    ["w", "read"],
    ["x", "read"],
    ["revStart", "read", "i32"],
    ["revList", "read", "i32"],
    ["out", "read_write"],
  ],
  workgroupSize: G,
  body: /* wgsl */ `
  let e = wid * ${G}u + li;
  if (e >= u.count) { return; }
  var F = u.HQ;
  var per = u.QK;
  var coef = u.scale;
  if (u.mode == 1u) { F = u.D; per = u.dh; coef = 1.0; }
  let c = e % per;
  let g = (e / per) % u.H;
  let j = (e / F) % u.N;
  let b = e / (F * u.N);
  let xb = (u.b0 + b) * u.N * F + g * per + c;
  let wb = (b * u.H + g) * u.N * u.K;
  var acc = 0.0;
  let p1 = u32(revStart[j + 1u]);
  for (var q = u32(revStart[j]); q < p1; q++) {
    let p = u32(revList[q]);
    let i = p / u.K;
    acc = acc + (coef * w[wb + p]) * x[xb + i * F];
  }
  out[xb + j * F] = acc;`,
};
