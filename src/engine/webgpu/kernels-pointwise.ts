/**
 * Element-wise kernels (256 threads, one element each) and the fixed-order sum over rows that
 * forms bias, LayerNorm-affine and attention-bias gradients.
 */
import type { Kernel } from "./program.ts";
import { WGSL_MATH } from "./wgsl-math.ts";

export const POINTWISE_GROUP = 256;

/** out[oOff + e] = (ACC ? out : 0) + x[xOff + e] + (ADD ? y[yOff + e] : 0); flags: 1 ACC, 2 ADD, 4 ZERO (out = 0). */
export const AXPY: Kernel = {
  name: "axpy",
  fields: ["count", "xOff", "yOff", "oOff", "flags"],
  buffers: [
    ["x", "read"],
    ["y", "read"],
    ["out", "read_write"],
  ],
  workgroupSize: POINTWISE_GROUP,
  body: /* wgsl */ `
  let e = wid * ${POINTWISE_GROUP}u + li;
  if (e >= u.count) { return; }
  if ((u.flags & 4u) != 0u) { out[u.oOff + e] = 0.0; return; }
  var v = x[u.xOff + e];
  if ((u.flags & 2u) != 0u) { v = v + y[u.yOff + e]; }
  if ((u.flags & 1u) != 0u) { v = out[u.oOff + e] + v; }
  out[u.oOff + e] = v;`,
};

/** The activation-L1 term: out[e] += act * sign(x[xOff + e]), act = scalars[1]. */
export const ADD_SIGN: Kernel = {
  name: "add_sign",
  fields: ["count", "xOff"],
  buffers: [
    ["x", "read"],
    ["out", "read_write"],
    ["scalars", "read"],
  ],
  workgroupSize: POINTWISE_GROUP,
  body: /* wgsl */ `
  let e = wid * ${POINTWISE_GROUP}u + li;
  if (e >= u.count) { return; }
  let act = scalars[1];
  if (act == 0.0) { return; }
  let v = x[u.xOff + e];
  var sg = 0.0;
  if (v > 0.0) { sg = act; } else if (v < 0.0) { sg = -act; }
  out[e] = out[e] + sg;`,
};

/** g[e] = GELU(x[e]) (mode 0) or g[e] = g[e] * GELU'(x[e]) (mode 1: the backward). */
export const GELU: Kernel = {
  name: "gelu",
  fields: ["count", "mode"],
  buffers: [
    ["x", "read"],
    ["g", "read_write"],
  ],
  workgroupSize: POINTWISE_GROUP,
  helpers: WGSL_MATH,
  body: /* wgsl */ `
  let e = wid * ${POINTWISE_GROUP}u + li;
  if (e >= u.count) { return; }
  let v = x[e];
  if (u.mode == 0u) { g[e] = cf_gelu(v); } else { g[e] = g[e] * cf_gelu_grad(v); }`,
};

/**
 * out[oOff + z oZ + f] (+)= sum_{r < R} x[xOff + z xZ + r xR + f] for z < Z, f < F, summed in
 * order of r (flags 1: accumulate into out).
 */
export const ROWSUM: Kernel = {
  name: "rowsum",
  fields: ["count", "F", "R", "xOff", "xZ", "xR", "oOff", "oZ", "flags"],
  buffers: [
    ["x", "read"],
    ["out", "read_write"],
  ],
  workgroupSize: POINTWISE_GROUP,
  body: /* wgsl */ `
  let e = wid * ${POINTWISE_GROUP}u + li;
  if (e >= u.count) { return; }
  let f = e % u.F;
  let z = e / u.F;
  let base = u.xOff + z * u.xZ + f;
  var s = 0.0;
  for (var r = 0u; r < u.R; r++) { s = s + x[base + r * u.xR]; }
  let o = u.oOff + z * u.oZ + f;
  if ((u.flags & 1u) != 0u) { s = out[o] + s; }
  out[o] = s;`,
};
