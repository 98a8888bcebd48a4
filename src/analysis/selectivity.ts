/**
 * Category selectivity as topographic-model papers measure it, and the maps built from it.
 *
 * - Welch t-statistic of class c vs all other images (TDANN, Margalit et al. 2024; ITN, Blauch
 *   et al. 2022; the fMRI localiser contrast "category > rest"):
 *   t = (mu_c - mu_rest) / sqrt(s_c^2 / n_c + s_rest^2 / n_rest), s^2 the SAMPLE variances (n - 1).
 * - d' = (mu_c - mu_rest) / sqrt((s_c^2 + s_rest^2) / 2): the pooled SD is the root of the
 *   UNWEIGHTED mean of the two sample variances (the usual signal-detection d' for two
 *   distributions), not the n-weighted pooled variance, so a 1-vs-9-classes contrast is not
 *   dominated by the "rest" variance.
 * - Gaussian smoothing of a grid map (normalised convolution: NaN cells and cells outside the
 *   grid carry no weight, so edges are not darkened), before patch detection (as TDANN and ITN).
 * - Patches: cells above a threshold, grouped into connected components (4- or 8-connected);
 *   components whose size is within [minSize, maxSize] count as patches (cf. TDANN's
 *   face-patch criteria).
 */
import type { NumericArray } from "./topography.ts";

/** Outcome of {@link welchSelectivity}. */
export interface WelchSelectivity {
  /** Welch t of every class for every unit, row-major [classes, n]; NaN for a class without images or without other images. */
  t: Float64Array;
  /** d' (unweighted pooled SD), row-major [classes, n]. */
  dprime: Float64Array;
  /** Images per class. */
  counts: number[];
}

/**
 * Welch t and d' of every class vs the rest for every unit. A variance below `floor` (default
 * 1e-12) is raised to it, so a noiseless perfectly separating unit gets a large finite value.
 *
 * @param responses row-major [images, n]
 * @param labels [images] in [0, classes)
 */
export function welchSelectivity(responses: NumericArray, labels: ArrayLike<number>, images: number, n: number, classes: number, floor = 1e-12): WelchSelectivity {
  if (responses.length !== images * n) throw new RangeError(`welchSelectivity: expected ${images * n} responses, got ${responses.length}`);
  if (labels.length !== images) throw new RangeError(`welchSelectivity: expected ${images} labels, got ${labels.length}`);
  const counts = new Array<number>(classes).fill(0);
  for (let m = 0; m < images; m++) {
    const y = labels[m];
    if (!(Number.isInteger(y) && y >= 0 && y < classes)) throw new RangeError(`labels[${m}] = ${y} is outside [0, ${classes})`);
    counts[y]++;
  }
  // shifted sums (minus each unit's overall mean) keep variances accurate for large offsets
  const overall = new Float64Array(n);
  for (let m = 0; m < images; m++) for (let u = 0; u < n; u++) overall[u] += responses[m * n + u];
  for (let u = 0; u < n; u++) overall[u] /= images;
  const s1 = new Float64Array(classes * n);
  const s2 = new Float64Array(classes * n);
  for (let m = 0; m < images; m++) {
    const o = labels[m] * n;
    for (let u = 0; u < n; u++) {
      const x = responses[m * n + u] - overall[u];
      s1[o + u] += x;
      s2[o + u] += x * x;
    }
  }
  const t1 = new Float64Array(n);
  const t2 = new Float64Array(n);
  for (let k = 0; k < classes; k++) {
    for (let u = 0; u < n; u++) {
      t1[u] += s1[k * n + u];
      t2[u] += s2[k * n + u];
    }
  }
  const t = new Float64Array(classes * n);
  const dprime = new Float64Array(classes * n);
  for (let k = 0; k < classes; k++) {
    const nc = counts[k];
    const nr = images - nc;
    for (let u = 0; u < n; u++) {
      const o = k * n + u;
      if (nc < 2 || nr < 2) {
        t[o] = dprime[o] = NaN;
        continue;
      }
      const muC = s1[o] / nc;
      const muR = (t1[u] - s1[o]) / nr;
      const varC = Math.max(floor, (s2[o] - nc * muC * muC) / (nc - 1));
      const varR = Math.max(floor, (t2[u] - s2[o] - nr * muR * muR) / (nr - 1));
      t[o] = (muC - muR) / Math.sqrt(varC / nc + varR / nr);
      dprime[o] = (muC - muR) / Math.sqrt((varC + varR) / 2);
    }
  }
  return { t, dprime, counts };
}

/** Index of the largest finite value of each unit over rows of a [rows, n] matrix (-1 when none). */
export function argmaxRows(values: NumericArray, rows: number, n: number): Int32Array {
  const out = new Int32Array(n).fill(-1);
  for (let u = 0; u < n; u++) {
    let best = -Infinity;
    for (let k = 0; k < rows; k++) {
      const v = values[k * n + u];
      if (Number.isFinite(v) && v > best) {
        best = v;
        out[u] = k;
      }
    }
  }
  return out;
}

/**
 * Gaussian smoothing of a rows x cols map (row-major) with SD `sigma` in cells, truncated at
 * 3 sigma: out_i = sum_j K_ij v_j / sum_j K_ij over the finite cells j inside the grid
 * (`wrap`: a torus). sigma = 0 returns a copy. A cell without finite neighbours stays NaN.
 */
export function gaussianSmoothGrid(values: NumericArray, rows: number, cols: number, sigma: number, wrap = false): Float64Array {
  if (values.length !== rows * cols) throw new RangeError(`gaussianSmoothGrid: expected ${rows * cols} values, got ${values.length}`);
  if (!(sigma > 0)) return Float64Array.from(values);
  const radius = Math.ceil(3 * sigma);
  const k = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)));
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let s = 0;
      let w = 0;
      for (let dr = -radius; dr <= radius; dr++) {
        let rr = r + dr;
        if (wrap) rr = ((rr % rows) + rows) % rows;
        else if (rr < 0 || rr >= rows) continue;
        for (let dc = -radius; dc <= radius; dc++) {
          let cc = c + dc;
          if (wrap) cc = ((cc % cols) + cols) % cols;
          else if (cc < 0 || cc >= cols) continue;
          const v = values[rr * cols + cc];
          if (!Number.isFinite(v)) continue;
          const kw = k[dr + radius] * k[dc + radius];
          s += kw * v;
          w += kw;
        }
      }
      out[r * cols + c] = w > 0 ? s / w : NaN;
    }
  }
  return out;
}

/** Options of {@link detectPatches}. */
export interface PatchOptions {
  /** A cell is in a patch when its value is > threshold. */
  threshold: number;
  /** Smallest and largest component size (cells) that counts as a patch (default 1 and Infinity). */
  minSize?: number;
  maxSize?: number;
  /** 4 (edges, the default, as scipy.ndimage.label) or 8 (edges and corners). */
  connectivity?: 4 | 8;
}

/** Outcome of {@link detectPatches}. */
export interface Patches {
  /** Patches found (components within the size limits). */
  count: number;
  /** Their sizes in cells, largest first. */
  sizes: number[];
  /** Their centroids [row, col]. */
  centroids: [number, number][];
  /** Per cell: patch number 0..count-1 (in `sizes` order), or -1. */
  labels: Int32Array;
  /** Components above threshold rejected by the size limits. */
  rejected: number;
}

/** Connected components of the cells above threshold of a rows x cols map; see {@link PatchOptions}. */
export function detectPatches(values: NumericArray, rows: number, cols: number, opts: PatchOptions): Patches {
  if (values.length !== rows * cols) throw new RangeError(`detectPatches: expected ${rows * cols} values, got ${values.length}`);
  const minSize = opts.minSize ?? 1;
  const maxSize = opts.maxSize ?? Infinity;
  const steps = (opts.connectivity ?? 4) === 8 ? [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1]] : [[-1, 0], [0, -1], [0, 1], [1, 0]];
  const comp = new Int32Array(rows * cols).fill(-1);
  const comps: number[][] = [];
  for (let start = 0; start < rows * cols; start++) {
    if (comp[start] >= 0 || !(values[start] > opts.threshold)) continue;
    const id = comps.length;
    const cells = [start];
    comp[start] = id;
    for (let q = 0; q < cells.length; q++) {
      const r = Math.floor(cells[q] / cols);
      const c = cells[q] % cols;
      for (const [dr, dc] of steps) {
        const rr = r + dr;
        const cc = c + dc;
        if (rr < 0 || rr >= rows || cc < 0 || cc >= cols) continue;
        const j = rr * cols + cc;
        if (comp[j] < 0 && values[j] > opts.threshold) {
          comp[j] = id;
          cells.push(j);
        }
      }
    }
    comps.push(cells);
  }
  const kept = comps.filter((c) => c.length >= minSize && c.length <= maxSize).sort((a, b) => b.length - a.length || a[0] - b[0]);
  const labels = new Int32Array(rows * cols).fill(-1);
  kept.forEach((cells, p) => {
    cells.forEach((i) => {
      labels[i] = p;
    });
  });
  return {
    count: kept.length,
    sizes: kept.map((c) => c.length),
    centroids: kept.map((cells) => [cells.reduce((s, i) => s + Math.floor(i / cols), 0) / cells.length, cells.reduce((s, i) => s + (i % cols), 0) / cells.length]),
    labels,
    rejected: comps.length - kept.length,
  };
}
