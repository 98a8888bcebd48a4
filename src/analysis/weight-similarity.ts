/**
 * Weight similarity vs distance: how alike are the untied weights of two columns,
 * as a function of how far apart they sit? This is the "neighbour-consistency
 * curve" of the feature-consistency penalty (src/objectives/feature-consistency.ts),
 * which pulls each column's weights towards those of its nearest columns: with the
 * penalty on, the curve should rise at short distances.
 *
 * For every untied weight tensor (one [out, in] matrix per column, and per block of a
 * stack), w_i is column i's matrix flattened and
 *   cos(i, j) = <w_i, w_j> / (|w_i| |w_j|)   (0 when either vector is all zeros).
 * Pairs i<j are binned by distance d_ij with the same equal-width bins as
 * correlationVsDistance ({@link distanceEdges}). Pure: plain arrays in, plain data out.
 */
import { binOf, distanceEdges, type DistanceBinOptions, type NumericArray } from "./topography.ts";

/** One untied weight tensor: one matrix per column (and per block of a stack). */
export interface ColumnWeights {
  /** Name, e.g. the checkpoint tensor name "sheet.attn.q.weight". */
  name: string;
  /** Row-major values of `shape`. */
  values: Float32Array;
  /** [N, out, in], or [depth, N, out, in] for a stack of blocks. */
  shape: number[];
}

/** Options of {@link weightSimilarityVsDistance}. */
export interface WeightSimilarityOptions extends DistanceBinOptions {
  /**
   * Neighbours of a column for `neighbour_similarity`: its k nearest other columns, ties
   * broken by index (the neighbour graph of the feature-consistency penalty, so that
   * neighbour_similarity = 1 - penalty). Default: every column at the nearest distance.
   */
  neighbours?: number;
}

/** The curve of one weight tensor. */
export interface MatrixWeightSimilarity {
  name: string;
  /** Blocks averaged over (1 for a recurrent sheet, depth for a stack). */
  blocks: number;
  /** Mean cosine of the pairs in each bin, averaged over blocks; NaN for an empty bin. */
  meanCosine: number[];
  /** Mean over columns of their mean cosine with their nearest neighbour(s), averaged over blocks. */
  neighbour_similarity: number;
}

/** Outcome of {@link weightSimilarityVsDistance}. */
export interface WeightSimilarityCurve {
  /** bins+1 equal-width bin edges; bin b is [edges[b], edges[b+1]) (the last bin also includes its right edge). */
  edges: number[];
  /** Mean cosine per bin, averaged over the tensors (each averaged over its blocks); NaN for an empty bin. */
  meanCosine: number[];
  /** Number of column pairs i<j in each bin. */
  counts: number[];
  /** Mean over the tensors of their neighbour similarity. */
  neighbour_similarity: number;
  /** k of the neighbour graph, or null for "all columns at the nearest distance". */
  neighbours: number | null;
  /** Per tensor. */
  matrices: MatrixWeightSimilarity[];
}

/** Neighbour lists of each column (see {@link WeightSimilarityOptions.neighbours}). */
function neighbourLists(distances: NumericArray, n: number, k: number | undefined): number[][] {
  const lists: number[][] = [];
  for (let i = 0; i < n; i++) {
    const others: number[] = [];
    for (let j = 0; j < n; j++) if (j !== i) others.push(j);
    if (k !== undefined) {
      others.sort((a, b) => distances[i * n + a] - distances[i * n + b] || a - b);
      lists.push(others.slice(0, k));
      continue;
    }
    let nearest = Infinity;
    for (const j of others) nearest = Math.min(nearest, distances[i * n + j]);
    const tol = 1e-6 * Math.max(1, Math.abs(nearest));
    lists.push(others.filter((j) => distances[i * n + j] <= nearest + tol));
  }
  return lists;
}

/** Cosine similarity of every column pair of one block: [N*N] (diagonal 1, or 0 for zero vectors). */
function blockCosines(values: Float32Array, offset: number, n: number, size: number): Float64Array {
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const oi = offset + i * size;
    for (let p = 0; p < size; p++) s += values[oi + p] * values[oi + p];
    norms[i] = Math.sqrt(s);
  }
  const cos = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const oi = offset + i * size;
    cos[i * n + i] = norms[i] > 0 ? 1 : 0;
    for (let j = i + 1; j < n; j++) {
      const oj = offset + j * size;
      let dot = 0;
      for (let p = 0; p < size; p++) dot += values[oi + p] * values[oj + p];
      const c = norms[i] > 0 && norms[j] > 0 ? dot / (norms[i] * norms[j]) : 0;
      cos[i * n + j] = c;
      cos[j * n + i] = c;
    }
  }
  return cos;
}

/**
 * Cosine similarity of the untied weights of every column pair, binned by distance, and
 * the mean similarity of each column to its nearest neighbour(s). Each tensor counts once:
 * per bin, the mean over pairs is averaged over the tensor's blocks, then over tensors.
 * Cost O(N^2 out in) per tensor and block.
 *
 * @param weights untied weight tensors, [N, out, in] or [depth, N, out, in]
 * @param distances row-major [N, N] distances of the geometry
 * @param n number of columns N
 * @param bins number of equal-width distance bins
 * @throws RangeError on an empty list, a shape without the column axis N, values that do not
 *   match their shape, or a distance matrix that is not N x N.
 */
export function weightSimilarityVsDistance(
  weights: readonly ColumnWeights[],
  distances: NumericArray,
  n: number,
  bins: number,
  opts: WeightSimilarityOptions = {},
): WeightSimilarityCurve {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`weightSimilarityVsDistance: need N >= 2 columns, got ${n}`);
  if (distances.length !== n * n) throw new RangeError(`weightSimilarityVsDistance: distances: expected length ${n * n}, got ${distances.length}`);
  if (weights.length === 0) throw new RangeError("weightSimilarityVsDistance: no untied weights");
  const k = opts.neighbours;
  if (k !== undefined && !(Number.isInteger(k) && k >= 1 && k <= n - 1)) {
    throw new RangeError(`weightSimilarityVsDistance: neighbours must be an integer in 1..${n - 1}, got ${k}`);
  }
  const edges = distanceEdges(distances, n, bins, opts.range);
  const pairBin = new Int32Array(n * n).fill(-1);
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const b = binOf(distances[i * n + j], edges);
      pairBin[i * n + j] = b;
      if (b >= 0) counts[b]++;
    }
  }
  const lists = neighbourLists(distances, n, k);

  const matrices = weights.map((w): MatrixWeightSimilarity => {
    const { shape } = w;
    if ((shape.length !== 3 && shape.length !== 4) || shape[shape.length - 3] !== n) {
      throw new RangeError(`weightSimilarityVsDistance: ${w.name} has shape [${shape.join(", ")}]; expected [${n}, out, in] or [depth, ${n}, out, in]`);
    }
    const total = shape.reduce((a, b) => a * b, 1);
    if (w.values.length !== total) throw new RangeError(`weightSimilarityVsDistance: ${w.name} has ${w.values.length} values for shape [${shape.join(", ")}]`);
    const blocks = shape.length === 4 ? shape[0] : 1;
    const size = shape[shape.length - 2] * shape[shape.length - 1];
    const meanSum = new Float64Array(bins);
    let neighbourSum = 0;
    for (let blk = 0; blk < blocks; blk++) {
      const cos = blockCosines(w.values, blk * n * size, n, size);
      const sums = new Float64Array(bins);
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          const b = pairBin[i * n + j];
          if (b >= 0) sums[b] += cos[i * n + j];
        }
      }
      for (let b = 0; b < bins; b++) meanSum[b] += counts[b] > 0 ? sums[b] / counts[b] : 0;
      let columnSum = 0;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (const j of lists[i]) s += cos[i * n + j];
        columnSum += s / lists[i].length;
      }
      neighbourSum += columnSum / n;
    }
    return {
      name: w.name,
      blocks,
      meanCosine: Array.from(meanSum, (s, b) => (counts[b] > 0 ? s / blocks : NaN)),
      neighbour_similarity: neighbourSum / blocks,
    };
  });
  const meanCosine = counts.map((c, b) => (c > 0 ? matrices.reduce((s, m) => s + m.meanCosine[b], 0) / matrices.length : NaN));
  return {
    edges,
    meanCosine,
    counts,
    neighbour_similarity: matrices.reduce((s, m) => s + m.neighbour_similarity, 0) / matrices.length,
    neighbours: k ?? null,
    matrices,
  };
}
