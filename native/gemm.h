// One register-blocked GEMM for everything (included inside the ISA namespace, after simd.h).
//
//   C[i, j] = (acc ? C[i, j] : 0) + alpha * sum_k A(i, k) * B[k, j]
//
// A(i, k) = A[i * sam + k * sak]: any strides (a transposed operand is just swapped strides),
// read one scalar at a time and broadcast. B: rows of Nn contiguous floats, row stride ldb.
// C: rows of Nn contiguous floats, row stride ldc. The micro-kernel keeps an MR x (NV * VW)
// tile of C in registers; edges: fewer rows / vectors by template, and the last partial vector
// of columns through a zero-padded copy of B and a temporary C tile (no out-of-bounds access).
#pragma once

template <int R, int V>
CF_INLINE void kern(long K, const float* A, long sam, long sak, const float* B, long ldb, float* C, long ldc, float alpha, int acc) {
  vf c[R][V];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < V; v++) c[r][v] = vsplat(0.f);
  const float* ar[R];
  for (int r = 0; r < R; r++) ar[r] = A + r * sam;
#pragma GCC unroll 2
  for (long k = 0; k < K; k++) {
    vf b[V];
    for (int v = 0; v < V; v++) b[v] = vload(B + v * VW);
    for (int r = 0; r < R; r++) {
      vf a = vsplat(ar[r][0]);
      for (int v = 0; v < V; v++) c[r][v] += a * b[v];
      ar[r] += sak;
    }
    B += ldb;
  }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < V; v++) {
      float* p = C + r * ldc + v * VW;
      vf o = c[r][v] * alpha;
      if (acc) o += vload(p);
      vstore(p, o);
    }
}

typedef void (*kern_fn)(long, const float*, long, long, const float*, long, float*, long, float, int);

template <int R, int V>
static void kern_call(long K, const float* A, long sam, long sak, const float* B, long ldb, float* C, long ldc, float alpha, int acc) {
  kern<R, V>(K, A, sam, sak, B, ldb, C, ldc, alpha, acc);
}

template <int V>
static kern_fn kern_rows(int r) {
  switch (r) {
    case 1: return kern_call<1, V>;
    case 2: return kern_call<2, V>;
    case 3: return kern_call<3, V>;
    case 4: return kern_call<4, V>;
    case 5: return kern_call<5, V>;
    case 6: return kern_call<6, V>;
#if CF_MR > 6
    case 7: return kern_call<7, V>;
    case 8: return kern_call<8, V>;
#endif
#if CF_MR > 8
    case 9: return kern_call<9, V>;
    case 10: return kern_call<10, V>;
    case 11: return kern_call<11, V>;
    case 12: return kern_call<12, V>;
#endif
  }
  return nullptr;
}

static kern_fn kern_pick(int r, int v) {
  switch (v) {
    case 1: return kern_rows<1>(r);
#if CF_NV > 1
    case 2: return kern_rows<2>(r);
#endif
#if CF_NV > 2
    case 3: return kern_rows<3>(r);
    case 4: return kern_rows<4>(r);
#endif
  }
  return nullptr;
}

// Scratch for gemm: at least (K + CF_MR) * VW floats.
static void gemm(long M, long Nn, long K, float alpha, const float* A, long sam, long sak, const float* B, long ldb, int acc, float* C, long ldc,
                 float* scratch) {
  if (M <= 0 || Nn <= 0) return;
  if (K <= 0) {
    if (!acc)
      for (long i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(float) * Nn);
    return;
  }
  const long NR = CF_NV * VW;
  long j = 0;
  for (; j + NR <= Nn; j += NR) {
    for (long i = 0; i < M; i += CF_MR) {
      long r = M - i < CF_MR ? M - i : CF_MR;
      if (r == CF_MR)
        kern<CF_MR, CF_NV>(K, A + i * sam, sam, sak, B + j, ldb, C + i * ldc + j, ldc, alpha, acc);
      else
        kern_pick((int)r, CF_NV)(K, A + i * sam, sam, sak, B + j, ldb, C + i * ldc + j, ldc, alpha, acc);
    }
  }
  long nv = (Nn - j) / VW;
  if (nv > 0) {
    for (long i = 0; i < M; i += CF_MR) {
      long r = M - i < CF_MR ? M - i : CF_MR;
      kern_pick((int)r, (int)nv)(K, A + i * sam, sam, sak, B + j, ldb, C + i * ldc + j, ldc, alpha, acc);
    }
    j += nv * VW;
  }
  long w = Nn - j;
  if (w > 0) {
    float* pb = scratch;  // [K][VW], zero padded
    float* tile = scratch + K * VW;  // [MR][VW]
    for (long k = 0; k < K; k++) {
      float* d = pb + k * VW;
      const float* s = B + k * ldb + j;
      for (long x = 0; x < VW; x++) d[x] = x < w ? s[x] : 0.f;
    }
    for (long i = 0; i < M; i += CF_MR) {
      long r = M - i < CF_MR ? M - i : CF_MR;
      kern_pick((int)r, 1)(K, A + i * sam, sam, sak, pb, VW, tile, VW, alpha, 0);
      for (long rr = 0; rr < r; rr++) {
        float* c = C + (i + rr) * ldc + j;
        for (long x = 0; x < w; x++) c[x] = (acc ? c[x] : 0.f) + tile[rr * VW + x];
      }
    }
  }
}
