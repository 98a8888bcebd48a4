/**
 * AdamW (decoupled weight decay, as PyTorch's `torch.optim.AdamW`) as pure
 * functions over parameter trees, with a small explicit state.
 *
 * Trees are nested plain objects (or JS arrays) whose leaves are jax-js
 * Arrays, e.g. `{ sheet: { norm1: { weight, bias }, attn: { q: { weight } } } }`.
 * Gradients and optimiser moments have the same structure as the parameters.
 *
 * One update step t = state.step + 1 (1-based), per leaf p with gradient g:
 *
 *     p <- p - lr * wd * p              (only where the decay mask is true)
 *     m <- b1 * m + (1 - b1) * g
 *     v <- b2 * v + (1 - b2) * g^2
 *     mhat = m / (1 - b1^t),  vhat = v / (1 - b2^t)
 *     p <- p - lr * mhat / (sqrt(vhat) + eps)
 *
 * The whole-tree update is one jitted function. `lr` and the bias
 * corrections are traced scalar arguments, so a changing learning rate or step
 * never recompiles; a compiled update is cached per (betas, eps, weight decay,
 * decay mask) and per leaf shapes/dtypes.
 */
import { jit, numpy as np, tree, type OwnedFunction } from "../engine/jax.ts";

/** A tree of jax-js Arrays: nested plain objects and/or JS arrays with Array leaves. */
export type ArrayTree = np.Array | ArrayTree[] | { [key: string]: ArrayTree };

/** Which leaves get weight decay: same structure as the parameter tree, boolean leaves. */
export type DecayMask = boolean | DecayMask[] | { [key: string]: DecayMask };

/** Hyper-parameters of AdamW. */
export interface AdamWConfig {
  /** Base (peak) learning rate; the per-step value is passed to {@link adamwUpdate}. */
  lr: number;
  /** First-moment decay (default 0.9). */
  beta1: number;
  /** Second-moment decay (default 0.95). */
  beta2: number;
  /** Added to sqrt(vhat) in the denominator (default 1e-8). */
  eps: number;
  /** Decoupled weight-decay coefficient (default 0.05); applied as p -= lr * wd * p. */
  weight_decay: number;
}

/** Defaults for everything in {@link AdamWConfig} except `lr`. */
export const ADAMW_DEFAULTS: Readonly<Omit<AdamWConfig, "lr">> = Object.freeze({
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weight_decay: 0.05,
});

/** Build a full config from `lr` plus any overrides of {@link ADAMW_DEFAULTS}. */
export function adamwConfig(cfg: Partial<AdamWConfig> & { lr: number }): AdamWConfig {
  const full: AdamWConfig = { ...ADAMW_DEFAULTS, ...cfg };
  validateConfig(full);
  return full;
}

/**
 * Optimiser state. `step` counts completed updates (0 after init); `mu` and
 * `nu` are the first and second moments, same structure as the parameters.
 */
export interface AdamWState<T extends object = ArrayTree> {
  step: number;
  mu: T;
  nu: T;
}

/**
 * Fresh state: step 0 and zero moments shaped like `params` (same dtype).
 * Borrows `params` (does not consume them).
 */
export function adamwInit<T extends object>(params: T): AdamWState<T> {
  const [leaves, def] = flattenArrays(params, "adamwInit: params");
  const zeros = () => tree.unflatten(def, leaves.map((p) => np.zeros(p.shape, { dtype: p.dtype }))) as T;
  return { step: 0, mu: zeros(), nu: zeros() };
}

/**
 * One AdamW step over the whole tree.
 *
 * Ownership: consumes `params`, `grads`, `state.mu` and `state.nu`; returns new
 * arrays (the new params and a new state with `step + 1`). If it throws on a
 * validation error (mismatched structure/shapes, bad config) nothing is consumed.
 *
 * @param lr learning rate for this step (e.g. `schedule(state.step)`); passed to
 *   the compiled update as a traced scalar, so changing it does not recompile.
 * @param decayMask true where weight decay applies (see {@link decayMaskFor}).
 * @param lrScale optional per-leaf multiplier of `lr` (same structure as params; default 1),
 *   e.g. a faster rate for learned positions (see {@link mapParamLeaves}).
 */
export function adamwUpdate<T extends object>(
  params: T,
  grads: T,
  state: AdamWState<T>,
  lr: number,
  cfg: AdamWConfig,
  decayMask: DecayMask,
  lrScale?: LeafTree<number>,
): { params: T; state: AdamWState<T> } {
  validateConfig(cfg);
  if (!Number.isFinite(lr)) throw new RangeError(`adamwUpdate: lr must be finite, got ${lr}`);
  const [p, def] = flattenArrays(params, "adamwUpdate: params");
  const g = flattenLike(grads, def, p, "grads");
  const m = flattenLike(state.mu, def, p, "state.mu");
  const v = flattenLike(state.nu, def, p, "state.nu");
  const [mask, maskDef] = tree.flatten<DecayMask>(decayMask);
  if (!maskDef.equals(def) || mask.some((b) => typeof b !== "boolean")) {
    throw new TypeError("adamwUpdate: decayMask must have the structure of params with boolean leaves");
  }

  const t = state.step + 1;
  const bc1 = 1 - cfg.beta1 ** t;
  const bc2 = 1 - cfg.beta2 ** t;
  let scales: number[] = p.map(() => 1);
  if (lrScale !== undefined) {
    const [flat, scaleDef] = tree.flatten<number>(lrScale as tree.JsTree<number>);
    if (!scaleDef.equals(def) || flat.some((x) => typeof x !== "number")) {
      throw new TypeError("adamwUpdate: lrScale must have the structure of params with number leaves");
    }
    scales = flat;
  }
  const update = compiledUpdate(cfg, mask as boolean[], scales);
  const [p2, m2, v2] = update(p, g, m, v, lr, bc1, bc2);
  const rebuild = (xs: np.Array[]) => tree.unflatten(def, xs) as T;
  return { params: rebuild(p2), state: { step: t, mu: rebuild(m2), nu: rebuild(v2) } };
}

/**
 * Default "no weight decay" rule: true (exclude from decay) when the parameter
 * has ndim <= 1, or its last path segment is "bias", "attn_bias" or "positions" (decay
 * would pull learned positions to the origin), or any path
 * segment starts with "norm". Paths are dot-joined keys, e.g. "sheet.attn.attn_bias".
 */
export function defaultNoDecay(path: string, shape: readonly number[]): boolean {
  if (shape.length <= 1) return true;
  const segments = path.split(".");
  const last = segments[segments.length - 1];
  if (last === "bias" || last === "attn_bias" || last === "positions") return true;
  return segments.some((s) => s.startsWith("norm"));
}

/** A tree of the parameters' structure with leaves of type T. */
export type LeafTree<T> = T | LeafTree<T>[] | { [key: string]: LeafTree<T> };

/**
 * A tree of the structure of `params` whose leaf is `fn(path, shape)` for the
 * parameter there. Paths are dot-joined keys (JS-array children use their
 * index). Borrows `params`.
 */
export function mapParamLeaves<T>(params: object, fn: (path: string, shape: number[]) => T, what: string): LeafTree<T> {
  const walk = (node: unknown, path: string): LeafTree<T> => {
    if (node instanceof np.Array) return fn(path, [...node.shape]);
    const join = (key: string | number) => (path === "" ? String(key) : `${path}.${key}`);
    if (Array.isArray(node)) return node.map((child: unknown, i) => walk(child, join(i)));
    if (isPlainObject(node)) {
      const out: { [key: string]: LeafTree<T> } = {};
      for (const [key, child] of Object.entries(node)) out[key] = walk(child, join(key));
      return out;
    }
    throw new TypeError(`${what}: leaf at "${path}" is not a jax-js Array`);
  };
  return walk(params, "");
}

/** Weight-decay mask for `params`: true where decay applies, i.e. `!noDecay(path, shape)`. Borrows `params`. */
export function decayMaskFor(
  params: object,
  noDecay: (path: string, shape: number[]) => boolean = defaultNoDecay,
): DecayMask {
  return mapParamLeaves(params, (path, shape) => !noDecay(path, shape), "decayMaskFor") as DecayMask;
}

// ---------------------------------------------------------------------------

type FlatUpdate = (
  p: np.Array[],
  g: np.Array[],
  m: np.Array[],
  v: np.Array[],
  lr: np.Array,
  bc1: np.Array,
  bc2: np.Array,
) => [np.Array[], np.Array[], np.Array[]];

type CompiledUpdate = OwnedFunction<
  (
    p: np.Array[],
    g: np.Array[],
    m: np.Array[],
    v: np.Array[],
    lr: number,
    bc1: number,
    bc2: number,
  ) => [np.Array[], np.Array[], np.Array[]]
>;

const updateCache = new Map<string, CompiledUpdate>();
let traceCount = 0;

/**
 * How many times the whole-tree update has been traced (compiled) in this
 * process. Diagnostics/tests: it must not grow when only `lr` or the step changes.
 */
export function adamwCompileCount(): number {
  return traceCount;
}

/** Jitted flat-list update for a config and mask (cached; jit itself caches per shapes). */
function compiledUpdate(cfg: AdamWConfig, mask: boolean[], scales: number[]): CompiledUpdate {
  const { beta1: b1, beta2: b2, eps, weight_decay: wd } = cfg;
  const key = `${b1}|${b2}|${eps}|${wd}|${mask.map((b) => (b ? 1 : 0)).join("")}|${scales.join(",")}`;
  let fn = updateCache.get(key);
  if (!fn) {
    const flat: FlatUpdate = (p, g, m, v, lr, bc1, bc2) => {
      traceCount++;
      const decayKeep = lr.ref.mul(-wd).add(1); // 1 - lr * wd
      const pOut: np.Array[] = [];
      const mOut: np.Array[] = [];
      const vOut: np.Array[] = [];
      for (let i = 0; i < p.length; i++) {
        let pi = p[i];
        if (mask[i] && wd !== 0) pi = pi.mul(decayKeep.ref);
        const gi = g[i];
        const mi = m[i].mul(b1).add(gi.ref.mul(1 - b1));
        const vi = v[i].mul(b2).add(gi.ref.mul(gi).mul(1 - b2));
        const mhat = mi.ref.div(bc1.ref);
        const vhat = vi.ref.div(bc2.ref);
        let step = mhat.div(np.sqrt(vhat).add(eps)).mul(lr.ref);
        if (scales[i] !== 1) step = step.mul(scales[i]);
        pOut.push(pi.sub(step));
        mOut.push(mi);
        vOut.push(vi);
      }
      decayKeep.dispose();
      lr.dispose();
      bc1.dispose();
      bc2.dispose();
      return [pOut, mOut, vOut];
    };
    fn = jit(flat) as unknown as CompiledUpdate;
    updateCache.set(key, fn);
  }
  return fn;
}

function validateConfig(cfg: AdamWConfig): void {
  const { beta1, beta2, eps, weight_decay } = cfg;
  if (!(beta1 >= 0 && beta1 < 1)) throw new RangeError(`AdamW: beta1 must be in [0, 1), got ${beta1}`);
  if (!(beta2 >= 0 && beta2 < 1)) throw new RangeError(`AdamW: beta2 must be in [0, 1), got ${beta2}`);
  if (!(eps >= 0 && Number.isFinite(eps))) throw new RangeError(`AdamW: eps must be >= 0, got ${eps}`);
  if (!(weight_decay >= 0 && Number.isFinite(weight_decay))) {
    throw new RangeError(`AdamW: weight_decay must be >= 0, got ${weight_decay}`);
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && (x as object).constructor === Object;
}

/** Flatten a tree whose leaves must all be jax-js Arrays (borrows). */
export function flattenArrays(t: object, what: string): [np.Array[], tree.JsTreeDef] {
  const [leaves, def] = tree.flatten<unknown>(t as tree.JsTree<unknown>);
  for (const leaf of leaves) {
    if (!(leaf instanceof np.Array)) throw new TypeError(`${what}: every leaf must be a jax-js Array`);
  }
  return [leaves as np.Array[], def];
}

function flattenLike(t: object, def: tree.JsTreeDef, ref: np.Array[], what: string): np.Array[] {
  const [leaves, d] = flattenArrays(t, `adamwUpdate: ${what}`);
  if (!d.equals(def)) throw new TypeError(`adamwUpdate: ${what} does not have the structure of params`);
  leaves.forEach((x, i) => {
    const s = ref[i].shape;
    if (x.shape.length !== s.length || x.shape.some((n, k) => n !== s[k])) {
      throw new TypeError(`adamwUpdate: ${what} leaf ${i} has shape [${x.shape}], params [${s}]`);
    }
  });
  return leaves;
}
