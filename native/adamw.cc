// AdamW and the gradient norm on host arrays: see adamw.h. Memory-bound loops, compiled for the
// baseline ISA (the compiler's SSE2 vectorisation saturates memory bandwidth already).
#include "adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "threads.h"

namespace {

constexpr size_t kChunk = 1 << 16;  // elements per task

struct Update {
  const CfAdamW* a;
  float *p, *m, *v;
  const float* g;
  size_t n;
};

void update_task(void* ctx, int begin, int end, int) {
  const Update& u = *static_cast<Update*>(ctx);
  const CfAdamW& a = *u.a;
  const float keep = 1 - a.lr * a.weight_decay, c1 = 1 - a.beta1, c2 = 1 - a.beta2;
  for (int ch = begin; ch < end; ch++) {
    size_t lo = (size_t)ch * kChunk, hi = std::min(u.n, lo + kChunk);
    for (size_t i = lo; i < hi; i++) {
      float p = a.weight_decay != 0 ? u.p[i] * keep : u.p[i];
      float g = u.g[i] * a.grad_scale;
      float m = u.m[i] * a.beta1 + g * c1;
      float v = u.v[i] * a.beta2 + (g * g) * c2;
      u.m[i] = m;
      u.v[i] = v;
      u.p[i] = p - (m / a.bc1) / (std::sqrt(v / a.bc2) + a.eps) * a.lr;
    }
  }
}

struct Squares {
  const float* g;
  size_t n;
  double* partial;  // per chunk
};

void squares_task(void* ctx, int begin, int end, int) {
  const Squares& s = *static_cast<Squares*>(ctx);
  for (int ch = begin; ch < end; ch++) {
    size_t lo = (size_t)ch * kChunk, hi = std::min(s.n, lo + kChunk);
    double sum = 0;
    for (size_t i = lo; i < hi; i++) sum += (double)s.g[i] * s.g[i];
    s.partial[ch] = sum;
  }
}

int chunks_of(size_t n) { return (int)((n + kChunk - 1) / kChunk); }

}  // namespace

void cf_adamw_leaf(const CfAdamW* a, float* p, const float* g, float* m, float* v, size_t n) {
  Update u{a, p, m, v, g, n};
  int chunks = chunks_of(n);
  cf_parallel_for(chunks > 1 ? a->threads : 1, chunks, update_task, &u);
}

double cf_sum_squares(const float* g, size_t n, int threads) {
  int chunks = chunks_of(n);
  std::vector<double> partial(chunks);
  Squares s{g, n, partial.data()};
  cf_parallel_for(chunks > 1 ? threads : 1, chunks, squares_task, &s);
  double sum = 0;
  for (double x : partial) sum += x;  // fixed order: the same for any thread count
  return sum;
}
