// AdamW on host arrays (decoupled weight decay, as torch.optim.AdamW and src/optim/adamw.ts), one
// leaf at a time, multithreaded over contiguous chunks. Per element, for step t (1-based):
//   g <- g * grad_scale
//   p <- p * (1 - lr * wd)                    (wd = 0 where the decay mask is false)
//   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
//   p <- p - (m / bc1) / (sqrt(v / bc2) + eps) * lr,   bc1 = 1 - b1^t, bc2 = 1 - b2^t
// The arithmetic order follows src/optim/adamw.ts, so both give the same float32 results up to
// rounding of the compiler's contractions.
#pragma once
#include <stddef.h>

struct CfAdamW {
  float lr, beta1, beta2, eps, weight_decay;
  float bc1, bc2;     // bias corrections of this step
  float grad_scale;   // g is multiplied by it first (averaging over micro-batches, clipping)
  int threads;
};

// p, m, v: [n] updated in place; g: [n].
void cf_adamw_leaf(const CfAdamW* a, float* p, const float* g, float* m, float* v, size_t n);

// Sum of squares of g [n] in double (for the global gradient norm), deterministic for a thread count.
double cf_sum_squares(const float* g, size_t n, int threads);
