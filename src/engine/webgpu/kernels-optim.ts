/**
 * Optimiser kernels of the resident training state (resident.ts): AdamW with decoupled weight
 * decay, bias correction and a gradient scale, element-wise in the order of native/adamw.cc and
 * src/engine/webgpu/host-optim.ts; and a fixed-order chunked sum (of x, x^2 or a non-finite
 * count) that reduces a gradient to one float in a few dispatches. No workgroup tree: every
 * thread sums its own chunk sequentially (a tree reduction gave wrong sums on Dawn's OpenGL ES
 * backend over llvmpipe, see kernels-rows.ts).
 */
import type { Kernel } from "./program.ts";

export const OPTIM_GROUP = 64;
/** Consecutive values one thread of CHUNK_SUM adds. */
export const SUM_CHUNK = 64;

/**
 * Slots of the step's hyper-parameter buffer (float32, written once per update): lr, beta1,
 * beta2, eps, bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, the gradient scale, c1 = 1 - beta1,
 * c2 = 1 - beta2, then keep_l = 1 - lr wd_l per leaf (1 where a leaf has no decay, and p * 1 is p).
 */
export const HYPER = { lr: 0, beta1: 1, beta2: 2, eps: 3, bc1: 4, bc2: 5, scale: 6, c1: 7, c2: 8, keep: 9 } as const;

/** One leaf of AdamW in place: p, m, v [count] with the gradient g [count] and keep = hyper[keep + leaf]. */
export const ADAMW: Kernel = {
  name: "adamw",
  fields: ["count", "leaf"],
  buffers: [
    ["p", "read_write"],
    ["g", "read"],
    ["m", "read_write"],
    ["v", "read_write"],
    ["hyper", "read"],
  ],
  workgroupSize: OPTIM_GROUP,
  body: /* wgsl */ `
  let i = wid * ${OPTIM_GROUP}u + li;
  if (i >= u.count) { return; }
  let lr = hyper[${HYPER.lr}];
  let beta1 = hyper[${HYPER.beta1}];
  let beta2 = hyper[${HYPER.beta2}];
  let keep = hyper[${HYPER.keep}u + u.leaf];
  let pk = p[i] * keep;
  let gs = g[i] * hyper[${HYPER.scale}];
  let mi = m[i] * beta1 + gs * hyper[${HYPER.c1}];
  let vi = v[i] * beta2 + (gs * gs) * hyper[${HYPER.c2}];
  m[i] = mi;
  v[i] = vi;
  p[i] = pk - (mi / hyper[${HYPER.bc1}]) / (sqrt(vi / hyper[${HYPER.bc2}]) + hyper[${HYPER.eps}]) * lr;`,
};

/**
 * out[oOff + c] = sum, in index order, of f(x[xOff + i]) over i in [c SUM_CHUNK, min((c + 1) SUM_CHUNK, n)),
 * for chunks c < count; f is x (mode 0), x^2 (mode 1) or 1 where x is NaN or infinite, else 0
 * (mode 2: tested on the bits, which no fast-math assumption can drop).
 */
export const CHUNK_SUM: Kernel = {
  name: "chunk_sum",
  fields: ["count", "n", "xOff", "oOff", "mode"],
  buffers: [
    ["x", "read"],
    ["out", "read_write"],
  ],
  workgroupSize: OPTIM_GROUP,
  body: /* wgsl */ `
  let c = wid * ${OPTIM_GROUP}u + li;
  if (c >= u.count) { return; }
  let lo = c * ${SUM_CHUNK}u;
  let hi = min(lo + ${SUM_CHUNK}u, u.n);
  var s = 0.0;
  for (var i = lo; i < hi; i++) {
    let v = x[u.xOff + i];
    if (u.mode == 1u) { s = s + v * v; }
    else if (u.mode == 2u) { if ((bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u) { s = s + 1.0; } }
    else { s = s + v; }
  }
  out[u.oOff + c] = s;`,
};
