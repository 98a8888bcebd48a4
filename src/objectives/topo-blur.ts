/**
 * Weight-blur smoothness, after TopoLoss (Deb et al. 2025, ICLR, "TopoNets: High performing
 * vision and language models with brain-like topography"; the `topoloss` package's
 * LaplacianPyramid loss): lay a layer's units out on a cortical sheet, each unit's weight
 * vector at its place, blur the sheet, and ask every unit's weights to point where the blurred
 * sheet's do:
 *
 *   loss(W) = 1 - mean_i cos(w_i, (K W)_i)
 *
 * w_i = column i's weight matrix flattened (one untied matrix per column: attention projections
 * and MLP layers, as the feature-consistency penalty takes them; biases and norms left out),
 * K [N, N] a fixed blur of the sheet that mixes columns of the same area only. The penalty is the
 * mean of loss(W) over those matrices (and over the blocks of a stack). 0 when every column's
 * weights are a positive multiple of its blurred neighbourhood's. Gradients flow through both
 * w_i and the blurred sheet, as in TopoLoss. Two blurs (topo_blur.kernel):
 *
 *   - "resample" (TopoLoss's): bilinear downsampling of each area's grid by `factor`, then
 *     bilinear upsampling back to its size (torch.nn.functional.interpolate, align_corners
 *     false: out size floor(L / factor), source coordinate (o + 0.5) * scale - 0.5 clamped at 0,
 *     scale = factor going down and L_down / L going up). Areas without a grid are refused.
 *   - "gaussian": K_ij proportional to exp(-d_ij^2 / (2 sigma^2)) over the columns j of i's area,
 *     rows summing to 1; any geometry (distances as the geometry defines them: geodesic on a
 *     sphere, wrap-around on a torus).
 *
 * The blur is built once from the configured geometry (with learned positions: the initial
 * layout). Weight-only, so on the native backend it is computed in jax-js on the sheet's weights
 * and its gradient added to the native sheet gradient, as the consistency penalty is.
 */
import { numpy as np } from "../engine/jax.ts";
import type { Area } from "../geometry/index.ts";

/** Which blur (topo_blur in the training config). */
export interface BlurSpec {
  kernel: "gaussian" | "resample";
  /** Gaussian width, in the geometry's distance units. */
  sigma: number;
  /** Resampling: the grid is shrunk by this factor, then resized back. */
  factor: number;
}

/**
 * PyTorch's 1-D linear interpolation (align_corners false) from `from` to `to` samples as a
 * matrix [to, from] (row o: the weights of output o). `scale` maps output to input coordinates.
 */
export function linearResize(from: number, to: number, scale: number): Float64Array {
  const out = new Float64Array(to * from);
  for (let o = 0; o < to; o++) {
    const src = Math.max(scale * (o + 0.5) - 0.5, 0);
    const i0 = Math.floor(src);
    const i1 = i0 < from - 1 ? i0 + 1 : i0;
    const l1 = src - i0;
    out[o * from + i0] += 1 - l1;
    out[o * from + i1] += l1;
  }
  return out;
}

/** Down- then up-sampling of `length` samples by `factor`, [length, length]; `what` names the axis in errors. */
export function resampleBlur1d(length: number, factor: number, what: string): Float64Array {
  const small = Math.floor(length / factor);
  if (small < 1) throw new Error(`topo_blur.factor is ${factor} but ${what} has only ${length} columns; set topo_blur.factor to at most ${length}`);
  const down = linearResize(length, small, factor); // [small, length]
  const up = linearResize(small, length, small / length); // [length, small]
  const out = new Float64Array(length * length);
  for (let i = 0; i < length; i++) for (let t = 0; t < small; t++) for (let j = 0; j < length; j++) out[i * length + j] += up[i * small + t] * down[t * length + j];
  return out;
}

/**
 * The blur K [N * N] of a geometry (row i: the weights of column i's blurred value; zero outside
 * its area). distances: [N * N].
 */
export function blurMatrix(distances: ArrayLike<number>, n: number, areas: Area[], spec: BlurSpec): Float32Array {
  const out = new Float32Array(n * n);
  for (const area of areas) {
    const size = area.end - area.start;
    if (spec.kernel === "resample") {
      if (!area.grid) throw new Error(`topo_blur.kernel "resample" needs grid areas, but area "${area.name}" has no grid; use topo_blur.kernel "gaussian"`);
      const [rows, cols] = area.grid;
      const kr = resampleBlur1d(rows, spec.factor, `area "${area.name}"'s rows`);
      const kc = resampleBlur1d(cols, spec.factor, `area "${area.name}"'s columns`);
      for (let i = 0; i < size; i++) {
        for (let j = 0; j < size; j++) {
          const v = kr[Math.floor(i / cols) * rows + Math.floor(j / cols)] * kc[(i % cols) * cols + (j % cols)];
          out[(area.start + i) * n + area.start + j] = v;
        }
      }
      continue;
    }
    const c = 1 / (2 * spec.sigma * spec.sigma);
    for (let i = area.start; i < area.end; i++) {
      let z = 0;
      for (let j = area.start; j < area.end; j++) z += Math.exp(-(distances[i * n + j] ** 2) * c);
      for (let j = area.start; j < area.end; j++) out[i * n + j] = Math.exp(-(distances[i * n + j] ** 2) * c) / z;
    }
  }
  return out;
}

/**
 * Mean over `weights` of 1 - mean_i cos(w_i, (K W)_i).
 * weights: arrays [N, out, in] or [depth, N, out, in] (consumed); blur K: [N, N] (consumed).
 * Returns a scalar.
 */
export function topoBlur(weights: np.Array[], blur: np.Array): np.Array {
  if (weights.length === 0) throw new Error("topo_blur needs untied weights (sheet.untie_attn or sheet.untie_mlp)");
  let sum: np.Array = np.zeros([]);
  for (const w of weights) {
    const blocks = w.ndim === 4 ? w.shape[0] : 1;
    const n = w.shape[w.ndim - 3];
    const rows = w.reshape([blocks, n, -1]); // [blocks, N, F = out*in]
    // everything from the Gram matrix G = W W^T (as cheap as the consistency penalty's cosines):
    // w_i . b_i = sum_j K_ij G_ij, |w_i|^2 = G_ii, |b_i|^2 = (K G K^T)_ii = sum_j (K G)_ij K_ij
    const gram = np.matmul(rows.ref, rows.transpose([0, 2, 1])); // [blocks, N, N]
    // K G as one 2-D product K [N, N] @ [N, blocks*N] (no broadcasting matmul)
    const kg = np.matmul(blur.ref, gram.ref.transpose([1, 0, 2]).reshape([n, blocks * n])).reshape([n, blocks, n]).transpose([1, 0, 2]);
    const dot = gram.ref.mul(blur.ref).sum(-1); // [blocks, N]
    const own = gram.mul(np.eye(n)).sum(-1);
    const blurred = kg.mul(blur.ref).sum(-1);
    const cos = dot.div(np.sqrt(own.add(1e-12).mul(blurred.add(1e-12))));
    sum = sum.add(np.subtract(1, cos.mean()));
  }
  blur.dispose();
  return sum.div(weights.length);
}
