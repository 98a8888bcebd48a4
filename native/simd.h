// SIMD vectors of one width, written once over GCC vector extensions; this header is compiled
// three times (avx512, avx2, generic) inside the ISA's own namespace (see sheet_kernels.cc).
//
// Nothing from the C++ standard library is used here (or in sheet_kernels.cc): inline library
// functions compiled with AVX-512 flags could otherwise be merged by the linker with the generic
// build's copies and run on a CPU without AVX-512.
#pragma once
#include <stdint.h>
#include <string.h>

#if defined(CF_ISA_AVX512)
#define CF_VBYTES 64
#define CF_MR 8  // GEMM micro-kernel rows
#define CF_NV 2  // GEMM micro-kernel vectors per row (NR = CF_NV * VW)
#elif defined(CF_ISA_AVX2)
#define CF_VBYTES 32
#define CF_MR 6
#define CF_NV 2
#else
#define CF_VBYTES 16
#define CF_MR 6
#define CF_NV 2
#endif

enum { VW = CF_VBYTES / 4 };  // floats per vector
typedef float vf __attribute__((vector_size(CF_VBYTES)));
typedef int32_t vi __attribute__((vector_size(CF_VBYTES)));

#define CF_INLINE static inline __attribute__((always_inline))

CF_INLINE vf vload(const float* p) { vf v; memcpy(&v, p, sizeof v); return v; }
CF_INLINE void vstore(float* p, vf v) { memcpy(p, &v, sizeof v); }
CF_INLINE vf vsplat(float s) {
  vf v = {s};
  vi zero = {};
  return __builtin_shuffle(v, zero);  // broadcast lane 0
}
CF_INLINE vf vmin(vf a, vf b) { return a < b ? a : b; }
CF_INLINE vf vmax(vf a, vf b) { return a > b ? a : b; }
CF_INLINE vf vabs(vf a) { vi i = (vi)a & 0x7fffffff; return (vf)i; }
CF_INLINE float hsum(vf v) {
  float s = 0.f;
  for (int i = 0; i < VW; i++) s += v[i];
  return s;
}
CF_INLINE float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < VW; i++) m = v[i] > m ? v[i] : m;
  return m;
}
// round to nearest (|x| < 2^22)
CF_INLINE vf vround(vf x) { return (x + 12582912.0f) - 12582912.0f; }

// exp(x), relative error < 1e-7 (Cephes expf polynomial); x is clamped to [-87.34, 88.38]
// (exp of a smaller argument gives ~1e-38 instead of 0; arguments here are <= 0 or moderate).
CF_INLINE vf vexp(vf x) {
  x = vmin(vmax(x, vsplat(-87.33654f)), vsplat(88.37626f));
  vf n = vround(x * 1.44269504088896341f);
  vf r = n * -0.693359375f + x;
  r = n * 2.12194440e-4f + r;
  vf p = vsplat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  vi e = (__builtin_convertvector(n, vi) + 127) << 23;
  return p * (vf)e;
}

// erf(x), absolute error < 1.3e-7 over all floats: x * P(x^2) for |x| < 0.921875, else
// sign(x) * (1 - exp(Q(|x|))) with Q a fit of log(erfc) on [0.92, 4] (erf = 1 in float beyond).
CF_INLINE vf verf(vf x) {
  vf s = x * x;
  vf p = vsplat(-0.0006013393285684288f);
  p = p * s + 0.004998000804334879f;
  p = p * s + -0.026770232245326042f;
  p = p * s + 0.11281926929950714f;
  p = p * s + -0.3761250674724579f;
  p = p * s + 1.1283791065216064f;
  vf small = p * x;
  vf t = vmin(vabs(x), vsplat(4.0f));
  vf q = vsplat(1.032884370033571e-06f);
  q = q * t + -1.659137342358008e-05f;
  q = q * t + 9.438349661650136e-05f;
  q = q * t + -2.2947016987018287e-05f;
  q = q * t + -0.0030339527875185013f;
  q = q * t + 0.023278165608644485f;
  q = q * t + -0.1063365563750267f;
  q = q * t + -0.6346375346183777f;
  q = q * t + -1.1290252208709717f;
  q = q * t + 9.372414933750406e-05f;
  vf big = 1.0f - vexp(q);
  vi sign = (vi)x & (int32_t)0x80000000;
  big = (vf)((vi)big | sign);
  return vabs(x) < 0.921875f ? small : big;
}

// GELU (exact erf form) and its derivative.
CF_INLINE vf vgelu(vf u) { return u * (0.5f * (1.0f + verf(u * 0.70710678118654752f))); }
CF_INLINE vf vgelu_grad(vf u) {
  vf cdf = 0.5f * (1.0f + verf(u * 0.70710678118654752f));
  vf pdf = vexp(-0.5f * u * u) * 0.39894228040143268f;
  return cdf + u * pdf;
}
