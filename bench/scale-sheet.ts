/**
 * The sheet that bench/scale.ts trains at growing N: untied per-column weights, sparse (or
 * dense) single-head attention, LayerNorms, residuals, a GELU MLP, applied `depth` times.
 *
 *   h = norm1(x);  q = Wq[n] h + bq;  k = Wk[n] h
 *   x = x + attn(q, k, h)                      sparse over idx [N, K], or dense N x N
 *   x = x + fc2[n] gelu(fc1[n] norm2(x) + b1)
 *   loss = mean((x_final - target)^2)
 *
 * Three ways to get the gradient:
 *   - `sheetLoss` under `valueAndGrad` (autodiff; sparse attention backward = JS scatter-add);
 *   - `manualLossAndGrad`: `vjp` of the per-column pieces chained with the gather-only
 *     sparse-attention VJP, in one jit;
 *   - `ChunkedSparseTrainer`: the same maths split into jitted calls over blocks of columns,
 *     with parameters and AdamW state in host memory. Needed for scale because a jax-js 0.1.25
 *     jit program allocates EVERY intermediate buffer before running its first kernel (frees only
 *     take effect once the kernels ran), so one jitted step needs the sum of all its
 *     intermediates, and the Wasm heap is 4 GiB. Small same-shaped calls, each awaited, recycle
 *     their buffers through the allocator's per-size free lists.
 */
import { blockUntilReady, jit, nn, numpy as np, tree, vjp, type JsTree } from "../src/engine/jax.ts";
import { Rng } from "../src/data/rng.ts";
import {
  denseAttention,
  padConnections,
  reverseConnectivityHost,
  sparseAttention,
  sparseAttentionBackward,
  sparseAttentionSourceGrads,
  sparseAttentionTargetGrads,
  type ReverseConnectivity,
} from "../src/model/sparse-attention.ts";

type A = np.Array;

/** Widths of the sheet. */
export interface ScaleShape {
  dim: number;
  qk: number;
  mlp: number;
  /** Sources per column (sparse). */
  k: number;
  batch: number;
  depth: number;
}

/** Parameters; leading axis N (or a block of columns) everywhere: nothing shared between columns. */
export type ScaleParams = {
  /** LayerNorm before attention: weight, bias [N, D]. */
  norm1: { weight: A; bias: A };
  /** Query: weight [N, qk, D], bias [N, qk]. */
  q: { weight: A; bias: A };
  /** Key: weight [N, qk, D]. */
  k: { weight: A };
  /** Attention bias [N, K] (sparse) or [N, N] (dense). */
  attnBias: A;
  /** LayerNorm before the MLP: weight, bias [N, D]. */
  norm2: { weight: A; bias: A };
  /** MLP: fc1 weight [N, mlp, D] + bias [N, mlp], fc2 weight [N, D, mlp]. */
  fc1: { weight: A; bias: A };
  fc2: { weight: A };
};

// ---------------------------------------------------------------------------
// Per-column pieces (all consume their arguments)
// ---------------------------------------------------------------------------

/** Per-column linear map as a fused multiply-reduce. x: [B, N, in], w: [N, out, in] -> [B, N, out]. */
export function columnLinear(w: A, x: A): A {
  const [b, n, i] = x.shape;
  return x.reshape([b, n, 1, i]).mul(w).sum(-1);
}

/** Per-column LayerNorm (eps 1e-5). x: [B, N, D] -> [B, N, D]. */
export function layerNorm(p: { weight: A; bias: A }, x: A): A {
  const centred = x.ref.sub(x.mean(-1, { keepdims: true }));
  const variance = np.square(centred.ref).mean(-1, { keepdims: true });
  return centred.div(np.sqrt(variance.add(1e-5))).mul(p.weight).add(p.bias);
}

/** q = Wq h + bq, k = Wk h. h: [B, N, D] -> [q, k], each [B, N, qk]. */
export function projectQK(q: ScaleParams["q"], k: ScaleParams["k"], h: A): [A, A] {
  return [columnLinear(q.weight, h.ref).add(q.bias), columnLinear(k.weight, h)];
}

/** y = x + out; y + fc2 gelu(fc1 norm2(y) + b1). x, out: [B, N, D] -> [B, N, D]. */
export function postAttention(norm2: ScaleParams["norm2"], fc1: ScaleParams["fc1"], fc2: ScaleParams["fc2"], x: A, out: A): A {
  const y = x.add(out);
  const hidden = nn.gelu(columnLinear(fc1.weight, layerNorm(norm2, y.ref)).add(fc1.bias), { approximate: false }); // [B, N, mlp]
  return y.add(columnLinear(fc2.weight, hidden));
}

/**
 * mean((sheet(x) - target)^2) with autodiff-friendly attention: sparse over idx [N, K] (int32),
 * or dense when idx is null. Consumes all. x, target: [B, N, D].
 */
export function sheetLoss(p: ScaleParams, x: A, target: A, idx: A | null, s: ScaleShape): A {
  const scale = s.qk ** -0.5;
  for (let step = 0; step < s.depth; step++) {
    const h = layerNorm(tree.ref(p.norm1), x.ref);
    const [q, k] = projectQK(tree.ref(p.q), tree.ref(p.k), h.ref);
    const { out, attn } = idx ? sparseAttention(q, k, h, p.attnBias.ref, idx.ref, scale) : denseAttention(q, k, h, p.attnBias.ref, scale);
    attn.dispose();
    x = postAttention(tree.ref(p.norm2), tree.ref(p.fc1), tree.ref(p.fc2), x, out);
  }
  tree.dispose([p, idx]);
  return np.square(x.sub(target)).mean();
}

/** Sum two trees of the same structure leaf by leaf. Consumes both. */
function addTrees<T extends object>(a: T, b: T): T {
  const [la, def] = tree.flatten(a as unknown as JsTree<A>);
  const lb = tree.leaves(b as unknown as JsTree<A>);
  return tree.unflatten(def, la.map((x, i) => x.add(lb[i]))) as unknown as T;
}

type Owned<F> = F & { dispose(): void };
type NormVjp = Owned<(ct: A) => [ScaleParams["norm1"], A]>;
type ProjVjp = Owned<(ct: [A, A]) => [ScaleParams["q"], ScaleParams["k"], A]>;
type PostVjp = Owned<(ct: A) => [ScaleParams["norm2"], ScaleParams["fc1"], ScaleParams["fc2"], A, A]>;

/**
 * Loss and gradient of the sparse sheet: `vjp` of the per-column pieces chained with the
 * gather-only sparse-attention VJP. Consumes all. Returns [loss, grads].
 *
 * Three separate vjp calls per step: jax-js 0.1.25's vjp fails ("Invalid atom type: undefined")
 * when one output (h) is also an input of another output (q, k) of the same function.
 */
export function manualLossAndGrad(p: ScaleParams, x: A, target: A, idx: A, rev: ReverseConnectivity, s: ScaleShape): [A, ScaleParams] {
  const scale = s.qk ** -0.5;
  const saved: { h: A; q: A; k: A; attn: A; norm: NormVjp; proj: ProjVjp; post: PostVjp }[] = [];
  for (let step = 0; step < s.depth; step++) {
    const [h, norm] = vjp(layerNorm, [tree.ref(p.norm1), x.ref]);
    const [[q, k], proj] = vjp(projectQK, [tree.ref(p.q), tree.ref(p.k), h.ref]);
    const { out, attn } = sparseAttention(q.ref, k.ref, h.ref, p.attnBias.ref, idx.ref, scale);
    const [y, post] = vjp(postAttention, [tree.ref(p.norm2), tree.ref(p.fc1), tree.ref(p.fc2), x, out]);
    x = y;
    saved.push({ h, q, k, attn, norm: norm as unknown as NormVjp, proj: proj as unknown as ProjVjp, post: post as unknown as PostVjp });
  }
  const diff = x.sub(target); // [B, N, D]
  const loss = np.square(diff.ref).mean();
  let gx = diff.mul(2 / diff.size);
  let grads: ScaleParams | null = null;
  for (let step = s.depth - 1; step >= 0; step--) {
    const st = saved[step];
    const [gNorm2, gFc1, gFc2, gxPost, gOut] = st.post(gx);
    const ga = sparseAttentionBackward(st.q, st.k, st.h, st.attn, gOut, idx.ref, { positions: rev.positions.ref, targets: rev.targets.ref, r: rev.r }, scale);
    const [gQ, gK, ghProj] = st.proj([ga.q, ga.k]);
    const [gNorm1, gxNorm] = st.norm(ga.h.add(ghProj));
    for (const f of [st.post, st.proj, st.norm]) f.dispose();
    gx = gxPost.add(gxNorm);
    const g: ScaleParams = { norm1: gNorm1, q: gQ, k: gK, attnBias: ga.bias, norm2: gNorm2, fc1: gFc1, fc2: gFc2 };
    grads = grads ? addTrees(grads, g) : g;
  }
  gx.dispose();
  tree.dispose([p, idx, rev.positions, rev.targets]);
  return [loss, grads!];
}

// ---------------------------------------------------------------------------
// Parameters in host memory
// ---------------------------------------------------------------------------

/** One parameter leaf: its path in ScaleParams, shape after the column axis, initialiser. */
export interface LeafSpec {
  path: string;
  trailing: number[];
  init: "ones" | "zeros" | { fanIn: number };
}

/** The leaves in a fixed order. `biasWidth` = K (sparse) or N (dense). */
export function leafSpecs(s: ScaleShape, biasWidth: number): LeafSpec[] {
  return [
    { path: "norm1.weight", trailing: [s.dim], init: "ones" },
    { path: "norm1.bias", trailing: [s.dim], init: "zeros" },
    { path: "q.weight", trailing: [s.qk, s.dim], init: { fanIn: s.dim } },
    { path: "q.bias", trailing: [s.qk], init: "zeros" },
    { path: "k.weight", trailing: [s.qk, s.dim], init: { fanIn: s.dim } },
    { path: "attnBias", trailing: [biasWidth], init: "zeros" },
    { path: "norm2.weight", trailing: [s.dim], init: "ones" },
    { path: "norm2.bias", trailing: [s.dim], init: "zeros" },
    { path: "fc1.weight", trailing: [s.mlp, s.dim], init: { fanIn: s.dim } },
    { path: "fc1.bias", trailing: [s.mlp], init: "zeros" },
    { path: "fc2.weight", trailing: [s.dim, s.mlp], init: { fanIn: s.mlp } },
  ];
}

/** Float32 values in the sheet's parameters. */
export function parameterCount(n: number, s: ScaleShape, biasWidth: number): number {
  return leafSpecs(s, biasWidth).reduce((sum, l) => sum + n * l.trailing.reduce((p, d) => p * d, 1), 0);
}

const per = (l: LeafSpec): number => l.trailing.reduce((p, d) => p * d, 1);

/** Parameters of N columns as host Float32Arrays [N, ...trailing], one per leaf (order of `specs`). */
export class HostParams {
  readonly data: Float32Array[];

  constructor(
    readonly n: number,
    readonly specs: LeafSpec[],
    data?: Float32Array[],
  ) {
    this.data = data ?? specs.map((l) => new Float32Array(n * per(l)));
  }

  /** Deterministic init: LayerNorm ones/zeros, weights U(-fanIn^-1/2, fanIn^-1/2), biases zero. */
  static init(n: number, specs: LeafSpec[], seed: number): HostParams {
    const p = new HostParams(n, specs);
    const rng = new Rng(seed);
    specs.forEach((l, i) => {
      const d = p.data[i];
      if (l.init === "ones") d.fill(1);
      else if (typeof l.init === "object") {
        const bound = l.init.fanIn ** -0.5;
        for (let t = 0; t < d.length; t++) d[t] = (2 * rng.next() - 1) * bound;
      }
    });
    return p;
  }

  /** Upload columns [start, end) of every leaf: [end - start, ...trailing] device arrays. */
  upload(start = 0, end = this.n): ScaleParams {
    return this.uploadGroups(start, end, ["norm1", "q", "k", "attnBias", "norm2", "fc1", "fc2"]);
  }

  /** Upload columns [start, end) of the named top-level groups only. */
  uploadGroups<G extends keyof ScaleParams>(start: number, end: number, groups: G[]): Pick<ScaleParams, G> {
    const out: Record<string, unknown> = {};
    this.specs.forEach((l, i) => {
      if (!groups.some((g) => l.path === g || l.path.startsWith(`${g}.`))) return;
      const sub = this.data[i].subarray(start * per(l), end * per(l));
      setPath(out, l.path, np.array(sub).reshape([end - start, ...l.trailing]));
    });
    return out as Pick<ScaleParams, G>;
  }
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let cur = obj;
  for (const p of parts.slice(0, -1)) cur = (cur[p] ??= {}) as Record<string, unknown>;
  cur[parts[parts.length - 1]] = value;
}

function getPath(obj: unknown, path: string): A | undefined {
  let cur = obj;
  for (const p of path.split(".")) cur = (cur as Record<string, unknown> | undefined)?.[p];
  return cur as A | undefined;
}

/** Hyper-parameters of the plain AdamW used by the benchmark. */
export const ADAMW = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.05 };

/** One AdamW step on host arrays (weight decay on every leaf). Updates p, m, v in place. */
export function hostAdamW(p: Float32Array[], g: Float32Array[], m: Float32Array[], v: Float32Array[], step: number): void {
  const { lr, beta1, beta2, eps, weightDecay } = ADAMW;
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  for (let l = 0; l < p.length; l++) {
    const pl = p[l];
    const gl = g[l];
    const ml = m[l];
    const vl = v[l];
    for (let t = 0; t < pl.length; t++) {
      const gt = gl[t];
      const mt = beta1 * ml[t] + (1 - beta1) * gt;
      const vt = beta2 * vl[t] + (1 - beta2) * gt * gt;
      ml[t] = mt;
      vl[t] = vt;
      pl[t] = pl[t] - lr * weightDecay * pl[t] - (lr * (mt / bc1)) / (Math.sqrt(vt / bc2) + eps);
    }
  }
}

// ---------------------------------------------------------------------------
// Chunked trainer
// ---------------------------------------------------------------------------

/** Target-side backward outputs of one block. */
type TargetBwd = [ScaleParams["norm2"], ScaleParams["fc1"], ScaleParams["fc2"], A, A, A, A, A, A];

/**
 * Trains the sparse sheet in blocks of `chunk` columns: every jitted call sees one block of
 * targets (or sources) plus the full [B, N, .] activations it gathers from, and is awaited
 * before the next, so the Wasm heap holds one block's intermediates at a time. Each depth step's
 * input is kept (checkpoint) and the step is recomputed in the backward pass. Parameters,
 * gradients and AdamW moments live in host memory (4 x parameters); a block's parameters are
 * uploaded for each call that needs them.
 */
export class ChunkedSparseTrainer {
  readonly chunks: number;
  readonly grads: Float32Array[];
  readonly #m: Float32Array[];
  readonly #v: Float32Array[];
  #step = 0;
  readonly #idx: A[];
  readonly #pos: A[];
  readonly #tgt: A[];
  readonly #pre;
  readonly #fwdPost;
  readonly #loss;
  readonly #targetBwd;
  readonly #sourceBwd;
  /** Largest out-degree of the connectivity. */
  readonly maxOutDegree: number;
  /** Wall-clock ms spent per phase, summed over calls (each phase ends with its results ready). */
  readonly timings: Record<string, number> = {};

  constructor(
    readonly params: HostParams,
    readonly shape: ScaleShape,
    indices: Int32Array,
    readonly chunk: number,
  ) {
    const n = params.n;
    const s = shape;
    if (n % chunk !== 0) throw new Error(`ChunkedSparseTrainer: chunk ${chunk} must divide N = ${n}`);
    this.chunks = n / chunk;
    this.grads = params.specs.map((l) => new Float32Array(n * per(l)));
    this.#m = params.specs.map((l) => new Float32Array(n * per(l)));
    this.#v = params.specs.map((l) => new Float32Array(n * per(l)));
    const rev = reverseConnectivityHost(indices, n, s.k);
    this.maxOutDegree = rev.r;
    const blocks = Array.from({ length: this.chunks }, (_, c) => c);
    this.#idx = blocks.map((c) => np.array(indices.subarray(c * chunk * s.k, (c + 1) * chunk * s.k), { dtype: np.int32 }).reshape([chunk, s.k]));
    this.#pos = blocks.map((c) => np.array(rev.positions.subarray(c * chunk * rev.r, (c + 1) * chunk * rev.r), { dtype: np.int32 }).reshape([chunk, rev.r]));
    this.#tgt = blocks.map((c) => np.array(rev.targets.subarray(c * chunk * rev.r, (c + 1) * chunk * rev.r), { dtype: np.int32 }).reshape([chunk, rev.r]));
    const scale = s.qk ** -0.5;
    const total = s.batch * n * s.dim;

    // x: [B, Nc, D] -> h [B, Nc, D], q, k [B, Nc, qk]
    this.#pre = jit((p: Pick<ScaleParams, "norm1" | "q" | "k">, x: A): [A, A, A] => {
      const h = layerNorm(p.norm1, x);
      const [q, k] = projectQK(p.q, p.k, h.ref);
      return [h, q, k];
    });
    // One block of targets: attention over all sources, residual, MLP -> next x [B, Nc, D].
    this.#fwdPost = jit((p: Pick<ScaleParams, "attnBias" | "norm2" | "fc1" | "fc2">, x: A, q: A, kAll: A, hAll: A, idx: A): A => {
      const { out, attn } = sparseAttention(q, kAll, hAll, p.attnBias, idx, scale);
      attn.dispose();
      return postAttention(p.norm2, p.fc1, p.fc2, x, out);
    });
    // Sum of squared errors of a block and d loss / d x for it.
    this.#loss = jit((x: A, y: A): [A, A] => {
      const diff = x.sub(y);
      return [np.square(diff.ref).sum(-1).sum(-1).sum(), diff.mul(2 / total)]; // nested sums: less float32 round-off
    });
    // Targets' side: recompute the block's attention, pull gx back through the MLP half and the
    // attention's target side.
    this.#targetBwd = jit((p: Pick<ScaleParams, "attnBias" | "norm2" | "fc1" | "fc2">, x: A, q: A, kAll: A, hAll: A, idx: A, gNext: A): TargetBwd => {
      const { out, attn } = sparseAttention(q, kAll.ref, hAll.ref, p.attnBias, idx.ref, scale);
      const [y, post] = vjp(postAttention, [p.norm2, p.fc1, p.fc2, x, out]);
      y.dispose();
      const [gNorm2, gFc1, gFc2, gxPost, gOut] = (post as unknown as PostVjp)(gNext);
      (post as unknown as PostVjp).dispose();
      const t = sparseAttentionTargetGrads(kAll, hAll, attn.ref, gOut.ref, idx, scale);
      return [gNorm2, gFc1, gFc2, t.bias, gxPost, t.q, t.scores, attn, gOut];
    });
    // Sources' side: the attention's gradient into k and h of a block of sources, then back
    // through the projections and norm1 to x.
    this.#sourceBwd = jit(
      (p: Pick<ScaleParams, "norm1" | "q" | "k">, x: A, gScores: A, attn: A, qAll: A, gOutAll: A, pos: A, tgt: A, gQ: A, gxPost: A): [ScaleParams["norm1"], ScaleParams["q"], ScaleParams["k"], A] => {
        const src = sparseAttentionSourceGrads(gScores, attn, qAll, gOutAll, pos, tgt, scale);
        const [h, norm] = vjp(layerNorm, [p.norm1, x]);
        const [qk, proj] = vjp(projectQK, [p.q, p.k, h]);
        tree.dispose(qk);
        const [gQp, gKp, ghProj] = (proj as unknown as ProjVjp)([gQ, src.k]);
        const [gNorm1, gxNorm] = (norm as unknown as NormVjp)(src.h.add(ghProj));
        (proj as unknown as ProjVjp).dispose();
        (norm as unknown as NormVjp).dispose();
        return [gNorm1, gQp, gKp, gxPost.add(gxNorm)];
      },
    );
  }

  #time(phase: string, since: number): number {
    const now = performance.now();
    this.timings[phase] = (this.timings[phase] ?? 0) + (now - since);
    return now;
  }

  #block<G extends keyof ScaleParams>(c: number, groups: G[]): Pick<ScaleParams, G> {
    return this.params.uploadGroups(c * this.chunk, (c + 1) * this.chunk, groups);
  }

  /** Add a block's gradient leaves (device, consumed) into the host gradient. */
  async #accumulate(c: number, g: Partial<ScaleParams>, first: boolean): Promise<void> {
    const specs = this.params.specs;
    for (let i = 0; i < specs.length; i++) {
      const leaf = getPath(g, specs[i].path);
      if (!leaf) continue;
      const values = (await leaf.data()) as Float32Array;
      const dst = this.grads[i].subarray(c * this.chunk * per(specs[i]), (c + 1) * this.chunk * per(specs[i]));
      if (first) dst.set(values);
      else for (let t = 0; t < values.length; t++) dst[t] += values[t];
    }
  }

  /** h, q, k of every block for states xs (borrowed): full h, k and q [B, N, .] plus the q blocks. */
  async #preAll(xs: A[]): Promise<{ h: A; k: A; q: A; qBlocks: A[] }> {
    const t0 = performance.now();
    const hs: A[] = [];
    const qs: A[] = [];
    const ks: A[] = [];
    for (let c = 0; c < this.chunks; c++) {
      const [h, q, k] = this.#pre(this.#block(c, ["norm1", "q", "k"]), xs[c].ref);
      await blockUntilReady([h, q, k]);
      hs.push(h);
      qs.push(q);
      ks.push(k);
    }
    const cat = (parts: A[]): A => (parts.length === 1 ? parts[0] : np.concatenate(parts, 1));
    const q = cat(qs.map((x) => x.ref));
    const out = { h: cat(hs), k: cat(ks), q, qBlocks: qs };
    await blockUntilReady([out.h, out.k, out.q]);
    this.#time("norm1 + q/k projections", t0);
    return out;
  }

  /**
   * Loss and gradient for one batch, gradient left in `this.grads` (host). x, target: [B, N, D]
   * split into blocks of columns (lists of [B, chunk, D]); borrowed.
   */
  async lossAndGrad(x: A[], target: A[]): Promise<number> {
    const s = this.shape;
    // Forward, keeping every step's input.
    const states: A[][] = [x.map((b) => b.ref)];
    for (let d = 0; d < s.depth; d++) {
      const { h, k, q, qBlocks } = await this.#preAll(states[d]);
      q.dispose();
      let t = performance.now();
      const next: A[] = [];
      for (let c = 0; c < this.chunks; c++) {
        const y = this.#fwdPost(this.#block(c, ["attnBias", "norm2", "fc1", "fc2"]), states[d][c].ref, qBlocks[c], k.ref, h.ref, this.#idx[c].ref);
        await blockUntilReady(y);
        next.push(y);
      }
      tree.dispose([h, k]);
      states.push(next);
      t = this.#time("forward attention + MLP", t);
    }
    let sse = 0;
    let gx: A[] = [];
    for (let c = 0; c < this.chunks; c++) {
      const [e, g] = this.#loss(states[s.depth][c], target[c].ref);
      sse += (await e.data())[0];
      gx.push(g);
    }
    // Backward, one depth step at a time, recomputing that step's attention.
    for (let d = s.depth - 1; d >= 0; d--) {
      const first = d === s.depth - 1;
      const { h, k, q, qBlocks } = await this.#preAll(states[d]);
      let t = performance.now();
      const gS: A[] = [];
      const attn: A[] = [];
      const gOut: A[] = [];
      const gQ: A[] = [];
      const gxPost: A[] = [];
      for (let c = 0; c < this.chunks; c++) {
        const [gNorm2, gFc1, gFc2, gBias, gxp, gq, gs, a, go] = this.#targetBwd(
          this.#block(c, ["attnBias", "norm2", "fc1", "fc2"]),
          states[d][c].ref,
          qBlocks[c],
          k.ref,
          h.ref,
          this.#idx[c].ref,
          gx[c],
        );
        await this.#accumulate(c, { norm2: gNorm2, fc1: gFc1, fc2: gFc2, attnBias: gBias }, first);
        await blockUntilReady([gxp, gq, gs, a, go]);
        gxPost.push(gxp);
        gQ.push(gq);
        gS.push(gs);
        attn.push(a);
        gOut.push(go);
      }
      tree.dispose([h, k]);
      t = this.#time("backward: MLP + attention target side (incl. recompute)", t);
      const cat = (parts: A[]): A => (parts.length === 1 ? parts[0] : np.concatenate(parts, 1));
      const gScoresAll = padConnections(gS);
      const attnAll = padConnections(attn);
      const gOutAll = cat(gOut);
      await blockUntilReady([gScoresAll, attnAll, gOutAll]);
      t = this.#time("backward: concatenate blocks", t);
      gx = [];
      for (let c = 0; c < this.chunks; c++) {
        const [gNorm1, gQp, gKp, g] = this.#sourceBwd(
          this.#block(c, ["norm1", "q", "k"]),
          states[d][c],
          gScoresAll.ref,
          attnAll.ref,
          q.ref,
          gOutAll.ref,
          this.#pos[c].ref,
          this.#tgt[c].ref,
          gQ[c],
          gxPost[c],
        );
        await this.#accumulate(c, { norm1: gNorm1, q: gQp, k: gKp }, first);
        await blockUntilReady(g);
        gx.push(g);
      }
      tree.dispose([gScoresAll, attnAll, gOutAll, q]);
      this.#time("backward: attention source side + projections + norm1", t);
    }
    tree.dispose(gx);
    return sse / (s.batch * this.params.n * s.dim);
  }

  /** One training step: loss and gradient, then AdamW on the host parameters. Returns the loss. */
  async step(x: A[], target: A[]): Promise<number> {
    const loss = await this.lossAndGrad(x, target);
    const t = performance.now();
    hostAdamW(this.params.data, this.grads, this.#m, this.#v, ++this.#step);
    this.#time("AdamW (host)", t);
    return loss;
  }

  /** Free the device-resident connectivity and the compiled programs. */
  dispose(): void {
    tree.dispose([this.#idx, this.#pos, this.#tgt]);
    for (const f of [this.#pre, this.#fwdPost, this.#loss, this.#targetBwd, this.#sourceBwd]) f.dispose();
  }

  /** Split [B, N, D] into blocks of columns (consumes x). */
  split(x: A): A[] {
    if (this.chunks === 1) return [x];
    const out = Array.from({ length: this.chunks }, (_, c) => x.ref.slice([], [c * this.chunk, (c + 1) * this.chunk], []));
    x.dispose();
    return out;
  }
}
