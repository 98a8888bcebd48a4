/**
 * One strided, batched, tiled GEMM for every matrix product of the sheet (column linears, their
 * weight and input gradients, attention scores, A v and their transposes):
 *
 *   C(z, m, p) = [C(z, m, p) if ACC] + alpha * sum_k A(z, m, k) B(z, k, p) [+ bias(z, p) if BIAS]
 *
 * with z = z1 * Z2 + z2 and every operand addressed by element offset and strides,
 * A(z, m, k) = A[aOff + z1 aZ1 + z2 aZ2 + m aM + k aK] (likewise B with bK, bP and C with cM,
 * cP; bias[biasOff + z1 biasZ1 + p]), so a transposed operand is swapped strides and a tied
 * weight is a zero z stride. A 64-thread workgroup computes a 32 x 32 tile of C (4 x 4 per
 * thread) over K in slices of 16 staged in workgroup memory; loads follow whichever stride is 1.
 * Reductions run in a fixed order: results do not depend on scheduling.
 */
import type { Kernel, Uniforms } from "./program.ts";

export const TILE = 32;
const TK = 16;

export const GEMM: Kernel = {
  name: "gemm",
  fields: ["tilesP", "tilesM", "M", "P", "K", "Z2", "aOff", "aZ1", "aZ2", "aM", "aK", "bOff", "bZ1", "bZ2", "bK", "bP", "cOff", "cZ1", "cZ2", "cM", "cP", "biasOff", "biasZ1", "flags", "alpha:f32"],
  buffers: [
    ["A", "read"],
    ["B", "read"],
    ["C", "read_write"],
    ["bias", "read"],
  ],
  workgroupSize: 64,
  helpers: /* wgsl */ `
var<workgroup> As: array<f32, ${TK * TILE}>;
var<workgroup> Bs: array<f32, ${TK * TILE}>;`,
  body: /* wgsl */ `
  let tp = wid % u.tilesP;
  let rest = wid / u.tilesP;
  let tm = rest % u.tilesM;
  let z = rest / u.tilesM;
  let z1 = z / u.Z2;
  let z2 = z % u.Z2;
  let aBase = u.aOff + z1 * u.aZ1 + z2 * u.aZ2;
  let bBase = u.bOff + z1 * u.bZ1 + z2 * u.bZ2;
  let m0 = tm * ${TILE}u;
  let p0 = tp * ${TILE}u;
  let tx = li % 8u;
  let ty = li / 8u;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
  for (var k0 = 0u; k0 < u.K; k0 += ${TK}u) {
    for (var q = 0u; q < ${(TK * TILE) / 64}u; q++) {
      let e = li + 64u * q;
      var mm: u32; var kk: u32;
      if (u.aK == 1u) { mm = e / ${TK}u; kk = e % ${TK}u; } else { kk = e / ${TILE}u; mm = e % ${TILE}u; }
      var va = 0.0;
      if (m0 + mm < u.M && k0 + kk < u.K) { va = A[aBase + (m0 + mm) * u.aM + (k0 + kk) * u.aK]; }
      As[kk * ${TILE}u + mm] = va;
      var pp: u32; var kb: u32;
      if (u.bP == 1u) { kb = e / ${TILE}u; pp = e % ${TILE}u; } else { pp = e / ${TK}u; kb = e % ${TK}u; }
      var vb = 0.0;
      if (p0 + pp < u.P && k0 + kb < u.K) { vb = B[bBase + (k0 + kb) * u.bK + (p0 + pp) * u.bP]; }
      Bs[kb * ${TILE}u + pp] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = As[kk * ${TILE}u + ty + 8u * i]; b[i] = Bs[kk * ${TILE}u + tx + 8u * i]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] = acc[i * 4u + j] + a[i] * b[j]; }
      }
    }
    workgroupBarrier();
  }
  let cBase = u.cOff + z1 * u.cZ1 + z2 * u.cZ2;
  let biasBase = u.biasOff + z1 * u.biasZ1;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty + 8u * i;
    if (m >= u.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let p = p0 + tx + 8u * j;
      if (p >= u.P) { continue; }
      let idx = cBase + m * u.cM + p * u.cP;
      var v = u.alpha * acc[i * 4u + j];
      if ((u.flags & 2u) != 0u) { v = v + bias[biasBase + p]; }
      if ((u.flags & 1u) != 0u) { v = v + C[idx]; }
      C[idx] = v;
    }
  }`,
};

/** Strides of one GEMM operand: offset, z1 and z2 strides and the two index strides. */
export interface Operand {
  off?: number;
  z1?: number;
  z2?: number;
  /** Row stride (m for A and C, k for B). */
  r: number;
  /** Column stride (k for A, p for B and C). */
  c: number;
}

export interface GemmShape {
  M: number;
  P: number;
  K: number;
  Z1?: number;
  Z2?: number;
  a: Operand;
  b: Operand;
  c: Operand;
  alpha?: number;
  accumulate?: boolean;
  /** bias(z, p) = bias[off + z1 * stride + p] */
  bias?: { off: number; z1: number } | null;
}

/** Uniforms and workgroup count of a GEMM. */
export function gemmUniforms(s: GemmShape): { uniforms: Uniforms; workgroups: number } {
  const Z1 = s.Z1 ?? 1;
  const Z2 = s.Z2 ?? 1;
  const tilesP = Math.ceil(s.P / TILE);
  const tilesM = Math.ceil(s.M / TILE);
  const workgroups = s.M > 0 && s.P > 0 ? tilesP * tilesM * Z1 * Z2 : 0;
  return {
    workgroups,
    uniforms: {
      tilesP,
      tilesM,
      M: s.M,
      P: s.P,
      K: s.K,
      Z2,
      aOff: s.a.off ?? 0,
      aZ1: s.a.z1 ?? 0,
      aZ2: s.a.z2 ?? 0,
      aM: s.a.r,
      aK: s.a.c,
      bOff: s.b.off ?? 0,
      bZ1: s.b.z1 ?? 0,
      bZ2: s.b.z2 ?? 0,
      bK: s.b.r,
      bP: s.b.c,
      cOff: s.c.off ?? 0,
      cZ1: s.c.z1 ?? 0,
      cZ2: s.c.z2 ?? 0,
      cM: s.c.r,
      cP: s.c.c,
      biasOff: s.bias?.off ?? 0,
      biasZ1: s.bias?.z1 ?? 0,
      flags: (s.accumulate ? 1 : 0) | (s.bias ? 2 : 0),
      alpha: s.alpha ?? 1,
    },
  };
}
