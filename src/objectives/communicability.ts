/**
 * Communicability-weighted wiring cost, after the spatially embedded recurrent networks (seRNN)
 * of Achterberg, Akarca et al. 2023 (Nature Machine Intelligence 5, "Spatially embedded
 * recurrent neural networks reveal widespread links between structural and functional
 * neuroscience findings"): a connection costs its length times its weight times how much the
 * two nodes also communicate through every other path, so that the network is pushed towards
 * a few strong short connections and away from redundant long ones. Their regulariser is
 *
 *   sum_ij |W|_ij D_ij C_ij,   C = expm(S^-1/2 |W| S^-1/2) with its diagonal set to 0,
 *
 * S = diag(node strengths), the weighted communicability of Crofts & Higham 2009 (J. R. Soc.
 * Interface 6, 411). For the sheet, W is the connectivity the attention actually uses: the
 * head-mean attention averaged over the batch and the recurrent steps, Ā [N, N] (row i: where
 * column i reads from; non-negative, so |Ā| = Ā). seRNN's strength is the sum of |W| over its
 * targets (a Keras kernel is [from, to]); in the attention's [to, from] orientation that is the
 * column sum s_j = sum_i Ā_ij, how much column j is read (row sums are 1 by the softmax). With
 * D the L1 wiring weights (d^p / mean d^p, so lambda is scale-free as in the "l1" form) and the
 * same mean over target columns as the other forms:
 *
 *   cost = (1/N) sum_ij Ā_ij D_ij C_ij,   C = expm(S^-1/2 Ā S^-1/2), C_ii = 0,  S = diag(s).
 *
 * Everything is differentiated, as in seRNN (TensorFlow autodiff through expm): Ā in its own
 * factor, inside the matrix exponential and in the strengths; D too when positions are learned.
 * The native backend gets the same gradient: the cost is a function of Ā only, so its gradient
 * in every step's attention is (dcost/dĀ) / (batch * depth), which the native kernels' wiring
 * mechanism folds into the softmax backward as per-connection weights N * dcost/dĀ.
 *
 * The matrix exponential is scaling and squaring with a Taylor polynomial, inside the traced
 * graph (no data-dependent control flow): s = clamp(ceil(log2 |A|_1), 0, 10) squarings (|A|_1
 * the largest column sum), chosen from the values but held constant for the gradient; the
 * degree-12 Taylor polynomial of X = A / 2^s (|X|_1 <= 1: truncation error below
 * e / 13! ~ 4e-10, under float32 rounding) by Paterson-Stockmeyer (X^2, X^3, X^4, then
 * B0 + X^4 (B1 + X^4 B2): 5 products); then 10 conditional squarings of which the first s take
 * effect. Norms above 2^10 are under-scaled and lose accuracy (not expected here: the
 * strength-normalised attention has a norm of order 1 unless some column is almost never read,
 * and the exponential of a large non-negative matrix overflows float32 anyway). Cost: 15 N x N products per evaluation and about three times that
 * with the gradient, O(N^3): about 0.3 s a training step at N = 147 (the tiny preset) on 2 cores,
 * growing as N^3.
 */
import { lax, numpy as np, tree } from "../engine/jax.ts";

/** 1 / k! for the degree-12 Taylor polynomial. */
const COEFFS = Array.from({ length: 13 }, (_, k) => 1 / Array.from({ length: k }, (_, i) => i + 1).reduce((a, b) => a * b, 1));
/** Squarings always traced (the ones past s are no-ops). */
export const MAX_SQUARINGS = 10;
/** Floor on the strengths, so an unread column does not divide by zero. */
const STRENGTH_EPS = 1e-12;

/**
 * Matrix exponential of a square matrix by scaling and squaring (see the file comment).
 * Consumes `a` [N, N]. Returns [N, N].
 */
export function expm(a: np.Array): np.Array {
  const [n, m] = a.shape;
  if (a.ndim !== 2 || n !== m) throw new Error(`expm needs a square matrix, got shape [${a.shape.join(", ")}]`);
  const norm = lax.stopGradient(np.abs(a.ref).sum(0).max()); // 1-norm: the largest column sum
  const squarings = np.clip(np.ceil(np.log2(norm)), 0, MAX_SQUARINGS); // 0 for a zero matrix (log2 0 = -inf)
  const x = a.mul(np.exp2(squarings.ref.neg())); // |X|_1 <= 1
  const eye = np.eye(n);
  // Paterson-Stockmeyer: sum_k X^k / k! = B0 + X^4 (B1 + X^4 B2), Bj = sum_{t<4} c_{4j+t} X^t (+ c_12 X^4 in B2)
  const x2 = np.matmul(x.ref, x.ref);
  const x3 = np.matmul(x2.ref, x.ref);
  const x4 = np.matmul(x2.ref, x2.ref);
  const block = (k: number) => eye.ref.mul(COEFFS[k]).add(x.ref.mul(COEFFS[k + 1])).add(x2.ref.mul(COEFFS[k + 2])).add(x3.ref.mul(COEFFS[k + 3]));
  const b2 = block(8).add(x4.ref.mul(COEFFS[12]));
  let p = block(0).add(np.matmul(x4.ref, block(4).add(np.matmul(x4, b2))));
  tree.dispose([x, x2, x3]);
  for (let i = 0; i < MAX_SQUARINGS; i++) {
    // square only while i < s; otherwise square the identity (never the finished, possibly large, result)
    const q = np.where(squarings.ref.greater(i), p.ref, eye.ref);
    p = np.where(squarings.ref.greater(i), np.matmul(q.ref, q), p);
  }
  eye.dispose();
  squarings.dispose();
  return p;
}

/**
 * Weighted communicability of a connectivity Ā [N, N] (non-negative; row i = what column i
 * reads): C = expm(S^-1/2 Ā S^-1/2) with S = diag of the column sums and the diagonal of C set
 * to 0. Consumes `a`. Returns [N, N].
 */
export function communicability(a: np.Array): np.Array {
  const n = a.shape[0];
  const r = np.reciprocal(np.sqrt(a.ref.sum(0).add(STRENGTH_EPS))); // s_j^-1/2 [N]
  const normalised = a.mul(r.ref.reshape([n, 1])).mul(r.reshape([1, n]));
  return expm(normalised).mul(np.subtract(1, np.eye(n)));
}

/**
 * (1/N) sum_ij Ā_ij W_ij C_ij with C = communicability(Ā). Consumes `attnMean` Ā [N, N] (the
 * attention averaged over batch and steps) and `weights` W [N, N] (the L1 wiring weights).
 * Returns a scalar (lambda 1).
 */
export function communicabilityWiringCost(attnMean: np.Array, weights: np.Array): np.Array {
  const n = attnMean.shape[0];
  const c = communicability(attnMean.ref);
  return attnMean.mul(weights).mul(c).sum().div(n);
}
