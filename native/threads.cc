// Thread pool: see threads.h. Workers wait for a new generation of work with a short spin
// (calls come in quick succession inside one forward/backward) and then on a condition variable.
#include "threads.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace {

struct Pool {
  std::mutex call_mutex;  // one parallel_for at a time
  std::mutex m;
  std::condition_variable wake;
  std::condition_variable done;
  std::vector<std::thread> workers;  // worker w runs chunk w + 1
  // current job
  cf_chunk_fn fn = nullptr;
  void* ctx = nullptr;
  int count = 0;
  int chunks = 1;
  int nthreads = 1;
  std::atomic<unsigned> generation{0};
  std::atomic<int> remaining{0};
  std::atomic<int> next{0};

  void run_chunks(int worker) {
    for (;;) {
      int c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= chunks) return;
      int begin = (int)((long long)count * c / chunks);
      int end = (int)((long long)count * (c + 1) / chunks);
      if (begin < end) fn(ctx, begin, end, worker, c);
    }
  }

  void worker_loop(int w) {
    unsigned seen = 0;
    for (;;) {
      unsigned g;
      int spins = 0;
      while ((g = generation.load(std::memory_order_acquire)) == seen && spins < 4000) {
        spins++;
        if ((spins & 63) == 0) std::this_thread::yield();
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lock(m);
        wake.wait(lock, [&] { return generation.load(std::memory_order_acquire) != seen; });
        g = generation.load(std::memory_order_acquire);
      }
      seen = g;
      if (w + 1 < nthreads) run_chunks(w + 1);
      if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(m);
        done.notify_one();
      }
    }
  }

  void ensure(int n) {
    while ((int)workers.size() < n - 1) {
      int w = (int)workers.size();
      workers.emplace_back([this, w] { worker_loop(w); });
      workers.back().detach();
    }
  }

  void parallel_for(int n, int cnt, int nch, cf_chunk_fn f, void* c) {
    if (cnt <= 0) return;
    if (nch < 1) nch = 1;
    if (nch > cnt) nch = cnt;
    if (n < 1) n = 1;
    if (n > nch) n = nch;
    if (n == 1) {
      for (int ch = 0; ch < nch; ch++) {
        int begin = (int)((long long)cnt * ch / nch), end = (int)((long long)cnt * (ch + 1) / nch);
        if (begin < end) f(c, begin, end, 0, ch);
      }
      return;
    }
    std::lock_guard<std::mutex> call(call_mutex);
    ensure(n);
    fn = f;
    ctx = c;
    count = cnt;
    chunks = nch;
    nthreads = n;
    next.store(0, std::memory_order_relaxed);
    int nw = (int)workers.size();
    remaining.store(nw, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(m);
      generation.fetch_add(1, std::memory_order_acq_rel);
    }
    wake.notify_all();
    run_chunks(0);
    int spins = 0;
    while (remaining.load(std::memory_order_acquire) != 0 && spins < 20000) {
      spins++;
      if ((spins & 63) == 0) std::this_thread::yield();
    }
    if (remaining.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lock(m);
      done.wait(lock, [&] { return remaining.load(std::memory_order_acquire) == 0; });
    }
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: detached workers outlive static destruction
  return *p;
}

}  // namespace

void cf_parallel_chunks(int nthreads, int count, int chunks, cf_chunk_fn fn, void* ctx) { pool().parallel_for(nthreads, count, chunks, fn, ctx); }

namespace {
struct Legacy {
  cf_task_fn fn;
  void* ctx;
};
void legacy_task(void* c, int begin, int end, int, int chunk) {
  Legacy* l = (Legacy*)c;
  l->fn(l->ctx, begin, end, chunk);
}
}  // namespace

void cf_parallel_for(int nthreads, int count, cf_task_fn fn, void* ctx) {
  if (nthreads < 1) nthreads = 1;
  Legacy l{fn, ctx};
  pool().parallel_for(nthreads, count, nthreads, legacy_task, &l);
}

int cf_hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : (int)n;
}
