// The column sheet's forward and hand-derived backward, compiled once per ISA (binding.gyp defines
// CF_ISA_AVX512, CF_ISA_AVX2 or nothing and passes the matching -m flags); everything lives in
// that ISA's namespace and is reached through cf_engine_<isa>() (engine.h).
//
// Layouts. B batch, Bp = B rounded up to the vector width VW, N columns, D dim, H heads,
// QK query/key width per head, HQ = H * QK, dh = D / H, M mlp width, S depth, W = N (dense) or
// K (sparse) attention width.
//   - "lane" layout [N][F][Bp]: per column n a [F][Bp] block, the batch along SIMD lanes. The
//     per-column work (LayerNorms, linears, GELU) runs on these: a column linear is
//     Y[out][Bp] = W[out][in] * X[in][Bp], one GEMM with no transposes. Lanes b >= B are zero in
//     the inputs and cotangents and never reach a result (reductions over the batch are masked).
//   - "natural" layout [B][N][F] (the API's; internally with a padded batch stride): q, k, v, the
//     attention output and their cotangents, so attention runs per (batch, head) as GEMMs on
//     L2-resident blocks of RB target rows (flash-style: no N x N map is ever stored).
// Memory traffic, not arithmetic, limits this machine, so the tape keeps only what is costly to
// recompute: per step the states, LayerNorm statistics, y (after the attention residual), fc1's
// pre-activation u, q, k, v and (value_proj) the attention output. The backward recomputes the
// LayerNorm outputs, GELU(u) and the attention maps. Recurrent sheets with wide columns defer
// the untied weight gradients: each step's output cotangents are kept and dW = sum_s dY_s X_s^T
// is one GEMM at the end instead of a read and write of every gradient block at every step.
// Everything is allocated in create(), for config.batch.
//
// Threads: every phase is a parallel loop over columns or batches in CF_CHUNKS fixed chunks;
// sums across columns or batches (shared-leaf gradients, the attention bias gradient, attnMean)
// go to per-chunk buffers reduced in chunk order, so results are bit-identical for any thread
// count and any scheduling.
#include "engine.h"
#include "threads.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(CF_ISA_AVX512)
#define CF_NS cf_avx512
#define CF_ENTRY cf_engine_avx512
#define CF_NAME "avx512"
#elif defined(CF_ISA_AVX2)
#define CF_NS cf_avx2
#define CF_ENTRY cf_engine_avx2
#define CF_NAME "avx2"
#else
#define CF_NS cf_generic
#define CF_ENTRY cf_engine_generic
#define CF_NAME "generic"
#endif

#if (defined(CF_ISA_AVX512) || defined(CF_ISA_AVX2)) && !defined(__x86_64__)
extern "C" const CfEngineOps* CF_ENTRY() { return nullptr; }
#else

namespace CF_NS {

#include "simd.h"
#include "gemm.h"

// Optional phase timing (env COLUMNFORMER_PROFILE=1): wall milliseconds per phase, to stderr.
static double now_ms() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}
struct Prof {
  int on;
  double t[8];
  double last;
  void start() {
    if (on) last = now_ms();
  }
  void lap(int i) {
    if (!on) return;
    double n = now_ms();
    t[i] += n - last;
    last = n;
  }
  void report(const char* what, const char* const* names, int count) {
    if (!on) return;
    fprintf(stderr, "columnformer %s:", what);
    for (int i = 0; i < count; i++) fprintf(stderr, " %s %.1f", names[i], t[i]);
    fprintf(stderr, " ms\n");
    memset(t, 0, sizeof t);
  }
};

CF_INLINE long lmin(long a, long b) { return a < b ? a : b; }
CF_INLINE long lmax(long a, long b) { return a > b ? a : b; }

// Run f(begin, end, worker, chunk) over [0, count) on the pool: CF_CHUNKS fixed chunks claimed by
// the threads (threads.h). Sums over columns or batches go to per-chunk buffers, reduced in chunk
// order: results do not depend on scheduling or on the thread count.
enum { CF_CHUNKS = 8 };
template <class F>
static void tramp(void* ctx, int begin, int end, int worker, int chunk) {
  (*(F*)ctx)(begin, end, worker, chunk);
}
template <class F>
static void par(int nt, long count, F f) {
  cf_parallel_chunks(nt, (int)count, CF_CHUNKS, tramp<F>, &f);
}

static float* falloc(size_t n) {
  if (n == 0) n = 1;
  void* p = nullptr;
  if (posix_memalign(&p, 64, n * sizeof(float)) != 0) return nullptr;
  return (float*)p;
}

// ---------------------------------------------------------------------------------------------
// Small vector helpers on contiguous rows (any length; scalar tails).

static float dotv(const float* a, const float* b, long n) {
  vf acc = vsplat(0.f);
  long i = 0;
  for (; i + VW <= n; i += VW) acc += vload(a + i) * vload(b + i);
  float s = hsum(acc);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}
static void axpyv(float alpha, const float* x, float* y, long n) {
  long i = 0;
  vf va = vsplat(alpha);
  for (; i + VW <= n; i += VW) vstore(y + i, vload(y + i) + va * vload(x + i));
  for (; i < n; i++) y[i] += alpha * x[i];
}

// Row softmax in place: r = softmax(r + bias) (bias may be null). Three passes: bias and max,
// exp and sum, scale.
static void softmax_row(float* r, const float* bias, long n) {
  long i = 0;
  vf m = vsplat(-3.0e38f);
  if (bias) {
    for (; i + VW <= n; i += VW) {
      vf t = vload(r + i) + vload(bias + i);
      vstore(r + i, t);
      m = vmax(m, t);
    }
  } else {
    for (; i + VW <= n; i += VW) m = vmax(m, vload(r + i));
  }
  float mx = hmax(m);
  for (; i < n; i++) {
    if (bias) r[i] += bias[i];
    mx = r[i] > mx ? r[i] : mx;
  }
  vf vm = vsplat(mx);
  vf acc = vsplat(0.f);
  for (i = 0; i + VW <= n; i += VW) {
    vf e = vexp(vload(r + i) - vm);
    vstore(r + i, e);
    acc += e;
  }
  float sum = hsum(acc);
  if (i < n) {
    float tmp[VW];
    long w = n - i;
    for (long x = 0; x < VW; x++) tmp[x] = x < w ? r[i + x] - mx : 0.f;
    vf e = vexp(vload(tmp));
    for (long x = 0; x < w; x++) {
      r[i + x] = e[x];
      sum += e[x];
    }
  }
  float inv = 1.f / sum;
  vf vinv = vsplat(inv);
  for (i = 0; i + VW <= n; i += VW) vstore(r + i, vload(r + i) * vinv);
  for (; i < n; i++) r[i] *= inv;
}

// dS = A * (G - sum_j A G) over a row, G = dA (+ cw * wiring row); in place over g.
static void softmax_back_row(const float* a, float* g, const float* wrow, float cw, long n) {
  if (wrow)
    for (long i = 0; i < n; i++) g[i] += cw * wrow[i];
  float dot = dotv(a, g, n);
  long i = 0;
  vf vd = vsplat(dot);
  for (; i + VW <= n; i += VW) vstore(g + i, vload(a + i) * (vload(g + i) - vd));
  for (; i < n; i++) g[i] = a[i] * (g[i] - dot);
}

// ---------------------------------------------------------------------------------------------
// Transposes. In-register VW x VW transpose by recursive swaps of off-diagonal blocks (one
// two-input shuffle per output vector and stage), then plain loops for the edges.
template <int H>
CF_INLINE void tstage(vf* r) {
  vi ma, mb;
  for (int j = 0; j < VW; j++) {
    ma[j] = (j & H) ? VW + j - H : j;
    mb[j] = (j & H) ? VW + j : j + H;
  }
  for (int i = 0; i < VW; i++)
    if (!(i & H)) {
      vf a = r[i], b = r[i + H];
      r[i] = __builtin_shuffle(a, b, ma);
      r[i + H] = __builtin_shuffle(a, b, mb);
    }
}
CF_INLINE void transpose_regs(vf* r) {
  tstage<1>(r);
  tstage<2>(r);
  if (VW > 4) tstage<(VW > 4 ? 4 : 1)>(r);
  if (VW > 8) tstage<(VW > 8 ? 8 : 1)>(r);
}
// dst[c * ld + r] = src[r * ls + c] for r < R, c < C.
static void transpose(const float* src, long ls, float* dst, long ld, long R, long C) {
  long r = 0;
  for (; r + VW <= R; r += VW) {
    long c = 0;
    for (; c + VW <= C; c += VW) {
      vf v[VW];
      for (int i = 0; i < VW; i++) v[i] = vload(src + (r + i) * ls + c);
      transpose_regs(v);
      for (int i = 0; i < VW; i++) vstore(dst + (c + i) * ld + r, v[i]);
    }
    for (; c < C; c++)
      for (long i = 0; i < VW; i++) dst[c * ld + r + i] = src[(r + i) * ls + c];
  }
  for (; r < R; r++)
    for (long c = 0; c < C; c++) dst[c * ld + r] = src[r * ls + c];
}

// Layout conversions between natural rows (row b at src + b * rs, F floats) and lane blocks [F][Bp].
// dst[f * Bp + b] = src[b * rs + f] for b < B, 0 for B <= b < Bp.
static void gather_lane(float* dst, const float* src, long rs, long F, long B, long Bp) {
  transpose(src, rs, dst, Bp, B, F);
  if (B < Bp)
    for (long f = 0; f < F; f++) memset(dst + f * Bp + B, 0, sizeof(float) * (Bp - B));
}
// dst[b * rs + f] = src[f * Bp + b] for b < B.
static void scatter_lane(float* dst, long rs, const float* src, long F, long B, long Bp) { transpose(src, Bp, dst, rs, F, B); }
// Transpose of a lane block, real lanes only: dst[b * F + f] = src[f * Bp + b].
static void lane_to_rows(float* dst, const float* src, long F, long B, long Bp) { transpose(src, Bp, dst, F, F, B); }

// Sum over the real lanes of each row of a lane block: out[f] (+)= sum_b mask[b] src[f * Bp + b].
static void lane_rowsum(float* out, int acc, const float* src, const float* mask, long F, long Bp) {
  for (long f = 0; f < F; f++) {
    const float* s = src + f * Bp;
    vf a = vsplat(0.f);
    for (long l = 0; l < Bp; l += VW) a += vload(s + l) * vload(mask + l);
    float v = hsum(a);
    out[f] = acc ? out[f] + v : v;
  }
}

// C[F][Bp] rows filled with bias[f] (or zero).
static void fill_rows(float* c, const float* bias, long F, long Bp) {
  for (long f = 0; f < F; f++) {
    vf v = vsplat(bias ? bias[f] : 0.f);
    for (long b = 0; b < Bp; b += VW) vstore(c + f * Bp + b, v);
  }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm over D features of a lane block x [D][Bp] (every lane independent).
// forward: mu, rs [Bp]; h = (x - mu) * rs * w + b
static void ln_forward(const float* x, long D, long Bp, const float* w, const float* b, float eps, float* mu, float* rs, float* h) {
  for (long l = 0; l < Bp; l += VW) {
    vf s = vsplat(0.f);
    for (long d = 0; d < D; d++) s += vload(x + d * Bp + l);
    vf m = s / (float)D;
    vf v = vsplat(0.f);
    for (long d = 0; d < D; d++) {
      vf t = vload(x + d * Bp + l) - m;
      v += t * t;
    }
    vf var = v / (float)D;
    vf r;
    for (int k = 0; k < VW; k++) r[k] = 1.0f / __builtin_sqrtf(var[k] + eps);
    vstore(mu + l, m);
    vstore(rs + l, r);
    for (long d = 0; d < D; d++) {
      vf xh = (vload(x + d * Bp + l) - m) * r;
      vstore(h + d * Bp + l, xh * w[d] + b[d]);
    }
  }
}
// h = (x - mu) * rs * w + b from saved statistics (the backward's recomputation).
static void ln_apply(const float* x, long D, long Bp, const float* w, const float* b, const float* mu, const float* rs, float* h) {
  for (long l = 0; l < Bp; l += VW) {
    vf m = vload(mu + l), r = vload(rs + l);
    for (long d = 0; d < D; d++) vstore(h + d * Bp + l, (vload(x + d * Bp + l) - m) * r * w[d] + b[d]);
  }
}

// backward: dx (+)= rs * (g - mean_d g - xhat * mean_d(g * xhat)), g = dh * w;
// dw[d] (+)= sum_b mask[b] dh * xhat, db[d] (+)= sum_b mask[b] dh (acc_w: add, else set).
// `tmp` holds 2 * Bp floats.
static void ln_backward(const float* dh, const float* x, const float* mu, const float* rs, const float* w, long D, const float* mask, long Bp,
                        float* dx, int accumulate, float* dw, float* db, int acc_w, float* tmp) {
  float* mg = tmp;
  float* mgx = tmp + Bp;
  for (long l = 0; l < Bp; l += VW) {
    vf m = vload(mu + l), r = vload(rs + l);
    vf a = vsplat(0.f), c = vsplat(0.f);
    for (long d = 0; d < D; d++) {
      vf g = vload(dh + d * Bp + l) * w[d];
      vf xh = (vload(x + d * Bp + l) - m) * r;
      a += g;
      c += g * xh;
    }
    vstore(mg + l, a / (float)D);
    vstore(mgx + l, c / (float)D);
  }
  for (long d = 0; d < D; d++) {
    vf sw = vsplat(0.f), sb = vsplat(0.f);
    for (long l = 0; l < Bp; l += VW) {
      vf m = vload(mu + l), r = vload(rs + l);
      vf dhv = vload(dh + d * Bp + l);
      vf xh = (vload(x + d * Bp + l) - m) * r;
      vf o = r * (dhv * w[d] - vload(mg + l) - xh * vload(mgx + l));
      float* p = dx + d * Bp + l;
      vstore(p, accumulate ? vload(p) + o : o);
      vf dm = dhv * vload(mask + l);
      sw += dm * xh;
      sb += dm;
    }
    float fw = hsum(sw), fb = hsum(sb);
    dw[d] = acc_w ? dw[d] + fw : fw;
    db[d] = acc_w ? db[d] + fb : fb;
  }
}

// ---------------------------------------------------------------------------------------------

struct Engine {
  CfConfig c;
  long N, D, QK, H, HQ, M, S, W, K, dh, Bmax, Bpmax;
  long bsQ, bsD;  // batch strides of the internal natural buffers: N * F + 16 (rows of one column
                  // in different batches must not sit a power of two apart: cache-set conflicts)
  int nt, sparse, inject;
  size_t bytes;

  // tape (lane blocks sized N * F * Bpmax per step, natural ones Bmax * N * F per step)
  float* xs;    // [S + 1] lane [N][D]: xs[0] = x0, xs[s + 1] = output of step s
  float* xin;   // [S] lane [N][D]: input of step s after the drive (inject_every, s > 0)
  float* drv;   // lane [N][D]
  float *mu1, *rs1, *mu2, *rs2;  // [S][N][Bp]
  float *yy, *outl;              // [S] lane [N][D] (outl: value_proj)
  float* uu;                     // [S] lane [N][M]: fc1 pre-activation
  float *qn, *kn;                // [S] natural [B][N][HQ]
  float* vn;                     // [S] natural [B][N][D]
  // Not kept (recomputed in the backward, which saves memory traffic): the LayerNorm outputs
  // (from the inputs and statistics), the GELU output (from u) and the attention maps (from q, k).
  // scratch
  float *outn, *doutn, *dvn;  // natural [B][N][D]
  float *dqn, *dkn;           // natural [B][N][HQ]
  float *dst, *ddrv;          // lane [N][D]
  float* mask;                // [Bpmax]: 1 for real lanes b < B, 0 for padding
  float* amean;               // [CF_CHUNKS][N][W]: per-chunk sums of the head-mean attention
  int32_t* idx;               // [N][K]
  float* wir;                 // [N][W]
  int has_wiring;
  double *st_l1, *st_hoyer, *st_wire;  // [S][N], [S][N], [N]
  // Recurrent sheets: the untied weight gradients are not accumulated step by step (a read and
  // write of every block at every step); the backward keeps each step's output cotangent,
  // dyb[leaf]: per column [out][S * Bp], and forms dW = sum_s dY_s X_s^T in one GEMM at the end.
  float* dyb[CF_NLEAF];
  float* part;                 // [CF_CHUNKS][part_size]: per-chunk gradients of shared leaves
  size_t part_off[CF_NLEAF];  // offset in a thread's partial (or (size_t)-1)
  size_t part_size;
  float* scratch;  // [nt][scr_size]: per-worker scratch
  size_t scr_size, scr_lane, scr_rows, scr_gemm, scr_att;
  Prof prof;

  // current call
  long B, Bp;
  const float* P[CF_NLEAF];
  float* G[CF_NLEAF];
  float* attn_out;

  size_t laneD() const { return (size_t)N * D * Bpmax; }
  size_t laneM() const { return (size_t)N * M * Bpmax; }
  size_t statN() const { return (size_t)N * Bpmax; }
  size_t natD() const { return (size_t)Bmax * bsD; }
  size_t natQ() const { return (size_t)Bmax * bsQ; }

  float* xin_at(long s) { return (inject && s > 0) ? xin + s * laneD() : xs + s * laneD(); }

  // parameter block of step s, column n
  const float* p(int leaf, long s, long n) const {
    size_t own = cf_leaf_own(&c, leaf);
    int untied = cf_leaf_untied(&c, leaf);
    size_t off = (c.recurrent ? 0 : (size_t)s * (untied ? N : 1) * own) + (untied ? (size_t)n * own : 0);
    return P[leaf] + off;
  }
  // gradient block of step s, column n, for chunk ch (shared leaves go to the chunk's partial)
  float* g(int leaf, long s, long n, int ch) {
    size_t own = cf_leaf_own(&c, leaf);
    int untied = cf_leaf_untied(&c, leaf);
    size_t soff = c.recurrent ? 0 : (size_t)s * (untied ? N : 1) * own;
    if (untied) return G[leaf] + soff + (size_t)n * own;
    return part + (size_t)ch * part_size + part_off[leaf] + soff;
  }
  // Accumulate into the gradient block of `leaf` at step s (else overwrite it: its first touch).
  // Untied blocks are first touched at the last step (recurrent) or only touched once (stack);
  // the per-thread partials of shared leaves are zeroed before the backward.
  int acc(int leaf, long s) const {
    if (!cf_leaf_untied(&c, leaf)) return 1;
    return c.recurrent ? s != S - 1 : 0;
  }
  float* scr(int tid) { return scratch + (size_t)tid * scr_size; }
};

static void destroy(void* e_) {
  Engine* e = (Engine*)e_;
  if (!e) return;
  for (int l = 0; l < CF_NLEAF; l++) free(e->dyb[l]);
  float* bufs[] = {e->xs, e->xin, e->drv, e->mu1, e->rs1, e->mu2, e->rs2, e->yy, e->outl, e->uu, e->qn,
                   e->kn, e->vn, e->outn, e->doutn, e->dvn, e->dqn, e->dkn, e->dst, e->ddrv, e->mask, e->amean, e->wir, e->part, e->scratch};
  for (float* b : bufs) free(b);
  free(e->idx);
  free(e->st_l1);
  free(e->st_hoyer);
  free(e->st_wire);
  delete e;
}

static long attn_block(const Engine* e);

static void* create(const CfConfig* cfg, size_t* bytes_out) {
  Engine* e = new Engine();
  memset((void*)e, 0, sizeof(Engine));
  e->c = *cfg;
  e->N = cfg->columns;
  e->D = cfg->dim;
  e->QK = cfg->qk_dim;
  e->H = cfg->heads;
  e->HQ = e->H * e->QK;
  e->M = cfg->mlp_dim;
  e->S = cfg->depth;
  e->K = cfg->sources;
  e->sparse = cfg->sources > 0;
  e->W = e->sparse ? e->K : e->N;
  e->dh = e->D / e->H;
  e->Bmax = cfg->batch;
  e->Bpmax = (cfg->batch + VW - 1) / VW * VW;
  e->nt = cfg->threads < 1 ? 1 : cfg->threads;
  e->inject = cfg->inject_every;
  {
    const char* pe = getenv("COLUMNFORMER_PROFILE");
    e->prof.on = pe && pe[0] == '1';
  }
  e->bsQ = e->N * e->HQ + 16;
  e->bsD = e->N * e->D + 16;
  size_t total = 0;
  bool ok = true;
  auto A = [&](size_t n) -> float* {
    float* p = falloc(n);
    if (!p) ok = false;
    total += n * sizeof(float);
    return p;
  };
  long S = e->S;
  e->xs = A((S + 1) * e->laneD());
  e->xin = e->inject ? A(S * e->laneD()) : nullptr;
  e->drv = e->inject ? A(e->laneD()) : nullptr;
  e->mu1 = A(S * e->statN());
  e->rs1 = A(S * e->statN());
  e->mu2 = A(S * e->statN());
  e->rs2 = A(S * e->statN());
  e->yy = A(S * e->laneD());
  e->outl = cfg->value_proj ? A(S * e->laneD()) : nullptr;
  e->uu = A(S * e->laneM());
  e->qn = A(S * e->natQ());
  e->kn = A(S * e->natQ());
  e->vn = A(S * e->natD());
  e->outn = A(e->natD());
  e->doutn = A(e->natD());
  e->dvn = A(e->natD());
  e->dqn = A(e->natQ());
  e->dkn = A(e->natQ());
  e->dst = A(e->laneD());
  e->ddrv = e->inject ? A(e->laneD()) : nullptr;
  e->mask = A(e->Bpmax);
  e->amean = A((size_t)CF_CHUNKS * e->N * e->W);
  e->wir = A((size_t)e->N * e->W);
  e->idx = e->sparse ? (int32_t*)falloc((size_t)e->N * e->K) : nullptr;
  if (e->sparse && !e->idx) ok = false;
  total += e->sparse ? (size_t)e->N * e->K * 4 : 0;
  e->st_l1 = (double*)malloc(sizeof(double) * S * e->N);
  e->st_hoyer = (double*)malloc(sizeof(double) * S * e->N);
  e->st_wire = (double*)malloc(sizeof(double) * e->N);
  if (!e->st_l1 || !e->st_hoyer || !e->st_wire) ok = false;
  // per-thread partial gradients of shared leaves
  size_t ps = 0;
  for (int l = 0; l < CF_NLEAF; l++) {
    e->part_off[l] = (size_t)-1;
    if (cf_leaf_present(cfg, l) && !cf_leaf_untied(cfg, l)) {
      e->part_off[l] = ps;
      ps += (cf_leaf_size(cfg, l) + 15) / 16 * 16;
    }
  }
  e->part_size = ps;
  e->part = A(ps * CF_CHUNKS);
  if (cfg->recurrent && S > 1) {
    // Defer a module's weight gradients when that moves less memory: keeping dY (S * Bp per
    // output, written and read once) and re-reading the inputs, against reading and writing the
    // gradient block at S - 1 steps. Never for narrow columns with a padded small batch.
    // COLUMNFORMER_DEFER=1 / 0 forces it on / off (tests).
    const char* force = getenv("COLUMNFORMER_DEFER");
    auto worth = [&](long out, long in, long outs) {
      if (force && force[0] == '1') return true;
      if (force && force[0] == '0') return false;
      return (double)S * e->Bpmax * (2.0 * outs + in) <= (2.0 * S - 2) * (double)outs * in && out > 0;
    };
    bool attn = cf_leaf_untied(cfg, CF_QW) && worth(e->HQ, e->D, 2 * e->HQ + (cfg->value_proj ? e->D : 0));
    bool mlp = cf_leaf_untied(cfg, CF_F1W) && worth(e->M, e->D, e->M) && worth(e->D, e->M, e->D);
    bool outp = cfg->value_proj && cf_leaf_untied(cfg, CF_OW) && worth(e->D, e->D, e->D);
    const int weights[] = {CF_QW, CF_KW, CF_VW, CF_OW, CF_F1W, CF_F2W};
    for (int l : weights) {
      if (!cf_leaf_present(cfg, l)) continue;
      bool on = (l == CF_QW || l == CF_KW || l == CF_VW) ? attn : l == CF_OW ? outp : mlp;
      if (!on) continue;
      long out = l == CF_QW || l == CF_KW ? e->HQ : l == CF_F1W ? e->M : e->D;
      e->dyb[l] = A((size_t)e->N * out * S * e->Bpmax);
    }
  }
  // per-thread scratch
  long F = lmax(lmax(e->D, e->M), e->HQ);
  e->scr_lane = (size_t)F * e->Bpmax;  // one lane block
  e->scr_rows = (size_t)S * e->Bpmax * F;  // transposed blocks of every step
  long maxk = lmax(lmax(lmax(e->N, e->D), lmax(e->M, e->HQ)), S * e->Bpmax);
  e->scr_gemm = (size_t)(maxk + CF_MR + 1) * VW;
  {
    long rb = attn_block(e);
    e->scr_att = (size_t)rb * e->W * 3 + (size_t)(lmax(e->HQ, e->QK + e->dh)) * e->N + 2 * (size_t)e->W;
  }
  e->scr_size = (4 * e->scr_lane + e->scr_rows + e->scr_gemm + e->scr_att + 2 * e->Bpmax + 64) / 16 * 16;
  e->scratch = A(e->scr_size * e->nt);
  e->bytes = total;
  if (bytes_out) *bytes_out = total;
  if (!ok) {
    destroy(e);
    return nullptr;
  }
  return e;
}

// Scratch layout of one thread.
struct Scr {
  float *l0, *l1, *l2, *l3, *rows, *gemm, *att, *tmp;
};
static Scr scr_of(Engine* e, int tid) {
  float* s = e->scr(tid);
  Scr r;
  r.l0 = s;
  r.l1 = r.l0 + e->scr_lane;
  r.l2 = r.l1 + e->scr_lane;
  r.l3 = r.l2 + e->scr_lane;
  r.rows = r.l3 + e->scr_lane;
  r.gemm = r.rows + e->scr_rows;
  r.att = r.gemm + e->scr_gemm;
  r.tmp = r.att + e->scr_att;
  return r;
}

CF_INLINE void vadd_into(float* y, const float* x, long n) {
  for (long i = 0; i < n; i += VW) vstore(y + i, vload(y + i) + vload(x + i));
}

// ---------------------------------------------------------------------------------------------
// Forward

// Per column, before attention: drive, LN1, q, k, v.
static void col_forward1(Engine* e, long s, long n, int tid) {
  const long D = e->D, HQ = e->HQ, Bp = e->Bp, B = e->B;
  Scr sc = scr_of(e, tid);
  const float* x = e->xs + s * e->laneD() + n * D * Bp;
  float* xi = e->xin_at(s) + n * D * Bp;
  if (e->inject && s > 0) {
    const float* dv = e->drv + n * D * Bp;
    for (long i = 0; i < D * Bp; i += VW) vstore(xi + i, vload(x + i) + vload(dv + i));
  }
  float* mu = e->mu1 + s * e->statN() + n * Bp;
  float* rs = e->rs1 + s * e->statN() + n * Bp;
  float* h = sc.l1;
  ln_forward(xi, D, Bp, e->p(CF_N1W, s, n), e->p(CF_N1B, s, n), e->c.norm_eps, mu, rs, h);
  // q = Wq h + bq: [HQ][Bp]
  fill_rows(sc.l0, e->p(CF_QB, s, n), HQ, Bp);
  gemm(HQ, Bp, D, 1.f, e->p(CF_QW, s, n), D, 1, h, Bp, 1, sc.l0, Bp, sc.gemm);
  scatter_lane(e->qn + s * e->natQ() + n * HQ, e->bsQ, sc.l0, HQ, B, Bp);
  // k = Wk h
  gemm(HQ, Bp, D, 1.f, e->p(CF_KW, s, n), D, 1, h, Bp, 0, sc.l0, Bp, sc.gemm);
  scatter_lane(e->kn + s * e->natQ() + n * HQ, e->bsQ, sc.l0, HQ, B, Bp);
  // v = Wv h + bv, or h
  const float* v = h;
  if (e->c.value_proj) {
    fill_rows(sc.l0, e->p(CF_VB, s, n), D, Bp);
    gemm(D, Bp, D, 1.f, e->p(CF_VW, s, n), D, 1, h, Bp, 1, sc.l0, Bp, sc.gemm);
    v = sc.l0;
  }
  scatter_lane(e->vn + s * e->natD() + n * D, e->bsD, v, D, B, Bp);
}

// Attention in blocks of RB target rows (flash-style: the maps of a block stay in L2; nothing
// N x N is kept). attn_rows: the map rows [i0, i0 + r) of batch b, head g at step s,
// a [r][W] = softmax(scale q k^T + bias); the backward recomputes them with this same code
// (bit-identical). Dense: kt = k^T of this head, [QK][N].
static void attn_rows(Engine* e, long s, long b, long g, long i0, long r, const float* kt, float* a, float* gscr) {
  const long N = e->N, HQ = e->HQ, QK = e->QK, W = e->W;
  const float* q = e->qn + s * e->natQ() + b * e->bsQ + g * QK + i0 * HQ;  // rows stride HQ
  const float* bias = e->c.attn_bias ? e->p(CF_BIAS, s, 0) + i0 * W : nullptr;
  const float scale = e->c.attn_scale;
  if (!e->sparse) {
    gemm(r, N, QK, scale, q, HQ, 1, kt, N, 0, a, N, gscr);
    for (long i = 0; i < r; i++) softmax_row(a + i * N, bias ? bias + i * N : nullptr, N);
  } else {
    const long Ks = e->K;
    const float* k = e->kn + s * e->natQ() + b * e->bsQ + g * QK;
    for (long i = 0; i < r; i++) {
      const int32_t* ix = e->idx + (i0 + i) * Ks;
      float* ar = a + i * Ks;
      const float* qi = q + i * HQ;
      for (long t = 0; t < Ks; t++) ar[t] = scale * dotv(qi, k + (long)ix[t] * HQ, QK);
      softmax_row(ar, bias ? bias + i * Ks : nullptr, Ks);
    }
  }
}

static long attn_block(const Engine* e) {
  long rb = 16384 / e->W;
  rb = rb < 8 ? 8 : rb;
  return rb > e->N ? e->N : rb;
}

// Attention of batch b, every head: out = A v; the head-mean map goes to attn_out and into the
// thread's running sum for attnMean.
static void attn_forward(Engine* e, long s, long b, int tid, int ch) {
  const long N = e->N, D = e->D, W = e->W, dh = e->dh, H = e->H, S = e->S, HQ = e->HQ, QK = e->QK;
  Scr sc = scr_of(e, tid);
  const long RB = attn_block(e);
  float* a = sc.att;                 // [RB][W]
  float* abar = sc.att + RB * W;     // [RB][W] (heads > 1)
  float* kt = sc.att + 3 * RB * W;   // [HQ][N] (dense)
  const float invh = 1.f / (float)H;
  if (!e->sparse) transpose(e->kn + s * e->natQ() + b * e->bsQ, HQ, kt, N, N, HQ);
  float* amean = e->amean + (size_t)ch * N * W;
  for (long i0 = 0; i0 < N; i0 += RB) {
    const long r = lmin(RB, N - i0);
    for (long g = 0; g < H; g++) {
      attn_rows(e, s, b, g, i0, r, kt + g * QK * N, a, sc.gemm);
      const float* v = e->vn + s * e->natD() + b * e->bsD + g * dh;  // rows stride D
      float* out = e->outn + b * e->bsD + g * dh + i0 * D;
      if (!e->sparse) {
        gemm(r, dh, N, 1.f, a, N, 1, v, D, 0, out, D, sc.gemm);
      } else {
        const long Ks = e->K;
        for (long i = 0; i < r; i++) {
          const int32_t* ix = e->idx + (i0 + i) * Ks;
          const float* ar = a + i * Ks;
          float* o = out + i * D;
          memset(o, 0, sizeof(float) * dh);
          for (long t = 0; t < Ks; t++) axpyv(ar[t], v + (long)ix[t] * D, o, dh);
        }
      }
      if (H > 1) {
        if (g == 0) memset(abar, 0, sizeof(float) * r * W);
        axpyv(invh, a, abar, r * W);
      }
    }
    const float* m = H > 1 ? abar : a;
    if (e->attn_out) memcpy(e->attn_out + ((b * S + s) * N + i0) * W, m, sizeof(float) * r * W);
    axpyv(1.f, m, amean + i0 * W, r * W);
  }
}

// Per column, after attention: output projection, residual, LN2, MLP, residual, statistics.
static void col_forward2(Engine* e, long s, long n, int tid) {
  const long D = e->D, N = e->N, M = e->M, Bp = e->Bp, B = e->B;
  Scr sc = scr_of(e, tid);
  float* o = sc.l0;
  gather_lane(o, e->outn + n * D, e->bsD, D, B, Bp);
  if (e->c.value_proj) {
    memcpy(e->outl + s * e->laneD() + n * D * Bp, o, sizeof(float) * D * Bp);
    fill_rows(sc.l1, e->p(CF_OB, s, n), D, Bp);
    gemm(D, Bp, D, 1.f, e->p(CF_OW, s, n), D, 1, o, Bp, 1, sc.l1, Bp, sc.gemm);
    o = sc.l1;
  }
  float* y = e->yy + s * e->laneD() + n * D * Bp;
  const float* xi = e->xin_at(s) + n * D * Bp;
  if (e->c.skip_attn)
    for (long i = 0; i < D * Bp; i += VW) vstore(y + i, vload(xi + i) + vload(o + i));
  else
    memcpy(y, o, sizeof(float) * D * Bp);
  float* mu = e->mu2 + s * e->statN() + n * Bp;
  float* rs = e->rs2 + s * e->statN() + n * Bp;
  float* h = sc.l2;
  ln_forward(y, D, Bp, e->p(CF_N2W, s, n), e->p(CF_N2B, s, n), e->c.norm_eps, mu, rs, h);
  float* u = e->uu + s * e->laneM() + n * M * Bp;
  float* gl = sc.l3;
  fill_rows(u, e->p(CF_F1B, s, n), M, Bp);
  gemm(M, Bp, D, 1.f, e->p(CF_F1W, s, n), D, 1, h, Bp, 1, u, Bp, sc.gemm);
  for (long i = 0; i < M * Bp; i += VW) vstore(gl + i, vgelu(vload(u + i)));
  float* xo = e->xs + (s + 1) * e->laneD() + n * D * Bp;
  memcpy(xo, y, sizeof(float) * D * Bp);
  gemm(D, Bp, M, 1.f, e->p(CF_F2W, s, n), M, 1, gl, Bp, 1, xo, Bp, sc.gemm);
  // activity statistics over the real lanes: per lane sum |x| and sum x^2 over the features
  float* a1 = sc.tmp;
  float* a2 = sc.tmp + Bp;
  for (long l = 0; l < Bp; l += VW) {
    vf s1 = vsplat(0.f), s2 = vsplat(0.f);
    for (long d = 0; d < D; d++) {
      vf v = vload(xo + d * Bp + l);
      s1 += vabs(v);
      s2 += v * v;
    }
    vstore(a1 + l, s1);
    vstore(a2 + l, s2);
  }
  double l1 = 0, hoyer = 0;
  const double sqd = __builtin_sqrt((double)D);
  const double den = sqd - 1 > 1e-12 ? sqd - 1 : 1e-12;
  for (long b = 0; b < B; b++) {
    l1 += a1[b];
    hoyer += (sqd - (double)a1[b] / __builtin_sqrt((double)a2[b] + 1e-12)) / den;
  }
  e->st_l1[s * N + n] = l1;
  e->st_hoyer[s * N + n] = hoyer;
}

static void forward(void* e_, CfForward* f) {
  Engine* e = (Engine*)e_;
  const long N = e->N, D = e->D, S = e->S, W = e->W;
  e->B = f->batch;
  e->Bp = (e->B + VW - 1) / VW * VW;
  const long B = e->B, Bp = e->Bp;
  for (int l = 0; l < CF_NLEAF; l++) e->P[l] = f->params[l];
  for (long b = 0; b < Bp; b++) e->mask[b] = b < B ? 1.f : 0.f;
  if (e->sparse) memcpy(e->idx, f->idx, sizeof(int32_t) * N * e->K);
  e->has_wiring = f->wiring != nullptr;
  if (f->wiring) memcpy(e->wir, f->wiring, sizeof(float) * N * W);
  e->attn_out = f->attn_out;
  const int nt = e->nt;
  e->prof.start();
  par(nt, N, [&](int n0, int n1, int, int) {
    for (long n = n0; n < n1; n++) {
      gather_lane(e->xs + n * D * Bp, f->x0 + n * D, N * D, D, B, Bp);
      if (e->inject) gather_lane(e->drv + n * D * Bp, f->drive + n * D, N * D, D, B, Bp);
    }
  });
  memset(e->amean, 0, sizeof(float) * CF_CHUNKS * N * W);
  e->prof.lap(0);
  for (long s = 0; s < S; s++) {
    par(nt, N, [&](int n0, int n1, int w, int) {
      for (long n = n0; n < n1; n++) col_forward1(e, s, n, w);
    });
    e->prof.lap(1);
    par(nt, B, [&](int b0, int b1, int w, int ch) {
      for (long b = b0; b < b1; b++) attn_forward(e, s, b, w, ch);
    });
    e->prof.lap(2);
    par(nt, N, [&](int n0, int n1, int w, int) {
      for (long n = n0; n < n1; n++) col_forward2(e, s, n, w);
    });
    e->prof.lap(3);
  }
  // final states, the mean attention map and the wiring cost
  par(nt, N, [&](int n0, int n1, int, int) {
    for (long n = n0; n < n1; n++) scatter_lane(f->x_out + n * D, N * D, e->xs + S * e->laneD() + n * D * Bp, D, B, Bp);
  });
  const float inv_mean = 1.f / (float)(S * B);
  par(nt, N, [&](int i0, int i1, int, int) {
    for (long i = i0; i < i1; i++) {
      float* mrow = f->attn_mean + i * W;
      memcpy(mrow, e->amean + i * W, sizeof(float) * W);
      for (int t = 1; t < CF_CHUNKS; t++) axpyv(1.f, e->amean + ((size_t)t * N + i) * W, mrow, W);
      for (long j = 0; j < W; j++) mrow[j] *= inv_mean;
      double w = 0;
      if (e->has_wiring)
        for (long j = 0; j < W; j++) w += (double)mrow[j] * e->wir[i * W + j];
      e->st_wire[i] = w;
    }
  });
  double wire = 0, l1 = 0, hoyer = 0;
  for (long i = 0; i < N; i++) wire += e->st_wire[i];
  for (long s = 0; s < S; s++) {
    double a = 0, h = 0;
    for (long n = 0; n < N; n++) {
      a += e->st_l1[s * N + n];
      h += e->st_hoyer[s * N + n];
    }
    l1 += a / ((double)B * N * D);
    hoyer += h / ((double)B * N);
  }
  e->prof.lap(4);
  static const char* const fnames[] = {"in", "col1", "attn", "col2", "out"};
  e->prof.report("forward", fnames, 5);
  f->wiring_cost = e->has_wiring ? wire / (double)N : 0.0;
  f->l1 = l1 / (double)S;
  f->hoyer = hoyer / (double)S;
}

// ---------------------------------------------------------------------------------------------
// Backward. dst holds the cotangent of the current state (lane layout).

struct BackCtx {
  float act;  // activationCoef / (S B N D)
  float cw;   // wiringCoef / (H B S N)
};

// dW (+)= dY X^T of step s for a column, X^T = rows [B][in] (scratch): a GEMM into the gradient
// block, or (deferred leaves) a copy of the lane block dY [out][Bp] into dyb for the end.
static void weight_grad(Engine* e, int leaf, long s, long n, int ch, const float* dy, long out, const float* xt, long in, float* gscr) {
  const long Bp = e->Bp;
  if (e->dyb[leaf]) {
    const long SB = e->S * Bp;
    float* d = e->dyb[leaf] + (size_t)n * out * SB + s * Bp;
    for (long o = 0; o < out; o++)
      for (long l = 0; l < Bp; l += VW) vstore(d + o * SB + l, vload(dy + o * Bp + l));
    return;
  }
  gemm(out, in, e->B, 1.f, dy, Bp, 1, xt, in, e->acc(leaf, s), e->g(leaf, s, n, ch), in, gscr);
}

// d += act * sign(x) on the real lanes of a lane block [D][Bp] (the activation-L1 term).
static void add_activation(Engine* e, const BackCtx* bc, const float* x, float* d) {
  if (bc->act == 0.f) return;
  const long D = e->D, Bp = e->Bp;
  for (long l = 0; l < Bp; l += VW) {
    vf pos = vload(e->mask + l) * bc->act;
    vf neg = -pos, zero = vsplat(0.f);
    for (long k = 0; k < D; k++) {
      vf v = vload(x + k * Bp + l);
      vf sg = v > 0.f ? pos : (v < 0.f ? neg : zero);
      vstore(d + k * Bp + l, vload(d + k * Bp + l) + sg);
    }
  }
}

// Per column, the MLP half of step s (in reverse): dst (cotangent of xs[s+1]) -> doutn, and
// dst := the residual share of the cotangent of the step input.
static void col_backward2(Engine* e, const BackCtx* bc, long s, long n, int tid, int ch) {
  const long D = e->D, M = e->M, Bp = e->Bp, B = e->B;
  Scr sc = scr_of(e, tid);
  float* dxo = e->dst + n * D * Bp;  // complete: the activation term was added when it was formed
  const float* u = e->uu + s * e->laneM() + n * M * Bp;
  const float* y = e->yy + s * e->laneD() + n * D * Bp;
  const float* mu = e->mu2 + s * e->statN() + n * Bp;
  const float* rs = e->rs2 + s * e->statN() + n * Bp;
  float* gl = sc.l0;  // GELU(u) and, in place later, du
  float* gp = sc.l1;  // GELU'(u)
  for (long i = 0; i < M * Bp; i += VW) {
    vf uv = vload(u + i);
    vf cdf = 0.5f * (1.0f + verf(uv * 0.70710678118654752f));
    vstore(gl + i, uv * cdf);
    vstore(gp + i, cdf + uv * (vexp(-0.5f * uv * uv) * 0.39894228040143268f));
  }
  // fc2: x = y + W2 g
  if (!e->dyb[CF_F2W]) lane_to_rows(sc.rows, gl, M, B, Bp);                                                      // g^T [B][M]
  weight_grad(e, CF_F2W, s, n, ch, dxo, D, sc.rows, M, sc.gemm);                                                // dW2 (+)= dxo g^T
  float* du = sc.l0;
  gemm(M, Bp, D, 1.f, e->p(CF_F2W, s, n), 1, M, dxo, Bp, 0, du, Bp, sc.gemm);                                     // dg = W2^T dxo
  for (long i = 0; i < M * Bp; i += VW) vstore(du + i, vload(du + i) * vload(gp + i));                           // du
  lane_rowsum(e->g(CF_F1B, s, n, ch), e->acc(CF_F1B, s), du, e->mask, M, Bp);
  if (!e->dyb[CF_F1W]) {
    float* h = sc.l2;  // h2 = LN2(y), recomputed
    ln_apply(y, D, Bp, e->p(CF_N2W, s, n), e->p(CF_N2B, s, n), mu, rs, h);
    lane_to_rows(sc.rows, h, D, B, Bp);  // h2^T [B][D]
  }
  weight_grad(e, CF_F1W, s, n, ch, du, M, sc.rows, D, sc.gemm);  // dW1 (+)= du h2^T
  float* dh = sc.l2;
  gemm(D, Bp, M, 1.f, e->p(CF_F1W, s, n), 1, D, du, Bp, 0, dh, Bp, sc.gemm);                                      // dh2 = W1^T du
  // LN2: dy = dxo + LN2^T dh2
  float* dy = sc.l3;
  memcpy(dy, dxo, sizeof(float) * D * Bp);
  ln_backward(dh, y, mu, rs, e->p(CF_N2W, s, n), D, e->mask, Bp, dy, 1,
              e->g(CF_N2W, s, n, ch), e->g(CF_N2B, s, n, ch), e->acc(CF_N2W, s), sc.tmp);
  const float* dout = dy;
  if (e->c.value_proj) {
    if (!e->dyb[CF_OW]) lane_to_rows(sc.rows, e->outl + s * e->laneD() + n * D * Bp, D, B, Bp);  // out^T [B][D]
    weight_grad(e, CF_OW, s, n, ch, dy, D, sc.rows, D, sc.gemm);
    lane_rowsum(e->g(CF_OB, s, n, ch), e->acc(CF_OB, s), dy, e->mask, D, Bp);
    gemm(D, Bp, D, 1.f, e->p(CF_OW, s, n), 1, D, dy, Bp, 0, sc.l2, Bp, sc.gemm);
    dout = sc.l2;
  }
  scatter_lane(e->doutn + n * D, e->bsD, dout, D, B, Bp);
  if (e->c.skip_attn)
    memcpy(dxo, dy, sizeof(float) * D * Bp);
  else
    memset(dxo, 0, sizeof(float) * D * Bp);
}

// Attention backward of batch b, head g -> dqn, dkn, dvn and the bias gradient, in blocks of
// RB target rows: recompute A, then dA = dout v^T, dS = A (dA + cw W - rowsum(A (dA + cw W))),
// dq = scale dS k, and accumulate dk += scale dS^T q, dv += A^T dout over the blocks.
static void attn_backward(Engine* e, const BackCtx* bc, long s, long b, long g, int tid, int ch) {
  const long N = e->N, D = e->D, HQ = e->HQ, QK = e->QK, W = e->W, dh = e->dh;
  Scr sc = scr_of(e, tid);
  const long RB = attn_block(e);
  const float* q = e->qn + s * e->natQ() + b * e->bsQ + g * QK;
  const float* k = e->kn + s * e->natQ() + b * e->bsQ + g * QK;
  const float* v = e->vn + s * e->natD() + b * e->bsD + g * dh;
  const float* dout = e->doutn + b * e->bsD + g * dh;
  float* dq = e->dqn + b * e->bsQ + g * QK;
  float* dk = e->dkn + b * e->bsQ + g * QK;
  float* dv = e->dvn + b * e->bsD + g * dh;
  float* dbias = e->c.attn_bias ? e->g(CF_BIAS, s, 0, ch) : nullptr;
  const float* wir = e->has_wiring && bc->cw != 0.f ? e->wir : nullptr;
  const float scale = e->c.attn_scale;
  float* ds = sc.att;             // [RB][W]
  float* a = sc.att + RB * W;     // [RB][W]
  float* kt = sc.att + 3 * RB * W;  // [QK][N] (dense)
  float* vt = kt + QK * N;          // [dh][N] (dense)
  if (!e->sparse) {
    transpose(k, HQ, kt, N, N, QK);
    transpose(v, D, vt, N, N, dh);
  } else {
    for (long j = 0; j < N; j++) {
      memset(dk + j * HQ, 0, sizeof(float) * QK);
      memset(dv + j * D, 0, sizeof(float) * dh);
    }
  }
  for (long i0 = 0; i0 < N; i0 += RB) {
    const long r = lmin(RB, N - i0);
    const int acc = i0 > 0;
    attn_rows(e, s, b, g, i0, r, kt, a, sc.gemm);
    const float* doutI = dout + i0 * D;
    const float* qI = q + i0 * HQ;
    if (!e->sparse) {
      gemm(r, N, dh, 1.f, doutI, D, 1, vt, N, 0, ds, N, sc.gemm);  // dA = dout v^T
      gemm(N, dh, r, 1.f, a, 1, N, doutI, D, acc, dv, D, sc.gemm);  // dv (+)= A^T dout
      for (long i = 0; i < r; i++) softmax_back_row(a + i * N, ds + i * N, wir ? wir + (i0 + i) * N : nullptr, bc->cw, N);
      gemm(r, QK, N, scale, ds, N, 1, k, HQ, 0, dq + i0 * HQ, HQ, sc.gemm);  // dq = scale dS k
      gemm(N, QK, r, scale, ds, 1, N, qI, HQ, acc, dk, HQ, sc.gemm);         // dk (+)= scale dS^T q
    } else {
      const long Ks = e->K;
      for (long i = 0; i < r; i++) {
        const int32_t* ix = e->idx + (i0 + i) * Ks;
        const float* ar = a + i * Ks;
        float* dr = ds + i * Ks;
        const float* di = doutI + i * D;
        for (long t = 0; t < Ks; t++) dr[t] = dotv(di, v + (long)ix[t] * D, dh);
        softmax_back_row(ar, dr, wir ? wir + (i0 + i) * Ks : nullptr, bc->cw, Ks);
        float* dqi = dq + (i0 + i) * HQ;
        memset(dqi, 0, sizeof(float) * QK);
        const float* qi = qI + i * HQ;
        for (long t = 0; t < Ks; t++) {
          long j = ix[t];
          axpyv(scale * dr[t], k + j * HQ, dqi, QK);
          axpyv(scale * dr[t], qi, dk + j * HQ, QK);
          axpyv(ar[t], di, dv + j * D, dh);
        }
      }
    }
    if (dbias) axpyv(1.f, ds, dbias + i0 * W, r * W);
  }
}

// Per column, the attention half in reverse: dq, dk, dv -> LN1 -> dst += d(step input).
static void col_backward1(Engine* e, const BackCtx* bc, long s, long n, int tid, int ch) {
  const long D = e->D, HQ = e->HQ, Bp = e->Bp, B = e->B;
  Scr sc = scr_of(e, tid);
  float* dq = sc.l0;
  float* dk = sc.l1;
  float* dv = sc.l2;
  float* dh = sc.l3;
  gather_lane(dq, e->dqn + n * HQ, e->bsQ, HQ, B, Bp);
  gather_lane(dk, e->dkn + n * HQ, e->bsQ, HQ, B, Bp);
  gather_lane(dv, e->dvn + n * D, e->bsD, D, B, Bp);
  const float* xi = e->xin_at(s) + n * D * Bp;
  const float* mu = e->mu1 + s * e->statN() + n * Bp;
  const float* rs = e->rs1 + s * e->statN() + n * Bp;
  if (!e->dyb[CF_QW]) {
    ln_apply(xi, D, Bp, e->p(CF_N1W, s, n), e->p(CF_N1B, s, n), mu, rs, dh);  // h1 = LN1(x), recomputed
    lane_to_rows(sc.rows, dh, D, B, Bp);                                     // h1^T [B][D]
  }
  weight_grad(e, CF_QW, s, n, ch, dq, HQ, sc.rows, D, sc.gemm);
  lane_rowsum(e->g(CF_QB, s, n, ch), e->acc(CF_QB, s), dq, e->mask, HQ, Bp);
  weight_grad(e, CF_KW, s, n, ch, dk, HQ, sc.rows, D, sc.gemm);
  gemm(D, Bp, HQ, 1.f, e->p(CF_QW, s, n), 1, D, dq, Bp, 0, dh, Bp, sc.gemm);
  gemm(D, Bp, HQ, 1.f, e->p(CF_KW, s, n), 1, D, dk, Bp, 1, dh, Bp, sc.gemm);
  if (e->c.value_proj) {
    weight_grad(e, CF_VW, s, n, ch, dv, D, sc.rows, D, sc.gemm);
    lane_rowsum(e->g(CF_VB, s, n, ch), e->acc(CF_VB, s), dv, e->mask, D, Bp);
    gemm(D, Bp, D, 1.f, e->p(CF_VW, s, n), 1, D, dv, Bp, 1, dh, Bp, sc.gemm);
  } else {
    vadd_into(dh, dv, D * Bp);
  }
  float* dx = e->dst + n * D * Bp;
  ln_backward(dh, xi, mu, rs, e->p(CF_N1W, s, n), D, e->mask, Bp, dx, 1, e->g(CF_N1W, s, n, ch), e->g(CF_N1B, s, n, ch), e->acc(CF_N1W, s),
              sc.tmp);
  if (e->inject && s > 0) vadd_into(e->ddrv + n * D * Bp, dx, D * Bp);
  // dx is the cotangent of the step input; the state xs[s] (s > 0) also has the activation term
  if (s > 0) add_activation(e, bc, e->xs + s * e->laneD() + n * D * Bp, dx);
}

// The deferred weight gradients of column n: dW = [dY_0 .. dY_{S-1}] [X_0 .. X_{S-1}]^T, one
// GEMM with K = S * Bp per weight (padded lanes: dY is zero there, X^T rows are zeroed).
static void col_weight_grads(Engine* e, long n, int tid, int ch) {
  const long D = e->D, M = e->M, HQ = e->HQ, S = e->S, Bp = e->Bp, B = e->B, SB = S * Bp;
  Scr sc = scr_of(e, tid);
  float* xt = sc.rows;  // [S * Bp][in]
  float* x = sc.l0;     // one step's X, lane [in][Bp]
  auto rows = [&](long in, long s, const float* lane) {
    float* r = xt + s * Bp * in;
    lane_to_rows(r, lane, in, B, Bp);
    if (B < Bp) memset(r + B * in, 0, sizeof(float) * (Bp - B) * in);
  };
  auto finish = [&](int leaf, long out, long in) {
    gemm(out, in, SB, 1.f, e->dyb[leaf] + (size_t)n * out * SB, SB, 1, xt, in, 0, e->g(leaf, 0, n, ch), in, sc.gemm);
  };
  if (e->dyb[CF_QW]) {  // q, k, v: X = h1 = LN1(step input)
    for (long s = 0; s < S; s++) {
      ln_apply(e->xin_at(s) + n * D * Bp, D, Bp, e->p(CF_N1W, s, n), e->p(CF_N1B, s, n), e->mu1 + s * e->statN() + n * Bp,
               e->rs1 + s * e->statN() + n * Bp, x);
      rows(D, s, x);
    }
    finish(CF_QW, HQ, D);
    finish(CF_KW, HQ, D);
    if (e->dyb[CF_VW]) finish(CF_VW, D, D);
  }
  if (e->dyb[CF_OW]) {  // o: X = the attention output
    for (long s = 0; s < S; s++) rows(D, s, e->outl + s * e->laneD() + n * D * Bp);
    finish(CF_OW, D, D);
  }
  if (e->dyb[CF_F1W]) {  // fc1: X = h2 = LN2(y); fc2: X = GELU(u)
    for (long s = 0; s < S; s++) {
      ln_apply(e->yy + s * e->laneD() + n * D * Bp, D, Bp, e->p(CF_N2W, s, n), e->p(CF_N2B, s, n), e->mu2 + s * e->statN() + n * Bp,
               e->rs2 + s * e->statN() + n * Bp, x);
      rows(D, s, x);
    }
    finish(CF_F1W, M, D);
    for (long s = 0; s < S; s++) {
      const float* u = e->uu + s * e->laneM() + n * M * Bp;
      for (long i = 0; i < M * Bp; i += VW) vstore(x + i, vgelu(vload(u + i)));
      rows(M, s, x);
    }
    finish(CF_F2W, D, M);
  }
}

static void backward(void* e_, CfBackward* bw) {
  Engine* e = (Engine*)e_;
  const long N = e->N, D = e->D, S = e->S, H = e->H, B = e->B, Bp = e->Bp;
  const int nt = e->nt;
  for (int l = 0; l < CF_NLEAF; l++) {
    e->P[l] = bw->params[l];
    e->G[l] = bw->grads[l];
  }
  BackCtx bc;
  bc.act = (float)((double)bw->activation_coef / ((double)S * B * N * D));
  bc.cw = (float)((double)bw->wiring_coef / ((double)H * B * S * N));
  e->prof.start();
  // untied gradient blocks are overwritten at their first touch (Engine::acc); the per-thread
  // partials of shared leaves start at zero
  par(nt, N, [&](int n0, int n1, int, int) {
    for (long n = n0; n < n1; n++) {
      gather_lane(e->dst + n * D * Bp, bw->dx + n * D, N * D, D, B, Bp);
      add_activation(e, &bc, e->xs + S * e->laneD() + n * D * Bp, e->dst + n * D * Bp);
      if (e->inject) memset(e->ddrv + n * D * Bp, 0, sizeof(float) * D * Bp);
    }
  });
  par(nt, CF_CHUNKS, [&](int t0, int t1, int, int) {
    for (int t = t0; t < t1; t++) memset(e->part + (size_t)t * e->part_size, 0, sizeof(float) * e->part_size);
  });
  e->prof.lap(0);
  for (long s = S - 1; s >= 0; s--) {
    par(nt, N, [&](int n0, int n1, int w, int ch) {
      for (long n = n0; n < n1; n++) col_backward2(e, &bc, s, n, w, ch);
    });
    e->prof.lap(3);
    par(nt, B * H, [&](int t0, int t1, int w, int ch) {
      for (long t = t0; t < t1; t++) attn_backward(e, &bc, s, t / H, t % H, w, ch);
    });
    e->prof.lap(2);
    par(nt, N, [&](int n0, int n1, int w, int ch) {
      for (long n = n0; n < n1; n++) col_backward1(e, &bc, s, n, w, ch);
    });
    e->prof.lap(1);
  }
  if (e->dyb[CF_QW] || e->dyb[CF_F1W] || e->dyb[CF_OW]) {
    par(nt, N, [&](int n0, int n1, int w, int ch) {
      for (long n = n0; n < n1; n++) col_weight_grads(e, n, w, ch);
    });
  }
  par(nt, N, [&](int n0, int n1, int, int) {
    for (long n = n0; n < n1; n++) {
      scatter_lane(bw->dx0 + n * D, N * D, e->dst + n * D * Bp, D, B, Bp);
      if (e->inject && bw->ddrive) scatter_lane(bw->ddrive + n * D, N * D, e->ddrv + n * D * Bp, D, B, Bp);
    }
  });
  if (!e->inject && bw->ddrive) memset(bw->ddrive, 0, sizeof(float) * B * N * D);
  // shared leaves: sum the per-chunk partials in chunk order
  for (int l = 0; l < CF_NLEAF; l++) {
    if (!e->G[l] || e->part_off[l] == (size_t)-1) continue;
    size_t sz = cf_leaf_size(&e->c, l);
    long chunks = (long)((sz + 4095) / 4096);
    float* out = e->G[l];
    size_t off = e->part_off[l];
    par(nt, chunks, [&](int c0, int c1, int, int) {
      size_t lo = (size_t)c0 * 4096, hi = (size_t)c1 * 4096 < sz ? (size_t)c1 * 4096 : sz;
      memcpy(out + lo, e->part + off + lo, sizeof(float) * (hi - lo));
      for (int t = 1; t < CF_CHUNKS; t++) axpyv(1.f, e->part + (size_t)t * e->part_size + off + lo, out + lo, (long)(hi - lo));
    });
  }
  e->prof.lap(4);
  static const char* const bnames[] = {"in", "col1", "attn", "col2", "out"};
  e->prof.report("backward", bnames, 5);
}

static const CfEngineOps ops = {CF_NAME, create, destroy, forward, backward};

}  // namespace CF_NS

extern "C" const CfEngineOps* CF_ENTRY() { return &CF_NS::ops; }

#endif
