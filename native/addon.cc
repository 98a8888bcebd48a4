// N-API entry points (compiled for the baseline ISA): argument validation, the choice of the
// SIMD engine, and the NativeSheet object of src/engine/native-sheet.ts. Every bad argument
// throws a JS Error of one line naming the argument and the fix; nothing here reads outside the
// arrays it was given.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "adamw.h"
#include "engine.h"
#include "threads.h"

namespace {

const char* kVersion = "0.1.0";
const char* kLeafNames[CF_NLEAF] = {"norm1.weight", "norm1.bias", "attn.q.weight", "attn.q.bias", "attn.k.weight",
                                    "attn.v.weight", "attn.v.bias", "attn.o.weight", "attn.o.bias", "attn.attn_bias",
                                    "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight"};

[[noreturn]] void fail(Napi::Env env, const std::string& msg) { throw Napi::Error::New(env, msg); }

bool cpu_has(const std::string& isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == "avx512")
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && cf_engine_avx512() != nullptr;
  if (isa == "avx2") return avx2 && cf_engine_avx2() != nullptr;
#endif
  return isa == "generic";
}

const CfEngineOps* ops_named(const std::string& isa) {
  if (isa == "avx512") return cf_engine_avx512();
  if (isa == "avx2") return cf_engine_avx2();
  return cf_engine_generic();
}

std::string best_isa() {
  if (cpu_has("avx512")) return "avx512";
  if (cpu_has("avx2")) return "avx2";
  return "generic";
}

// The default for a sheet: the widest instruction set whose vector (16, 8 or 4 floats) is not
// much wider than the batch, because the per-column kernels keep the batch in vector lanes and
// pad it to the vector width (batch 2 on AVX-512 would hold 8x the activations and do 8x the work).
std::string best_isa_for_batch(int batch) {
  if (batch > 8 && cpu_has("avx512")) return "avx512";
  if (batch > 4 && cpu_has("avx2")) return "avx2";
  if (batch > 4 && cpu_has("avx512")) return "avx512";
  return "generic";
}

// The instruction set: `requested` (config.simd) or COLUMNFORMER_SIMD, else the best available
// (for a sheet of `batch`: best_isa_for_batch).
std::string choose_isa(Napi::Env env, const std::string& requested, const char* where, int batch = 0) {
  std::string want = requested;
  std::string source = "config.simd";
  if (want.empty()) {
    const char* v = std::getenv("COLUMNFORMER_SIMD");
    if (v && *v) {
      want = v;
      source = "COLUMNFORMER_SIMD";
    }
  }
  if (want.empty()) return batch > 0 ? best_isa_for_batch(batch) : best_isa();
  if (want != "avx512" && want != "avx2" && want != "generic")
    fail(env, std::string(where) + ": " + source + " is \"" + want + "\"; use avx512, avx2 or generic (or leave it unset for the best available)");
  if (!cpu_has(want))
    fail(env, std::string(where) + ": " + source + "=" + want + " but this CPU (or build) does not support it; use " + best_isa() +
                  " or leave it unset");
  return want;
}

// Threads: `requested` (config.threads, > 0) or COLUMNFORMER_THREADS (0 or unset: all cores).
int choose_threads(Napi::Env env, int requested, const char* where) {
  if (requested > 0) return requested;
  const char* v = std::getenv("COLUMNFORMER_THREADS");
  if (v && *v) {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*end != '\0' || n < 0 || n > 1024)
      fail(env, std::string(where) + ": COLUMNFORMER_THREADS is \"" + v + "\"; use an integer >= 1 (0 or unset: all " +
                    std::to_string(cf_hardware_threads()) + " cores)");
    if (n > 0) return (int)n;
  }
  return cf_hardware_threads();
}

// ---- config ----------------------------------------------------------------------------------

int get_int(Napi::Env env, Napi::Object o, const char* key, int lo, bool optional = false, int dflt = 0) {
  Napi::Value v = o.Get(key);
  if (optional && (v.IsUndefined() || v.IsNull())) return dflt;
  if (!v.IsNumber()) fail(env, std::string("createSheet: config.") + key + " must be an integer >= " + std::to_string(lo));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < lo || d > 1e9)
    fail(env, std::string("createSheet: config.") + key + " must be an integer >= " + std::to_string(lo) + " (got " + std::to_string(d) + ")");
  return (int)d;
}
bool get_bool(Napi::Env env, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) fail(env, std::string("createSheet: config.") + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}
float get_pos(Napi::Env env, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || d <= 0 || d > 3e38) fail(env, std::string("createSheet: config.") + key + " must be a finite number > 0");
  return (float)d;
}

struct Pending {
  CfConfig config;
  const CfEngineOps* ops;
};

Pending parse_config(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) fail(env, "createSheet: pass a NativeSheetConfig object");
  Napi::Object o = v.As<Napi::Object>();
  CfConfig c;
  std::memset(&c, 0, sizeof c);
  c.batch = get_int(env, o, "batch", 1);
  c.columns = get_int(env, o, "columns", 1);
  c.dim = get_int(env, o, "dim", 1);
  c.qk_dim = get_int(env, o, "qk_dim", 1);
  c.heads = get_int(env, o, "heads", 1);
  c.mlp_dim = get_int(env, o, "mlp_dim", 1);
  c.depth = get_int(env, o, "depth", 1);
  c.recurrent = get_bool(env, o, "recurrent");
  c.untie_norm = get_bool(env, o, "untie_norm");
  c.untie_attn = get_bool(env, o, "untie_attn");
  c.untie_mlp = get_bool(env, o, "untie_mlp");
  c.value_proj = get_bool(env, o, "value_proj");
  c.attn_bias = get_bool(env, o, "attn_bias");
  c.skip_attn = get_bool(env, o, "skip_attn");
  c.attn_scale = get_pos(env, o, "attn_scale");
  c.norm_eps = get_pos(env, o, "norm_eps");
  c.sources = get_int(env, o, "sources", 0);
  c.inject_every = get_bool(env, o, "inject_every");
  if (c.dim % c.heads != 0)
    fail(env, "createSheet: config.dim (" + std::to_string(c.dim) + ") must be divisible by config.heads (" + std::to_string(c.heads) + ")");
  if (c.sources > c.columns)
    fail(env, "createSheet: config.sources (" + std::to_string(c.sources) + ") must be at most config.columns (" + std::to_string(c.columns) +
                  "); 0 means dense");
  std::string simd;
  Napi::Value sv = o.Get("simd");
  if (!sv.IsUndefined() && !sv.IsNull()) {
    if (!sv.IsString()) fail(env, "createSheet: config.simd must be \"avx512\", \"avx2\" or \"generic\"");
    simd = sv.As<Napi::String>().Utf8Value();
    if (simd.empty()) fail(env, "createSheet: config.simd must be \"avx512\", \"avx2\" or \"generic\"");
  }
  int req_threads = get_int(env, o, "threads", 1, true, 0);
  c.threads = choose_threads(env, req_threads, "createSheet");
  // sizes must fit the engine's index arithmetic
  double lane = (double)c.columns * std::max(std::max(c.dim, c.mlp_dim), c.heads * c.qk_dim) * ((c.batch + 15) / 16 * 16);
  double att = (double)c.batch * c.heads * c.columns * (c.sources > 0 ? c.sources : c.columns);
  if (lane > 4e12 || att > 4e12) fail(env, "createSheet: the sheet is too large for the native addon");
  Pending p;
  p.config = c;
  p.ops = ops_named(choose_isa(env, simd, "createSheet", c.batch));
  return p;
}

// ---- argument helpers -------------------------------------------------------------------------

Napi::Float32Array f32(Napi::Env env, Napi::Value v, const std::string& what, size_t len, const char* shape) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    fail(env, what + " must be a Float32Array of " + std::to_string(len) + " values " + shape);
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (a.ElementLength() != len)
    fail(env, what + " has " + std::to_string(a.ElementLength()) + " values, expected " + std::to_string(len) + " " + shape);
  return a;
}
bool is_nullish(Napi::Value v) { return v.IsUndefined() || v.IsNull(); }

struct FiniteCtx {
  const float* p;
  size_t n;
  size_t* first_bad;  // per chunk
};
void finite_task(void* c_, int b, int e, int, int) {
  FiniteCtx* c = (FiniteCtx*)c_;
  for (int ch = b; ch < e; ch++) {
    size_t lo = (size_t)ch * 65536, hi = std::min(c->n, lo + 65536);
    const uint32_t* u = (const uint32_t*)c->p;
    uint32_t bad = 0;
    for (size_t i = lo; i < hi; i++) bad |= ((u[i] & 0x7f800000u) == 0x7f800000u);
    c->first_bad[ch] = (size_t)-1;
    if (bad)
      for (size_t i = lo; i < hi; i++)
        if ((u[i] & 0x7f800000u) == 0x7f800000u) {
          c->first_bad[ch] = i;
          break;
        }
  }
}
// Throws when `p` holds NaN or +-Inf.
void check_finite(Napi::Env env, const float* p, size_t n, int threads, const std::string& what, const char* fix) {
  size_t chunks = (n + 65535) / 65536;
  if (chunks == 0) return;
  std::vector<size_t> first(chunks);
  FiniteCtx c{p, n, first.data()};
  cf_parallel_chunks(n > (1u << 20) ? threads : 1, (int)chunks, (int)chunks, finite_task, &c);
  for (size_t ch = 0; ch < chunks; ch++)
    if (first[ch] != (size_t)-1) {
      size_t i = first[ch];
      fail(env, what + " holds " + (std::isnan(p[i]) ? "NaN" : "Inf") + " at index " + std::to_string(i) + "; " + fix);
    }
}

// ---- the sheet object -------------------------------------------------------------------------

class Sheet : public Napi::ObjectWrap<Sheet> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeSheet",
                       {InstanceMethod("forward", &Sheet::Forward), InstanceMethod("backward", &Sheet::Backward),
                        InstanceMethod("dispose", &Sheet::Dispose), InstanceMethod("info", &Sheet::Info)});
  }

  Sheet(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sheet>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsExternal()) fail(env, "NativeSheet: create sheets with createSheet(config)");
    Pending* p = info[0].As<Napi::External<Pending>>().Data();
    c_ = p->config;
    ops_ = p->ops;
    env_ = env;
    for (int l = 0; l < CF_NLEAF; l++)
      if (cf_leaf_present(&c_, l)) leaves_.push_back(l);
    engine_ = ops_->create(&c_, &bytes_);
    if (!engine_)
      fail(env, "createSheet: could not allocate the activation buffers (" + std::to_string(bytes_ >> 20) +
                    " MiB); use a smaller config.batch or sheet");
    Napi::MemoryManagement::AdjustExternalMemory(env, (int64_t)bytes_);
  }

  ~Sheet() override { Free(); }

 private:
  CfConfig c_;
  const CfEngineOps* ops_ = nullptr;
  void* engine_ = nullptr;
  size_t bytes_ = 0;
  napi_env env_ = nullptr;
  std::vector<int> leaves_;
  bool trained_ = false;  // the tape holds a training forward
  int last_batch_ = 0;
  std::vector<Napi::Reference<Napi::Float32Array>> kept_;  // the last training forward's parameters
  std::vector<size_t> kept_len_;

  void Free() {
    if (engine_) {
      ops_->destroy(engine_);
      engine_ = nullptr;
      int64_t dummy;
      napi_adjust_external_memory(env_, -(int64_t)bytes_, &dummy);
    }
    kept_.clear();
    trained_ = false;
  }

  size_t width() const { return c_.sources > 0 ? (size_t)c_.sources : (size_t)c_.columns; }

  std::string leaf_shape(int l) const {
    std::string s = "([";
    bool first = true;
    auto add = [&](size_t v) {
      s += (first ? "" : ", ") + std::to_string(v);
      first = false;
    };
    if (!c_.recurrent) add(c_.depth);
    if (cf_leaf_untied(&c_, l)) add(c_.columns);
    size_t d = c_.dim, hq = (size_t)c_.heads * c_.qk_dim, m = c_.mlp_dim;
    switch (l) {
      case CF_QW: case CF_KW: add(hq); add(d); break;
      case CF_QB: add(hq); break;
      case CF_VW: case CF_OW: add(d); add(d); break;
      case CF_BIAS: add(c_.columns); add(width()); break;
      case CF_F1W: add(m); add(d); break;
      case CF_F1B: add(m); break;
      case CF_F2W: add(d); add(m); break;
      default: add(d);
    }
    return s + "])";
  }

  void CheckLive(Napi::Env env, const char* where) {
    if (!engine_) fail(env, std::string(where) + ": the sheet was disposed; create a new one with createSheet(config)");
  }

  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckLive(env, "forward");
    if (info.Length() < 1 || !info[0].IsObject()) fail(env, "forward: pass {params, x0, drive, connectivity, wiringWeights, batch, train, attn}");
    Napi::Object a = info[0].As<Napi::Object>();
    const size_t N = c_.columns, D = c_.dim, S = c_.depth, W = width();
    // batch
    Napi::Value bv = a.Get("batch");
    double bd = bv.IsNumber() ? bv.As<Napi::Number>().DoubleValue() : NAN;
    if (!(bd >= 1 && bd <= c_.batch && bd == std::floor(bd)))
      fail(env, "forward: batch must be an integer from 1 to config.batch = " + std::to_string(c_.batch) +
                    (bv.IsNumber() ? " (got " + std::to_string(bd) + ")" : "") + "; create the sheet with a larger config.batch");
    const size_t B = (size_t)bd;
    Napi::Value tv = a.Get("train");
    if (!tv.IsBoolean()) fail(env, "forward: train must be a boolean (true keeps the activations for backward)");
    bool train = tv.As<Napi::Boolean>().Value();
    // params
    Napi::Value pv = a.Get("params");
    if (!pv.IsArray())
      fail(env, "forward: params must be an array of " + std::to_string(leaves_.size()) + " Float32Arrays in sheetLeaves(config) order");
    Napi::Array pa = pv.As<Napi::Array>();
    if (pa.Length() != leaves_.size())
      fail(env, "forward: params has " + std::to_string(pa.Length()) + " arrays, expected " + std::to_string(leaves_.size()) +
                    " (the leaves of sheetLeaves(config), in that order)");
    CfForward f;
    std::memset(&f, 0, sizeof f);
    std::vector<Napi::Float32Array> arrs;
    for (size_t i = 0; i < leaves_.size(); i++) {
      int l = leaves_[i];
      std::string what = "forward: params[" + std::to_string(i) + "] (" + kLeafNames[l] + ")";
      Napi::Float32Array p = f32(env, pa.Get((uint32_t)i), what, cf_leaf_size(&c_, l), leaf_shape(l).c_str());
      check_finite(env, p.Data(), p.ElementLength(), c_.threads, what, "fix the parameters (a diverged step?) before calling forward");
      f.params[l] = p.Data();
      arrs.push_back(p);
    }
    std::string bnd = "([" + std::to_string(B) + ", " + std::to_string(N) + ", " + std::to_string(D) + "])";
    Napi::Float32Array x0 = f32(env, a.Get("x0"), "forward: x0", B * N * D, bnd.c_str());
    check_finite(env, x0.Data(), x0.ElementLength(), c_.threads, "forward: x0", "pass finite initial states");
    f.x0 = x0.Data();
    Napi::Value dv = a.Get("drive");
    Napi::Float32Array drive;
    if (c_.inject_every) {
      if (is_nullish(dv)) fail(env, "forward: drive is required with config.inject_every (the input added before steps 2..depth), " + bnd);
      drive = f32(env, dv, "forward: drive", B * N * D, bnd.c_str());
      check_finite(env, drive.Data(), drive.ElementLength(), c_.threads, "forward: drive", "pass a finite drive");
      f.drive = drive.Data();
    } else if (!is_nullish(dv)) {
      fail(env, "forward: drive must be null unless config.inject_every is true");
    }
    // connectivity
    Napi::Value cv = a.Get("connectivity");
    if (c_.sources > 0) {
      size_t K = c_.sources;
      if (!cv.IsTypedArray() || cv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        fail(env, "forward: connectivity must be an Int32Array [" + std::to_string(N) + ", " + std::to_string(K) + "] for a sparse sheet (config.sources = " +
                      std::to_string(K) + ")");
      Napi::Int32Array ia = cv.As<Napi::Int32Array>();
      if (ia.ElementLength() != N * K)
        fail(env, "forward: connectivity has " + std::to_string(ia.ElementLength()) + " values, expected " + std::to_string(N * K) + " ([" +
                      std::to_string(N) + ", " + std::to_string(K) + "])");
      const int32_t* ix = ia.Data();
      for (size_t i = 0; i < N * K; i++)
        if (ix[i] < 0 || (size_t)ix[i] >= N)
          fail(env, "forward: connectivity[" + std::to_string(i) + "] = " + std::to_string(ix[i]) + " (row " + std::to_string(i / K) +
                        ") is outside 0.." + std::to_string(N - 1) + "; source columns must be valid column indices");
      f.idx = ix;
    } else if (!is_nullish(cv)) {
      fail(env, "forward: connectivity must be null for a dense sheet (config.sources = 0)");
    }
    std::string wshape = "([" + std::to_string(N) + ", " + std::to_string(W) + "])";
    Napi::Value wv = a.Get("wiringWeights");
    Napi::Float32Array wir;
    if (!is_nullish(wv)) {
      wir = f32(env, wv, "forward: wiringWeights", N * W, wshape.c_str());
      check_finite(env, wir.Data(), wir.ElementLength(), 1, "forward: wiringWeights", "pass finite wiring weights");
      f.wiring = wir.Data();
    }
    Napi::Value av = a.Get("attn");
    Napi::Float32Array attn;
    std::string ashape = "([" + std::to_string(B) + ", " + std::to_string(S) + ", " + std::to_string(N) + ", " + std::to_string(W) + "])";
    if (!is_nullish(av)) {
      attn = f32(env, av, "forward: attn", B * S * N * W, ashape.c_str());
      f.attn_out = attn.Data();
    }
    Napi::Value xov = a.Get("xOut");
    Napi::Float32Array x = is_nullish(xov) ? Napi::Float32Array::New(env, B * N * D) : f32(env, xov, "forward: xOut", B * N * D, bnd.c_str());
    Napi::Float32Array mean = Napi::Float32Array::New(env, N * W);
    f.batch = (int)B;
    f.x_out = x.Data();
    f.attn_mean = mean.Data();
    trained_ = false;  // the tape is overwritten now
    kept_.clear();
    ops_->forward(engine_, &f);
    last_batch_ = (int)B;
    if (train) {
      for (auto& p : arrs) kept_.push_back(Napi::Persistent(p));
      kept_len_.clear();
      for (auto& p : arrs) kept_len_.push_back(p.ElementLength());
      trained_ = true;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("x", x);
    r.Set("wiring", Napi::Number::New(env, f.wiring_cost));
    r.Set("l1", Napi::Number::New(env, f.l1));
    r.Set("hoyer", Napi::Number::New(env, f.hoyer));
    r.Set("attnMean", mean);
    return r;
  }

  Napi::Value Backward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckLive(env, "backward");
    if (!trained_) fail(env, "backward: no training forward to differentiate; call forward({..., train: true}) first (an evaluation forward discards the activations)");
    if (info.Length() < 1 || !info[0].IsObject()) fail(env, "backward: pass {dx, wiringCoef, activationCoef, grads, dx0, ddrive}");
    Napi::Object a = info[0].As<Napi::Object>();
    const size_t N = c_.columns, D = c_.dim, B = last_batch_;
    CfBackward bw;
    std::memset(&bw, 0, sizeof bw);
    for (size_t i = 0; i < leaves_.size(); i++) {
      Napi::Float32Array p = kept_[i].Value();
      if (p.IsEmpty() || p.ElementLength() != kept_len_[i] || (kept_len_[i] > 0 && p.Data() == nullptr))
        fail(env, std::string("backward: the parameter array ") + kLeafNames[leaves_[i]] +
                      " of the training forward was detached or resized; keep the parameters unchanged between forward and backward");
      bw.params[leaves_[i]] = p.Data();
    }
    std::string bnd = "([" + std::to_string(B) + ", " + std::to_string(N) + ", " + std::to_string(D) + "], the batch of the last forward)";
    Napi::Float32Array dx = f32(env, a.Get("dx"), "backward: dx", B * N * D, bnd.c_str());
    check_finite(env, dx.Data(), dx.ElementLength(), c_.threads, "backward: dx", "pass a finite cotangent of the final states");
    bw.dx = dx.Data();
    auto coef = [&](const char* key) {
      Napi::Value v = a.Get(key);
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
      if (!std::isfinite(d)) fail(env, std::string("backward: ") + key + " must be a finite number (0 to leave that term out)");
      return (float)d;
    };
    bw.wiring_coef = coef("wiringCoef");
    bw.activation_coef = coef("activationCoef");
    Napi::Value gv = a.Get("grads");
    if (!gv.IsArray())
      fail(env, "backward: grads must be an array of " + std::to_string(leaves_.size()) + " Float32Arrays in sheetLeaves(config) order");
    Napi::Array ga = gv.As<Napi::Array>();
    if (ga.Length() != leaves_.size())
      fail(env, "backward: grads has " + std::to_string(ga.Length()) + " arrays, expected " + std::to_string(leaves_.size()) +
                    " (the leaves of sheetLeaves(config), in that order)");
    std::vector<Napi::Float32Array> garrs;
    for (size_t i = 0; i < leaves_.size(); i++) {
      int l = leaves_[i];
      Napi::Float32Array g = f32(env, ga.Get((uint32_t)i), "backward: grads[" + std::to_string(i) + "] (" + kLeafNames[l] + ")",
                                 cf_leaf_size(&c_, l), leaf_shape(l).c_str());
      bw.grads[l] = g.Data();
      garrs.push_back(g);
    }
    Napi::Float32Array dx0 = f32(env, a.Get("dx0"), "backward: dx0", B * N * D, bnd.c_str());
    bw.dx0 = dx0.Data();
    Napi::Value ddv = a.Get("ddrive");
    Napi::Float32Array ddrive;
    if (c_.inject_every) {
      if (is_nullish(ddv)) fail(env, "backward: ddrive is required with config.inject_every, " + bnd);
      ddrive = f32(env, ddv, "backward: ddrive", B * N * D, bnd.c_str());
      bw.ddrive = ddrive.Data();
    } else if (!is_nullish(ddv)) {
      fail(env, "backward: ddrive must be null unless config.inject_every is true");
    }
    ops_->backward(engine_, &bw);
    return env.Undefined();
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Free();
    return info.Env().Undefined();
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = Napi::Object::New(env);
    r.Set("simd", ops_->name);
    r.Set("threads", c_.threads);
    r.Set("bytes", Napi::Number::New(env, (double)bytes_));
    return r;
  }
};

struct AddonData {
  Napi::FunctionReference sheet_ctor;
};

Napi::Value CreateSheet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Pending p = parse_config(env, info.Length() > 0 ? info[0] : env.Undefined());
  AddonData* data = env.GetInstanceData<AddonData>();
  return data->sheet_ctor.New({Napi::External<Pending>::New(env, &p)});
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  r.Set("simd", choose_isa(env, "", "info"));
  r.Set("threads", choose_threads(env, 0, "info"));
  r.Set("version", kVersion);
  return r;
}

// ---- AdamW and the gradient norm on host leaves (adamw.h) ----------------------------------------

// The Float32Arrays of args[key], checked against `count` and, when `like` is given, their lengths.
std::vector<Napi::Float32Array> leaf_list(Napi::Env env, Napi::Object args, const char* where, const char* key,
                                          const std::vector<Napi::Float32Array>* like) {
  Napi::Value v = args.Get(key);
  if (!v.IsArray()) fail(env, std::string(where) + ": " + key + " must be an array of Float32Array leaves");
  Napi::Array a = v.As<Napi::Array>();
  if (like && a.Length() != like->size())
    fail(env, std::string(where) + ": " + key + " has " + std::to_string(a.Length()) + " leaves, params has " + std::to_string(like->size()));
  std::vector<Napi::Float32Array> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    std::string what = std::string(where) + ": " + key + "[" + std::to_string(i) + "]";
    if (like) out.push_back(f32(env, a.Get(i), what, (*like)[i].ElementLength(), "(the length of the matching parameter)"));
    else {
      Napi::Value e = a.Get(i);
      if (!e.IsTypedArray() || e.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) fail(env, what + " must be a Float32Array");
      out.push_back(e.As<Napi::Float32Array>());
    }
  }
  return out;
}

double get_number(Napi::Env env, Napi::Object o, const char* where, const char* key, double lo, double hi) {
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || d < lo || d > hi)
    fail(env, std::string(where) + ": " + key + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return d;
}

Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) fail(env, "adamw: pass {params, grads, m, v, lr, beta1, beta2, eps, weightDecay, step, gradScale?}");
  Napi::Object o = info[0].As<Napi::Object>();
  std::vector<Napi::Float32Array> params = leaf_list(env, o, "adamw", "params", nullptr);
  std::vector<Napi::Float32Array> grads = leaf_list(env, o, "adamw", "grads", &params);
  std::vector<Napi::Float32Array> m = leaf_list(env, o, "adamw", "m", &params);
  std::vector<Napi::Float32Array> v = leaf_list(env, o, "adamw", "v", &params);
  CfAdamW a;
  // a huge lr (in float32 possibly infinite) is the caller's divergence to detect, as in src/optim/adamw.ts
  a.lr = (float)get_number(env, o, "adamw", "lr", 0, 1e300);
  a.beta1 = (float)get_number(env, o, "adamw", "beta1", 0, 0.999999999);
  a.beta2 = (float)get_number(env, o, "adamw", "beta2", 0, 0.999999999);
  a.eps = (float)get_number(env, o, "adamw", "eps", 0, 1e300);
  double step = get_number(env, o, "adamw", "step", 1, 1e15);
  a.grad_scale = o.Get("gradScale").IsUndefined() ? 1.f : (float)get_number(env, o, "adamw", "gradScale", 0, 3e38);
  a.bc1 = (float)(1 - std::pow((double)a.beta1, step));
  a.bc2 = (float)(1 - std::pow((double)a.beta2, step));
  a.threads = choose_threads(env, 0, "adamw");
  Napi::Value wv = o.Get("weightDecay");
  if (!wv.IsArray() || wv.As<Napi::Array>().Length() != params.size())
    fail(env, "adamw: weightDecay must be an array with one number per leaf (0 where no decay applies)");
  Napi::Array wd = wv.As<Napi::Array>();
  for (size_t i = 0; i < params.size(); i++) {
    Napi::Value w = wd.Get((uint32_t)i);
    double d = w.IsNumber() ? w.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || d < 0) fail(env, "adamw: weightDecay[" + std::to_string(i) + "] must be a number >= 0");
    a.weight_decay = (float)d;
    cf_adamw_leaf(&a, params[i].Data(), grads[i].Data(), m[i].Data(), v[i].Data(), params[i].ElementLength());
  }
  return env.Undefined();
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) fail(env, "sumSquares: pass an array of Float32Arrays");
  Napi::Object holder = Napi::Object::New(env);
  holder.Set("arrays", info[0]);
  std::vector<Napi::Float32Array> arrays = leaf_list(env, holder, "sumSquares", "arrays", nullptr);
  int threads = choose_threads(env, 0, "sumSquares");
  double sum = 0;
  for (auto& a : arrays) sum += cf_sum_squares(a.Data(), a.ElementLength(), threads);
  return Napi::Number::New(env, sum);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  AddonData* data = new AddonData();
  data->sheet_ctor = Napi::Persistent(Sheet::Define(env));
  env.SetInstanceData(data);
  exports.Set("createSheet", Napi::Function::New(env, CreateSheet, "createSheet"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("adamw", Napi::Function::New(env, AdamW, "adamw"));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares, "sumSquares"));
  return exports;
}

}  // namespace

NODE_API_MODULE(columnformer_native, Init)
