// A persistent thread pool (created once per process, grown on demand). cf_parallel_for splits
// [0, count) into `chunks` contiguous chunks, a fixed partition, and the threads claim chunks
// one at a time (a descheduled thread does not hold the others up). Whatever a chunk
// accumulates goes to that chunk's own buffer (the `chunk` argument), and buffers are reduced in
// chunk order, so results never depend on scheduling or on the thread count; `worker` (0 is the
// calling thread) indexes per-thread scratch. Plain C interface, so the ISA-specific translation
// units share one pool without sharing any inline C++ library code.
#pragma once

typedef void (*cf_chunk_fn)(void* ctx, int begin, int end, int worker, int chunk);

// Run fn(ctx, begin, end, worker, chunk) for every chunk on up to `nthreads` threads and wait.
// Calls from several JS threads are serialised. fn must not throw.
void cf_parallel_chunks(int nthreads, int count, int chunks, cf_chunk_fn fn, void* ctx);

// The same with `nthreads` chunks, fn(ctx, begin, end, t) for chunk t (so per-t buffers are
// deterministic for a thread count and never used by two threads at once).
typedef void (*cf_task_fn)(void* ctx, int begin, int end, int t);
void cf_parallel_for(int nthreads, int count, cf_task_fn fn, void* ctx);

// std::thread::hardware_concurrency(), at least 1.
int cf_hardware_threads();
