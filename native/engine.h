// The C interface between the N-API layer (addon.cc, baseline ISA) and the compute engine
// (sheet_kernels.cc, compiled once per ISA into cf_avx512 / cf_avx2 / cf_generic). Plain structs
// and function pointers only: see simd.h for why no C++ library code crosses this line.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Parameter leaves, in the order of SHEET_LEAVES (src/engine/native-sheet.ts).
enum CfLeaf {
  CF_N1W, CF_N1B, CF_QW, CF_QB, CF_KW, CF_VW, CF_VB, CF_OW, CF_OB, CF_BIAS, CF_N2W, CF_N2B,
  CF_F1W, CF_F1B, CF_F2W, CF_NLEAF
};

struct CfConfig {
  int batch, columns, dim, qk_dim, heads, mlp_dim, depth;
  int recurrent, untie_norm, untie_attn, untie_mlp, value_proj, attn_bias, skip_attn;
  float attn_scale, norm_eps;
  int sources;  // K of a sparse sheet, 0 dense
  int inject_every;
  int threads;  // >= 1
};

struct CfForward {
  const float* params[CF_NLEAF];  // null for absent leaves
  const float* x0;                // [B, N, D]
  const float* drive;             // [B, N, D] or null
  const int32_t* idx;             // [N, K] or null (validated)
  const float* wiring;            // [N, W] or null
  int batch;
  float* x_out;      // [B, N, D]
  float* attn_out;   // [B, depth, N, W] or null
  float* attn_mean;  // [N, W]
  double wiring_cost, l1, hoyer;  // out
};

struct CfBackward {
  const float* params[CF_NLEAF];  // the last training forward's parameters
  const float* dx;                // [B, N, D]
  float wiring_coef, activation_coef;
  float* grads[CF_NLEAF];  // null for absent leaves
  float* dx0;              // [B, N, D]
  float* ddrive;           // [B, N, D] or null
};

struct CfEngineOps {
  const char* name;
  // Allocates every buffer; null when out of memory. *bytes gets the allocation size.
  void* (*create)(const CfConfig* config, size_t* bytes);
  void (*destroy)(void* engine);
  void (*forward)(void* engine, CfForward* args);
  void (*backward)(void* engine, CfBackward* args);
};

// Own element count of a leaf (one block of one column) and whether it has the [N] axis.
static inline size_t cf_leaf_own(const CfConfig* c, int leaf) {
  size_t d = c->dim, hq = (size_t)c->heads * c->qk_dim, m = c->mlp_dim, n = c->columns;
  size_t w = c->sources > 0 ? (size_t)c->sources : n;
  switch (leaf) {
    case CF_N1W: case CF_N1B: case CF_N2W: case CF_N2B: case CF_VB: case CF_OB: return d;
    case CF_QW: case CF_KW: return hq * d;
    case CF_QB: return hq;
    case CF_VW: case CF_OW: return d * d;
    case CF_BIAS: return n * w;
    case CF_F1W: return m * d;
    case CF_F1B: return m;
    case CF_F2W: return d * m;
  }
  return 0;
}
static inline int cf_leaf_untied(const CfConfig* c, int leaf) {
  switch (leaf) {
    case CF_N1W: case CF_N1B: case CF_N2W: case CF_N2B: return c->untie_norm;
    case CF_QW: case CF_QB: case CF_KW: case CF_VW: case CF_VB: case CF_OW: case CF_OB: return c->untie_attn;
    case CF_F1W: case CF_F1B: case CF_F2W: return c->untie_mlp;
  }
  return 0;  // the attention bias is per connection
}
static inline int cf_leaf_present(const CfConfig* c, int leaf) {
  if (leaf == CF_VW || leaf == CF_VB || leaf == CF_OW || leaf == CF_OB) return c->value_proj;
  if (leaf == CF_BIAS) return c->attn_bias;
  return 1;
}
// Total element count of a leaf: [depth]? [N]? own.
static inline size_t cf_leaf_size(const CfConfig* c, int leaf) {
  return (c->recurrent ? 1 : (size_t)c->depth) * (cf_leaf_untied(c, leaf) ? (size_t)c->columns : 1) * cf_leaf_own(c, leaf);
}

extern "C" {
const CfEngineOps* cf_engine_avx512();  // null when not compiled in (non-x86)
const CfEngineOps* cf_engine_avx2();
const CfEngineOps* cf_engine_generic();
}
