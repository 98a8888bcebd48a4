/**
 * Global-norm gradient clipping, as PyTorch's `clip_grad_norm_` (L2 norm over
 * every element of every leaf; scale all leaves by
 * `min(1, maxNorm / (norm + 1e-6))`).
 *
 * Both functions are jitted over the flat list of leaves and keep everything
 * on the device: the norm comes back as a scalar Array, so no host round-trip
 * is needed per step. Read it when you log: `(await norm.data())[0]` (that
 * consumes `norm`), or dispose it. `maxNorm` is a traced argument, so changing
 * it does not recompile. Float16 leaves are squared and summed in float32.
 */
import { jit, numpy as np, tree } from "../engine/jax.ts";
import { flattenArrays } from "./adamw.ts";

/** Added to the norm before dividing, as in PyTorch. */
export const CLIP_EPS = 1e-6;

function sumOfSquares(leaves: np.Array[]): np.Array {
  let acc: np.Array | null = null;
  for (const g of leaves) {
    const x = g.dtype === np.float16 ? g.astype(np.float32) : g;
    const s = x.ref.mul(x).sum();
    acc = acc === null ? s : acc.add(s);
  }
  return acc ?? np.zeros([]);
}

const normJit = jit((leaves: np.Array[]) => np.sqrt(sumOfSquares(leaves)));

const clipJit = jit((leaves: np.Array[], maxNorm: np.Array): [np.Array[], np.Array] => {
  const norm = np.sqrt(sumOfSquares(leaves.map((g) => g.ref)));
  const scale = np.minimum(1, maxNorm.div(norm.ref.add(CLIP_EPS)));
  const out = leaves.map((g) => g.mul(g.dtype === scale.dtype ? scale.ref : scale.ref.astype(g.dtype)));
  scale.dispose();
  return [out, norm];
});

/**
 * L2 norm of all elements of all leaves of `grads`, as a scalar Array.
 * Borrows `grads` (does not consume them).
 */
export function globalNorm(grads: object): np.Array {
  const [leaves] = flattenArrays(grads, "globalNorm: grads");
  if (leaves.length === 0) return np.zeros([]);
  return normJit(leaves.map((g) => g.ref));
}

/**
 * Clip `grads` by global norm: every leaf is multiplied by
 * `min(1, maxNorm / (norm + 1e-6))`, so a norm at or below `maxNorm` leaves the
 * gradients (almost exactly) unchanged and a larger one is scaled to `maxNorm`.
 *
 * Ownership: consumes `grads` (and `maxNorm` if it is an Array); returns new
 * clipped gradients and the PRE-clip norm as a scalar Array (owned by the caller).
 * Usable inside a caller's `jit` as well.
 */
export function clipByGlobalNorm<T extends object>(grads: T, maxNorm: number | np.Array): { grads: T; norm: np.Array } {
  if (typeof maxNorm === "number" && !(maxNorm > 0 && Number.isFinite(maxNorm))) {
    throw new RangeError(`clipByGlobalNorm: maxNorm must be a finite number > 0, got ${maxNorm}`);
  }
  const [leaves, def] = flattenArrays(grads, "clipByGlobalNorm: grads");
  if (leaves.length === 0) {
    if (typeof maxNorm !== "number") maxNorm.dispose();
    return { grads, norm: np.zeros([]) };
  }
  const [clipped, norm] = clipJit(leaves, maxNorm);
  return { grads: tree.unflatten(def, clipped) as T, norm };
}
