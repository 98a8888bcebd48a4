import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Rng } from "../src/engine/rng.ts";
import {
  activationSparsity,
  ckaVsDistance,
  classSelectivity,
  columnResponses,
  correlationVsDistance,
  hoyerSparsity,
  linearCKA,
  moransI,
  moransINull,
  smoothnessIndex,
} from "../src/analysis/topography.ts";

/** Standard normal draw (Box–Muller) from a seeded stream. */
function gauss(r: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - r.next())) * Math.cos(2 * Math.PI * r.next());
}

/** side x side unit grid: positions [N, 2] and Euclidean distances [N, N]. */
function grid(side: number): { pos: Float64Array; dist: Float32Array; n: number } {
  const n = side * side;
  const pos = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    pos[2 * i] = i % side;
    pos[2 * i + 1] = Math.floor(i / side);
  }
  const dist = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      dist[i * n + j] = Math.hypot(pos[2 * i] - pos[2 * j], pos[2 * i + 1] - pos[2 * j + 1]);
    }
  }
  return { pos, dist, n };
}

/** Responses [images, N]: each image is a Gaussian blob of activity at a random place on the grid, plus noise. */
function smoothResponses(pos: Float64Array, n: number, side: number, images: number, noise: number, seed: number): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(images * n);
  const sigma = side / 4;
  for (let m = 0; m < images; m++) {
    const cx = r.uniform(0, side - 1);
    const cy = r.uniform(0, side - 1);
    for (let c = 0; c < n; c++) {
      const dx = pos[2 * c] - cx;
      const dy = pos[2 * c + 1] - cy;
      out[m * n + c] = Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)) + noise * gauss(r);
    }
  }
  return out;
}

function randomMatrix(rows: number, cols: number, seed: number): Float64Array {
  const r = new Rng(seed);
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = gauss(r);
  return out;
}

/** Row-major product A [m, p] x B [p, q]. */
function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, p: number, q: number): Float64Array {
  const out = new Float64Array(m * q);
  for (let i = 0; i < m; i++) for (let k = 0; k < p; k++) for (let j = 0; j < q; j++) out[i * q + j] += a[i * p + k] * b[k * q + j];
  return out;
}

/** A random p x p orthogonal matrix (Gram–Schmidt on a Gaussian matrix). */
function randomOrthogonal(p: number, seed: number): Float64Array {
  const a = randomMatrix(p, p, seed);
  const q = new Float64Array(p * p); // columns are the basis vectors
  for (let j = 0; j < p; j++) {
    const v = new Float64Array(p);
    for (let i = 0; i < p; i++) v[i] = a[i * p + j];
    for (let k = 0; k < j; k++) {
      let dot = 0;
      for (let i = 0; i < p; i++) dot += v[i] * q[i * p + k];
      for (let i = 0; i < p; i++) v[i] -= dot * q[i * p + k];
    }
    const norm = Math.hypot(...v);
    for (let i = 0; i < p; i++) q[i * p + j] = v[i] / norm;
  }
  return q;
}

/** Naive Moran's I, straight from the definition. */
function naiveMoran(x: number[], w: (i: number, j: number) => number): number {
  const n = x.length;
  const mean = x.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      num += w(i, j) * (x[i] - mean) * (x[j] - mean);
      wsum += w(i, j);
    }
  }
  const den = x.reduce((a, v) => a + (v - mean) ** 2, 0);
  return ((n / wsum) * num) / den;
}

function close(actual: number, expected: number, tol: number, msg?: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${msg ?? ""} expected ${expected}, got ${actual} (tol ${tol})`);
}

describe("columnResponses", () => {
  test("mean and norm over D", () => {
    // images=2, N=2, D=2
    const states = new Float32Array([1, 3, 3, 4, -2, 2, 0, 0]);
    assert.deepEqual(Array.from(columnResponses(states, 2, 2, 2)), [2, 3.5, 0, 0]);
    const norm = columnResponses(states, 2, 2, 2, "norm");
    close(norm[0], Math.sqrt(10), 1e-6);
    close(norm[1], 5, 1e-6);
    close(norm[2], Math.sqrt(8), 1e-6);
    assert.equal(norm[3], 0);
    assert.throws(() => columnResponses(states, 2, 2, 3), RangeError);
  });
});

describe("correlationVsDistance / smoothnessIndex", () => {
  const side = 10;
  const { pos, dist, n } = grid(side);
  const images = 300;

  test("smooth map: correlation falls with distance, positive smoothness", () => {
    const resp = smoothResponses(pos, n, side, images, 0.02, 1);
    const curve = correlationVsDistance(resp, images, n, dist, 6);
    assert.equal(curve.edges.length, 7);
    close(curve.edges[0], 1, 1e-6);
    close(curve.edges[6], Math.hypot(9, 9), 1e-5);
    assert.equal(curve.counts.reduce((a, b) => a + b, 0), (n * (n - 1)) / 2);
    assert.equal(curve.skippedPairs, 0);
    const mc = curve.meanCorrelation;
    assert.ok(mc[0] > 0.7, `nearest-bin correlation ${mc[0]}`);
    // Decreasing over the bulk of the range (the last, corner-to-corner bins hold few pairs).
    for (let b = 1; b < 5; b++) assert.ok(mc[b] < mc[b - 1], `bin ${b}: ${mc[b]} !< ${mc[b - 1]}`);
    assert.ok(mc[4] < 0 && mc[5] < 0, `far-bin correlations ${mc[4]}, ${mc[5]}`);
    const s = smoothnessIndex(curve);
    close(s, mc[0] - mc[5], 1e-12);
    assert.ok(s > 0.8, `smoothness ${s}`);
    const sn = smoothnessIndex(curve, "normalized");
    assert.ok(sn > 0 && sn <= 1, `normalized smoothness ${sn}`);
  });

  test("random map: smoothness ~ 0", () => {
    const r = new Rng(2);
    const resp = new Float32Array(images * n);
    for (let i = 0; i < resp.length; i++) resp[i] = gauss(r);
    const curve = correlationVsDistance(resp, images, n, dist, 6);
    for (const v of curve.meanCorrelation) assert.ok(Math.abs(v) < 0.05, `bin mean ${v}`);
    assert.ok(Math.abs(smoothnessIndex(curve)) < 0.05, `smoothness ${smoothnessIndex(curve)}`);
  });

  test("matches a naive Pearson loop; constant columns are skipped and counted", () => {
    const { dist: d3, n: n3 } = grid(3);
    const imgs = 7;
    const r = new Rng(3);
    const resp = new Float32Array(imgs * n3);
    for (let i = 0; i < resp.length; i++) resp[i] = gauss(r);
    for (let m = 0; m < imgs; m++) resp[m * n3 + 4] = 0.1; // column 4 constant
    const curve = correlationVsDistance(resp, imgs, n3, d3, 3);
    assert.equal(curve.constantColumns, 1);
    assert.equal(curve.skippedPairs, n3 - 1);
    const sums = [0, 0, 0];
    const counts = [0, 0, 0];
    const col = (c: number): number[] => Array.from({ length: imgs }, (_, m) => resp[m * n3 + c]);
    for (let i = 0; i < n3; i++) {
      for (let j = i + 1; j < n3; j++) {
        if (i === 4 || j === 4) continue;
        const a = col(i);
        const b = col(j);
        const ma = a.reduce((s, v) => s + v, 0) / imgs;
        const mb = b.reduce((s, v) => s + v, 0) / imgs;
        let sab = 0;
        let saa = 0;
        let sbb = 0;
        for (let m = 0; m < imgs; m++) {
          sab += (a[m] - ma) * (b[m] - mb);
          saa += (a[m] - ma) ** 2;
          sbb += (b[m] - mb) ** 2;
        }
        // distances 1, sqrt2, 2, sqrt5, sqrt8 over [1, sqrt8] in 3 bins
        const dd = d3[i * n3 + j];
        const lo = 1;
        const hi = Math.sqrt(8);
        const bin = Math.min(2, Math.floor(((dd - lo) / (hi - lo)) * 3));
        sums[bin] += sab / Math.sqrt(saa * sbb);
        counts[bin]++;
      }
    }
    assert.deepEqual(curve.counts, counts);
    for (let b = 0; b < 3; b++) close(curve.meanCorrelation[b], sums[b] / counts[b], 1e-6);
  });

  test("smoothnessIndex edge cases", () => {
    assert.ok(Number.isNaN(smoothnessIndex({ meanCorrelation: [0.5, NaN], counts: [3, 0] })));
    assert.equal(smoothnessIndex({ meanCorrelation: [NaN, 0.5, 0.2, NaN], counts: [0, 2, 2, 0] }), 0.3);
    close(smoothnessIndex({ meanCKA: [0.9, 0.3], counts: [1, 1] }, "normalized"), 0.5, 1e-12);
  });
});

describe("classSelectivity", () => {
  test("hand-computed 2-class d' and preferred class", () => {
    // 5 images, 2 columns; class 0 = images 0,1; class 1 = images 2,3,4.
    const labels = new Int32Array([0, 0, 1, 1, 1]);
    const col0 = [1, 3, 4, 6, 8];
    const col1 = [5, 7, 2, 2, 2];
    const resp = new Float32Array(10);
    for (let m = 0; m < 5; m++) {
      resp[m * 2] = col0[m];
      resp[m * 2 + 1] = col1[m];
    }
    const s = classSelectivity(resp, labels, 5, 2, 2);
    // column 0: mu0 = 2, var0 = 1; mu1 = 6, var1 = 8/3 -> d'0 = -4 / sqrt(11/6).
    const d00 = -4 / Math.sqrt(11 / 6);
    close(s.dprime[0], d00, 1e-5);
    close(s.dprime[2], -d00, 1e-5);
    // column 1: mu0 = 6, var0 = 1; mu1 = 2, var1 = 0 -> d'0 = 4 / sqrt(1/2).
    close(s.dprime[1], 4 / Math.sqrt(0.5), 1e-5);
    close(s.dprime[3], -4 / Math.sqrt(0.5), 1e-5);
    assert.deepEqual(Array.from(s.preferred), [1, 0]);
    close(s.maxDprime[0], -d00, 1e-5);
    close(s.maxDprime[1], 4 / Math.sqrt(0.5), 1e-5);
  });

  test("zero variance is floored; empty class is NaN; bad labels throw", () => {
    const labels = new Int32Array([0, 0, 1, 1]);
    const resp = new Float32Array([0, 0, 1, 1]); // N = 1, perfectly separated, noiseless
    const s = classSelectivity(resp, labels, 4, 1, 3);
    close(s.dprime[1], 1 / Math.sqrt(1e-12), 1);
    assert.ok(Number.isFinite(s.dprime[1]));
    assert.ok(Number.isNaN(s.dprime[2]));
    assert.equal(s.preferred[0], 1);
    assert.throws(() => classSelectivity(resp, new Int32Array([0, 0, 3, 1]), 4, 1, 3), RangeError);
  });

  test("many classes: preferred class recovers the tuning", () => {
    const r = new Rng(5);
    const images = 400;
    const n = 6;
    const classes = 3;
    const labels = new Int32Array(images);
    const resp = new Float32Array(images * n);
    for (let m = 0; m < images; m++) {
      labels[m] = r.int(classes);
      for (let c = 0; c < n; c++) resp[m * n + c] = (labels[m] === c % classes ? 2 : 0) + gauss(r);
    }
    const s = classSelectivity(resp, labels, images, n, classes);
    assert.deepEqual(Array.from(s.preferred), [0, 1, 2, 0, 1, 2]);
    for (let c = 0; c < n; c++) assert.ok(s.maxDprime[c] > 1.5, `d' ${s.maxDprime[c]}`);
  });
});

describe("moransI", () => {
  test("hand-computed 1-D cases", () => {
    // 4 columns on a line at 0, 1, 2, 3, values 1..4.
    const dist = new Float32Array(16);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) dist[i * 4 + j] = Math.abs(i - j);
    const x = new Float32Array([1, 2, 3, 4]);
    // neighbours (radius 1): W = 6, sum w z z = 2.5, sum z^2 = 5 -> I = 4/6 * 2.5/5 = 1/3
    close(moransI(x, dist, 4, { weights: "neighbors", radius: 1 }), 1 / 3, 1e-12);
    // inverse distance: W = 26/3, sum w z z = -0.5 -> I = (12/26) * (-0.1) = -3/65
    close(moransI(x, dist, 4, { weights: "inverse" }), -3 / 65, 1e-12);
    // alternating values: perfect negative autocorrelation with nearest neighbours
    close(moransI(new Float32Array([1, -1, 1, -1]), dist, 4, { weights: "neighbors", radius: 1 }), -1, 1e-12);
    assert.ok(Number.isNaN(moransI(new Float32Array([2, 2, 2, 2]), dist, 4, { weights: "inverse" })));
    assert.throws(() => moransI(x, dist, 4, { weights: "neighbors" }), RangeError);
  });

  const side = 16;
  const { pos, dist, n } = grid(side);
  const smooth = new Float32Array(n);
  for (let i = 0; i < n; i++) smooth[i] = Math.sin(pos[2 * i] / 3) + Math.cos(pos[2 * i + 1] / 4);

  test("matches a naive loop", () => {
    const w = (i: number, j: number): number => 1 / dist[i * n + j];
    close(moransI(smooth, dist, n, { weights: "inverse" }), naiveMoran(Array.from(smooth), w), 1e-9);
    const wn = (i: number, j: number): number => (dist[i * n + j] <= 1.5 ? 1 : 0);
    close(moransI(smooth, dist, n, { weights: "neighbors", radius: 1.5 }), naiveMoran(Array.from(smooth), wn), 1e-9);
  });

  test("smooth map is high, shuffled map ~ 0, null z large", () => {
    const iNb = moransI(smooth, dist, n, { weights: "neighbors", radius: 1 });
    assert.ok(iNb > 0.9, `neighbours I ${iNb}`);
    const iInv = moransI(smooth, dist, n, { weights: "inverse" });
    // Inverse-distance weights give long-range pairs much weight, so I is lower (but clearly > 0).
    assert.ok(iInv > 0.25, `inverse I ${iInv}`);
    const r = new Rng(7);
    const shuffled = Float32Array.from(r.shuffle(Array.from(smooth)));
    const iShuf = moransI(shuffled, dist, n, { weights: "neighbors", radius: 1 });
    assert.ok(Math.abs(iShuf) < 0.1, `shuffled I ${iShuf}`);

    const nul = moransINull(smooth, dist, n, { weights: "neighbors", radius: 1 }, { shuffles: 100, seed: 3 });
    close(nul.observed, iNb, 1e-12);
    assert.ok(Math.abs(nul.nullMean - -1 / (n - 1)) < 0.02, `null mean ${nul.nullMean}`);
    assert.ok(nul.nullStd > 0 && nul.nullStd < 0.1, `null std ${nul.nullStd}`);
    assert.ok(nul.z > 10, `z ${nul.z}`);
    close(nul.p, 1 / 101, 1e-12);

    const nulShuf = moransINull(shuffled, dist, n, { weights: "neighbors", radius: 1 }, { shuffles: 100, seed: 3 });
    assert.ok(Math.abs(nulShuf.z) < 3, `shuffled z ${nulShuf.z}`);
    assert.ok(nulShuf.p > 0.01, `shuffled p ${nulShuf.p}`);
  });

  test("same seed -> identical null, different seed -> different", () => {
    const opts = { weights: "inverse" as const };
    const a = moransINull(smooth, dist, n, opts, { shuffles: 20, seed: 11 });
    const b = moransINull(smooth, dist, n, opts, { shuffles: 20, seed: 11 });
    const c = moransINull(smooth, dist, n, opts, { shuffles: 20, seed: 12 });
    assert.deepEqual(a, b);
    assert.notEqual(a.nullMean, c.nullMean);
  });
});

describe("activationSparsity", () => {
  test("Hoyer: one-hot = 1, constant = 0", () => {
    assert.equal(hoyerSparsity([0, 0, 5, 0, 0, 0]), 1);
    close(hoyerSparsity([3, 3, 3, 3]), 0, 1e-12);
    close(hoyerSparsity([-2, 2, -2, 2]), 0, 1e-12);
    // [1, 1, 0, 0]: L1/L2 = sqrt2, k = 4 -> (2 - sqrt2) / 1
    close(hoyerSparsity([1, 1, 0, 0]), 2 - Math.SQRT2, 1e-12);
    assert.ok(Number.isNaN(hoyerSparsity([0, 0, 0])));
  });

  test("per column over images x D", () => {
    // images = 2, N = 3, D = 2. column 0 one-hot, column 1 constant, column 2 all zero.
    const states = new Float32Array([
      0, 0, /**/ 1, 1, /**/ 0, 0,
      7, 0.001, /**/ 1, 1, /**/ 0, 0,
    ]);
    const s = activationSparsity(states, 2, 3, 2);
    // column 0: 0, 0 and 0.001 <= 0.01 * 7 are near zero, 7 is not; Hoyer of [0,0,7,0.001] is ~1.
    assert.deepEqual(Array.from(s.fractionNearZero), [0.75, 0, 1]);
    close(s.hoyer[0], hoyerSparsity([0, 0, 7, 0.001]), 1e-6);
    close(s.hoyer[1], 0, 1e-7);
    assert.ok(Number.isNaN(s.hoyer[2]));
    close(s.meanHoyer, (s.hoyer[0] + s.hoyer[1]) / 2, 1e-7);
    const abs = activationSparsity(states, 2, 3, 2, { threshold: 1e-4, relativeTo: "absolute" });
    assert.deepEqual(Array.from(abs.fractionNearZero), [0.5, 0, 1]);
    const glob = activationSparsity(states, 2, 3, 2, { threshold: 0.2, relativeTo: "global" });
    assert.deepEqual(Array.from(glob.fractionNearZero), [0.75, 1, 1]);
  });
});

describe("linearCKA", () => {
  const m = 60;
  const p = 5;
  const x = randomMatrix(m, p, 21);

  test("invariances: CKA(X, X) = CKA(X, XR) = CKA(X, sX + c) = 1", () => {
    close(linearCKA(x, x, m, p, p), 1, 1e-12);
    const xr = matmul(x, randomOrthogonal(p, 22), m, p, p);
    close(linearCKA(x, xr, m, p, p), 1, 1e-10);
    const xs = x.map((v) => 3.5 * v + 2);
    close(linearCKA(x, xs, m, p, p), 1, 1e-12);
    // Non-orthogonal mixing is not invariant.
    const mix = matmul(x, new Float64Array([1, 0, 0, 0, 0, 5, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]), m, p, p);
    assert.ok(linearCKA(x, mix, m, p, p) < 0.99);
  });

  test("independent random matrices give small CKA", () => {
    const big = 1000;
    const a = randomMatrix(big, 4, 31);
    const b = randomMatrix(big, 6, 32);
    const v = linearCKA(a, b, big, 4, 6);
    assert.ok(v >= 0 && v < 0.05, `CKA ${v}`);
  });

  test("hand-computed tiny cases", () => {
    // 1-D: CKA = Pearson r^2; x = [1,2,3], y = [1,3,2] -> r = 1/2.
    close(linearCKA([1, 2, 3], [1, 3, 2], 3, 1, 1), 0.25, 1e-12);
    // X = [[1,0],[0,1],[-1,-1]], Y = [1,0,-1]: ||Y^T X||^2 = 5, ||X^T X|| = sqrt10, ||Y^T Y|| = 2.
    close(linearCKA([1, 0, 0, 1, -1, -1], [1, 0, -1], 3, 2, 1), 5 / (2 * Math.sqrt(10)), 1e-12);
    assert.ok(Number.isNaN(linearCKA([1, 1, 1], [1, 2, 3], 3, 1, 1)));
  });

  test("matches a naive Gram-matrix computation (odd m)", () => {
    // Independent route: CKA = <Kx, Ky>_F / (||Kx||_F ||Ky||_F) with K = H X X^T H.
    const mm = 7;
    const a = randomMatrix(mm, 3, 51);
    const b = randomMatrix(mm, 2, 52);
    const gram = (z: Float64Array, cols: number): number[][] => {
      const k = Array.from({ length: mm }, (_, i) =>
        Array.from({ length: mm }, (_, j) => {
          let s = 0;
          for (let c = 0; c < cols; c++) s += z[i * cols + c] * z[j * cols + c];
          return s;
        }),
      );
      const rowMean = k.map((row) => row.reduce((s, v) => s + v, 0) / mm);
      const all = rowMean.reduce((s, v) => s + v, 0) / mm;
      return k.map((row, i) => row.map((v, j) => v - rowMean[i] - rowMean[j] + all));
    };
    const kx = gram(a, 3);
    const ky = gram(b, 2);
    let xy = 0;
    let xx = 0;
    let yy = 0;
    for (let i = 0; i < mm; i++) {
      for (let j = 0; j < mm; j++) {
        xy += kx[i][j] * ky[i][j];
        xx += kx[i][j] ** 2;
        yy += ky[i][j] ** 2;
      }
    }
    close(linearCKA(a, b, mm, 3, 2), xy / Math.sqrt(xx * yy), 1e-12);
  });
});

describe("ckaVsDistance", () => {
  const side = 6;
  const { dist, n } = grid(side);
  const images = 80;
  const d = 4;

  /** Columns share one feature space rotated a little more with every step along x. */
  function statesWithDrift(seed: number): Float32Array {
    const r = new Rng(seed);
    const latent = randomMatrix(images, d, seed + 100);
    const states = new Float32Array(images * n * d);
    for (let c = 0; c < n; c++) {
      const xpos = c % side;
      const ypos = Math.floor(c / side);
      // Mix the latent with fresh noise in proportion to position.
      const noiseWeight = 0.35 * (xpos + ypos);
      for (let m = 0; m < images; m++) {
        for (let k = 0; k < d; k++) {
          states[(m * n + c) * d + k] = latent[m * d + k] + noiseWeight * gauss(r) + 5;
        }
      }
    }
    return states;
  }

  test("matches linearCKA on extracted column matrices", () => {
    const states = statesWithDrift(1);
    // Constant column 7 is skipped.
    for (let m = 0; m < images; m++) for (let k = 0; k < d; k++) states[(m * n + 7) * d + k] = 0.5 * k;
    const curve = ckaVsDistance(states, images, n, d, dist, 4);
    assert.equal(curve.sampledPairs, (n * (n - 1)) / 2);
    assert.equal(curve.skippedPairs, n - 1);
    const colMat = (c: number): Float64Array => {
      const out = new Float64Array(images * d);
      for (let m = 0; m < images; m++) for (let k = 0; k < d; k++) out[m * d + k] = states[(m * n + c) * d + k];
      return out;
    };
    const sums = [0, 0, 0, 0];
    const counts = [0, 0, 0, 0];
    const lo = curve.edges[0];
    const hi = curve.edges[4];
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        if (i === 7 || j === 7) continue;
        const bin = Math.min(3, Math.floor(((dist[i * n + j] - lo) / (hi - lo)) * 4));
        sums[bin] += linearCKA(colMat(i), colMat(j), images, d, d);
        counts[bin]++;
      }
    }
    assert.deepEqual(curve.counts, counts);
    for (let b = 0; b < 4; b++) close(curve.meanCKA[b], sums[b] / counts[b], 1e-9);
  });

  test("shared feature space decays with distance; sampling is seeded", () => {
    const states = statesWithDrift(2);
    const full = ckaVsDistance(states, images, n, d, dist, 4);
    assert.ok(full.meanCKA[0] > full.meanCKA[3], `${full.meanCKA}`);
    assert.ok(smoothnessIndex(full) > 0);
    const a = ckaVsDistance(states, images, n, d, dist, 4, { maxPairs: 200, seed: 9 });
    const b = ckaVsDistance(states, images, n, d, dist, 4, { maxPairs: 200, seed: 9 });
    const c = ckaVsDistance(states, images, n, d, dist, 4, { maxPairs: 200, seed: 10 });
    assert.equal(a.sampledPairs, 200);
    assert.equal(a.counts.reduce((s, v) => s + v, 0), 200);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.meanCKA, c.meanCKA);
    assert.deepEqual(a.edges, full.edges);
    // Dense-sampling branch (maxPairs > half of all pairs) also gives distinct pairs.
    const dense = ckaVsDistance(states, images, n, d, dist, 4, { maxPairs: 600, seed: 1 });
    assert.equal(dense.counts.reduce((s, v) => s + v, 0), 600);
  });

  test("identical columns give CKA 1 at every distance", () => {
    const r = new Rng(4);
    const base = randomMatrix(images, d, 40);
    const states = new Float32Array(images * n * d);
    const rot = randomOrthogonal(d, 41);
    const rotated = matmul(base, rot, images, d, d);
    for (let c = 0; c < n; c++) {
      const s = 0.5 + r.next();
      const src = c % 2 === 0 ? base : rotated;
      for (let m = 0; m < images; m++) for (let k = 0; k < d; k++) states[(m * n + c) * d + k] = s * src[m * d + k] + c;
    }
    const curve = ckaVsDistance(states, images, n, d, dist, 3);
    for (const v of curve.meanCKA) close(v, 1, 1e-4);
  });
});
