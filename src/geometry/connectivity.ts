/**
 * Sparse connectivity patterns: for every column i, the K source columns it reads from,
 * as an index list `Int32Array` [N * K] (row-major: row i = indices[i*K .. i*K+K)).
 *
 * One implementation per pattern, in the geometry's own metric ({@link ColumnMetric}: the
 * straight-line distance over the nearest periodic image, warped for the sphere's geodesic
 * and the self offset), and never the N x N distance matrix, so it scales to N = 1,048,576
 * columns: neighbour search uses a uniform-grid spatial hash (counting sort of the columns into
 * cells, then ring-by-ring search around each query), O(N K) for roughly uniform layouts.
 * Wrapping axes (the torus) put 3 images of every column along each of them into the hash;
 * only the nearest image of a column counts.
 *
 * Row order and exact ties (documented once, used everywhere):
 *   - column i itself is always entry 0 of its own row (even when other columns share its position);
 *   - the other local entries follow by ascending distance, exact ties broken by ascending column index;
 *   - small-world rows append their long-range entries after the local ones, in the order drawn.
 */
import { readUserFileSync } from "../io/atomic.ts";
import { Rng, mixSeed } from "../engine/rng.ts";
import { columnDistance, type ColumnMetric, type Positions } from "./metric.ts";

export type { Positions } from "./metric.ts";

/** Largest connectivity file read (256 MiB: 32,768 columns x 1,024 sources as text). */
export const MAX_CONNECTIVITY_FILE_BYTES = 256 * 2 ** 20;

/** A connectivity pattern: N rows of K source-column indices, [N * K] row-major. */
export interface Connectivity {
  indices: Int32Array;
  /** Number of columns (rows). */
  n: number;
  /** Sources per column (row length). */
  k: number;
}

// ---------------------------------------------------------------------------
// Uniform-grid spatial hash
// ---------------------------------------------------------------------------

/**
 * Columns sorted into a dense grid of equal cubic cells (side `cell`) over their bounding box.
 * Axes with zero extent get one cell. `items[start[c] .. start[c+1])` are the columns in cell c
 * (ascending column index), cell c = sum_a coord_a * stride_a.
 */
interface SpatialGrid {
  dims: number;
  origin: Float64Array;
  cell: number;
  /** Cells per axis. */
  counts: Int32Array;
  strides: Float64Array;
  /** [numCells + 1] prefix offsets into `items`. */
  start: Int32Array;
  /** Column indices grouped by cell. */
  items: Int32Array;
  /** Cell coordinate of each column per axis, [N * dims]. */
  coords: Int32Array;
  /** Largest number of columns in one cell. */
  maxOccupancy: number;
}

/** Mean columns per occupied cell the grid aims for. */
const TARGET_OCCUPANCY = 2;
/** The grid never has more than this many cells per column (bounds memory for manifold-like layouts). */
const MAX_CELLS_PER_COLUMN = 4;

/**
 * The points the spatial hash holds: the columns, then (for wrapping axes) their shifted images.
 * Point t is an image of column t % n; points 0..n-1 are the columns themselves.
 */
interface Space {
  n: number;
  dims: number;
  points: Positions;
  numPoints: number;
  period: Float64Array | null;
  warp: ((e: number) => number) | null;
}

/** Check a metric's positions and periods; returns the number of columns N. */
function checkMetric(m: ColumnMetric, what: string): number {
  const { positions, dims, period } = m;
  if (!Number.isInteger(dims) || dims < 1) throw new Error(`${what}: dims must be a positive integer, got ${dims}`);
  if (positions.length % dims !== 0) {
    throw new Error(`${what}: positions has ${positions.length} values, not a multiple of dims = ${dims}`);
  }
  const n = positions.length / dims;
  if (n < 1) throw new Error(`${what}: positions is empty`);
  for (let t = 0; t < positions.length; t++) {
    if (!Number.isFinite(positions[t])) {
      throw new Error(`${what}: positions[${Math.floor(t / dims)}][${t % dims}] is ${positions[t]}; every coordinate must be finite`);
    }
  }
  if (period && (period.length !== dims || period.some((l) => !(l >= 0) || !Number.isFinite(l)))) {
    throw new Error(`${what}: period must hold ${dims} finite numbers >= 0 (0: the axis does not wrap), got [${Array.from(period).join(", ")}]`);
  }
  return n;
}

/** The spatial hash's points of a checked metric: its N columns and their images. */
function spaceOf(m: ColumnMetric, what: string): Space {
  const n = checkMetric(m, what);
  const { positions, dims, period } = m;
  const wrapping = period ? Array.from(period, (l, a) => (l > 0 ? a : -1)).filter((a) => a >= 0) : [];
  if (wrapping.length === 0) return { n, dims, points: positions, numPoints: n, period: null, warp: m.warp };
  // images shifted by -L, 0, +L along each wrapping axis; shift combination 0 (no shift) first
  const images = 3 ** wrapping.length;
  const points = new Float64Array(n * images * dims);
  for (let c = 0; c < images; c++) {
    for (let i = 0; i < n; i++) for (let a = 0; a < dims; a++) points[(c * n + i) * dims + a] = positions[i * dims + a];
    let code = c;
    for (const a of wrapping) {
      const shift = [0, -1, 1][code % 3] * period![a];
      code = Math.floor(code / 3);
      for (let i = 0; i < n; i++) points[(c * n + i) * dims + a] += shift;
    }
  }
  return { n, dims, points, numPoints: n * images, period, warp: m.warp };
}

/** Whether point t is the image of its column nearest to column i: each wrapped offset in (-L/2, L/2]. */
function nearestImage(space: Space, i: number, t: number): boolean {
  const { period, points, dims } = space;
  if (!period) return true;
  for (let a = 0; a < dims; a++) {
    const l = period[a];
    if (l === 0) continue;
    const delta = points[t * dims + a] - points[i * dims + a];
    if (delta <= -l / 2 || delta > l / 2) return false;
  }
  return true;
}

/** The metric's distance for a straight-line distance e. */
function warped(space: Space, e: number): number {
  return space.warp ? space.warp(e) : e;
}

function buildGrid(positions: Positions, dims: number, n: number): SpatialGrid {
  const lo = new Float64Array(dims).fill(Infinity);
  const hi = new Float64Array(dims).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < dims; a++) {
      const v = positions[i * dims + a];
      if (v < lo[a]) lo[a] = v;
      if (v > hi[a]) hi[a] = v;
    }
  }
  const extents = Array.from(hi, (h, a) => h - lo[a]);
  const scale = Math.max(...extents);
  const active = extents.filter((e) => e > scale * 1e-9 && e > 0);
  // Cell side from the volume of the active axes, then shrink while too few cells are occupied
  // (columns on a lower-dimensional manifold), never exceeding MAX_CELLS_PER_COLUMN * n cells.
  let cell = active.length === 0 ? 1 : (active.reduce((p, e) => p * e, 1) / Math.max(1, n / TARGET_OCCUPANCY)) ** (1 / active.length);
  const countsFor = (c: number): Int32Array =>
    Int32Array.from(extents, (e) => (e > 0 && active.length > 0 ? Math.max(1, Math.min(2 ** 30, Math.floor(e / c) + 1)) : 1));
  const totalCells = (counts: Int32Array): number => counts.reduce((p, c) => p * c, 1);
  let counts = countsFor(cell);
  while (totalCells(counts) > MAX_CELLS_PER_COLUMN * n && active.length > 0) {
    cell *= 1.25;
    counts = countsFor(cell);
  }
  for (let refine = 0; refine < 6 && active.length > 0; refine++) {
    const occupied = new Set<number>();
    const strides = stridesOf(counts);
    for (let i = 0; i < n; i++) occupied.add(cellOf(positions, dims, i, lo, cell, counts, strides));
    const mean = n / occupied.size;
    if (mean <= 2 * TARGET_OCCUPANCY) break;
    const finer = cell * (TARGET_OCCUPANCY / mean) ** (1 / active.length);
    const finerCounts = countsFor(finer);
    if (totalCells(finerCounts) > MAX_CELLS_PER_COLUMN * n) break;
    cell = finer;
    counts = finerCounts;
  }
  const strides = stridesOf(counts);
  const numCells = totalCells(counts);
  const start = new Int32Array(numCells + 1);
  const coords = new Int32Array(n * dims);
  const cellIds = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let a = 0; a < dims; a++) {
      const k = Math.min(counts[a] - 1, Math.floor((positions[i * dims + a] - lo[a]) / cell));
      coords[i * dims + a] = k;
      c += k * strides[a];
    }
    cellIds[i] = c;
    start[c + 1]++;
  }
  let maxOccupancy = 0;
  for (let c = 0; c < numCells; c++) {
    if (start[c + 1] > maxOccupancy) maxOccupancy = start[c + 1];
    start[c + 1] += start[c];
  }
  const fill = start.slice(0, numCells);
  const items = new Int32Array(n);
  for (let i = 0; i < n; i++) items[fill[cellIds[i]]++] = i;
  return { dims, origin: lo, cell, counts, strides, start, items, coords, maxOccupancy };
}

function stridesOf(counts: Int32Array): Float64Array {
  const strides = new Float64Array(counts.length);
  let s = 1;
  for (let a = counts.length - 1; a >= 0; a--) {
    strides[a] = s;
    s *= counts[a];
  }
  return strides;
}

function cellOf(positions: Positions, dims: number, i: number, lo: Float64Array, cell: number, counts: Int32Array, strides: Float64Array): number {
  let c = 0;
  for (let a = 0; a < dims; a++) {
    c += Math.min(counts[a] - 1, Math.floor((positions[i * dims + a] - lo[a]) / cell)) * strides[a];
  }
  return c;
}

function squaredDistance(positions: Positions, dims: number, i: number, j: number): number {
  let s = 0;
  for (let a = 0; a < dims; a++) {
    const d = positions[i * dims + a] - positions[j * dims + a];
    s += d * d;
  }
  return s;
}

/**
 * Visit every cell whose Chebyshev cell-distance from `centre` is exactly `r` (clipped to the grid).
 * Returns false when the ring lies entirely outside the grid.
 */
function forEachRingCell(grid: SpatialGrid, centre: Int32Array, r: number, visit: (cell: number) => void): boolean {
  const { dims, counts, strides } = grid;
  const lo = new Int32Array(dims);
  const hi = new Int32Array(dims);
  for (let a = 0; a < dims; a++) {
    lo[a] = Math.max(0, centre[a] - r);
    hi[a] = Math.min(counts[a] - 1, centre[a] + r);
  }
  let visited = false;
  // Odometer over the clipped cube; skip cells strictly inside the ring.
  const cur = Int32Array.from(lo);
  for (;;) {
    let onRing = false;
    let c = 0;
    for (let a = 0; a < dims; a++) {
      if (Math.abs(cur[a] - centre[a]) === r) onRing = true;
      c += cur[a] * strides[a];
    }
    if (onRing) {
      visited = true;
      visit(c);
    }
    let a = dims - 1;
    while (a >= 0) {
      if (cur[a] < hi[a]) {
        cur[a]++;
        break;
      }
      cur[a] = lo[a];
      a--;
    }
    if (a < 0) return visited;
  }
}

/**
 * Lower bound of the distance from the query at `pos` to any column in a cell outside the
 * Chebyshev ring `r` around `centre`; Infinity once the rings cover the whole grid.
 */
function outsideRingBound(grid: SpatialGrid, positions: Positions, i: number, centre: Int32Array, r: number): number {
  let bound = Infinity;
  for (let a = 0; a < grid.dims; a++) {
    const p = positions[i * grid.dims + a] - grid.origin[a];
    if (centre[a] - r > 0) bound = Math.min(bound, p - (centre[a] - r) * grid.cell);
    if (centre[a] + r < grid.counts[a] - 1) bound = Math.min(bound, (centre[a] + r + 1) * grid.cell - p);
  }
  return Math.max(0, bound);
}

/** Max-heap of (squared distance, column) pairs ordered lexicographically: the root is the worst kept entry. */
class NearestHeap {
  readonly d: Float64Array;
  readonly j: Int32Array;
  size = 0;
  constructor(readonly capacity: number) {
    this.d = new Float64Array(capacity);
    this.j = new Int32Array(capacity);
  }
  #worse(a: number, b: number): boolean {
    return this.d[a] > this.d[b] || (this.d[a] === this.d[b] && this.j[a] > this.j[b]);
  }
  #swap(a: number, b: number): void {
    const d = this.d[a];
    this.d[a] = this.d[b];
    this.d[b] = d;
    const j = this.j[a];
    this.j[a] = this.j[b];
    this.j[b] = j;
  }
  get full(): boolean {
    return this.size === this.capacity;
  }
  /** Squared distance of the worst kept entry. */
  get worst(): number {
    return this.d[0];
  }
  offer(d: number, j: number): void {
    if (this.size < this.capacity) {
      let c = this.size++;
      this.d[c] = d;
      this.j[c] = j;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!this.#worse(c, p)) break;
        this.#swap(c, p);
        c = p;
      }
      return;
    }
    if (d > this.d[0] || (d === this.d[0] && j > this.j[0])) return;
    this.d[0] = d;
    this.j[0] = j;
    let c = 0;
    for (;;) {
      const l = 2 * c + 1;
      const r = l + 1;
      let m = c;
      if (l < this.size && this.#worse(l, m)) m = l;
      if (r < this.size && this.#worse(r, m)) m = r;
      if (m === c) break;
      this.#swap(c, m);
      c = m;
    }
  }
  /** Kept entries in ascending (distance, column) order; empties the heap. */
  drain(outJ: Int32Array, outD: Float64Array, offset: number): void {
    const order = Array.from({ length: this.size }, (_, t) => t).sort((a, b) => this.d[a] - this.d[b] || this.j[a] - this.j[b]);
    order.forEach((t, r) => {
      outJ[offset + r] = this.j[t];
      outD[offset + r] = this.d[t];
    });
    this.size = 0;
  }
}

/**
 * For every column, the `k - 1` nearest OTHER columns (ascending distance, ties by index),
 * written after column i itself into rows of `k`. Also returns each row's squared straight-line distances.
 */
function nearestRows(space: Space, k: number, grid: SpatialGrid): { indices: Int32Array; sq: Float64Array } {
  const { n, dims, points } = space;
  const indices = new Int32Array(n * k);
  const sq = new Float64Array(n * k);
  const heap = new NearestHeap(Math.max(1, k - 1));
  const centre = new Int32Array(dims);
  const { start, items } = grid;
  for (let i = 0; i < n; i++) {
    indices[i * k] = i;
    if (k === 1) continue;
    for (let a = 0; a < dims; a++) centre[a] = grid.coords[i * dims + a];
    for (let r = 0; ; r++) {
      const inside = forEachRingCell(grid, centre, r, (c) => {
        for (let u = start[c]; u < start[c + 1]; u++) {
          const t = items[u];
          const j = t % n;
          if (j !== i && nearestImage(space, i, t)) heap.offer(squaredDistance(points, dims, i, t), j);
        }
      });
      const bound = outsideRingBound(grid, points, i, centre, r);
      if (!inside || bound === Infinity) break;
      // Stop once nothing outside the rings seen so far can beat (or tie) the worst kept entry.
      const margin = bound - 1e-9 * grid.cell; // guards against rounding in the cell assignment
      if (heap.full && margin > 0 && heap.worst < margin * margin) break;
    }
    heap.drain(indices, sq, i * k + 1);
  }
  return { indices, sq };
}

/**
 * Local connectivity: each column reads from itself and its `k - 1` nearest columns in the
 * metric (ties by ascending index; see the module comment).
 *
 * Returns indices [N * k]. Uniform-grid spatial hash, O(N k) for roughly uniform layouts, no
 * N x N matrix (N = 1,048,576 takes seconds).
 */
export function localConnectivity(metric: ColumnMetric, k: number): Int32Array {
  const space = spaceOf(metric, "localConnectivity");
  const n = space.n;
  if (!Number.isInteger(k) || k < 1 || k > n) throw new Error(`localConnectivity: k must be an integer in 1..${n} (the number of columns), got ${k}`);
  return nearestRows(space, k, buildGrid(space.points, space.dims, space.numPoints)).indices;
}

/** Options of {@link smallWorldConnectivity}. */
export interface SmallWorldOptions {
  /** Seed of the long-range draws: the same seed gives the same pattern. */
  seed: number;
  /**
   * 0 or left out: long-range sources uniform over the non-local columns. decay > 0: drawn with
   * probability proportional to d^-decay (d = distance to the target column), by exact rejection sampling.
   */
  decay?: number;
}

/**
 * Small-world connectivity: each row holds the `kLocal` local entries of
 * {@link localConnectivity} (itself first), then `kLong` distinct long-range sources drawn
 * without replacement from the columns NOT in the local set, uniformly or with probability
 * proportional to d^-decay (d in the metric). Deterministic given `seed` (row i draws from
 * Rng(mixSeed(seed, i))). Returns indices [N * (kLocal + kLong)].
 *
 * Sampling with decay > 0 is exact rejection sampling with a distance-shell envelope on the
 * spatial grid: pick a cell ring r around the target with probability proportional to
 * (cells in ring) * maxOccupancy * lb_r^-decay (lb_r = a lower bound on distances in ring r, and at
 * least the kLocal-th local distance), a uniform cell of the ring and a uniform slot in it (empty
 * slots and images other than a column's nearest reject), then accept column j with probability
 * (lb_r / d_j)^decay; lb_r bounds the straight-line distance, which bounds d_j. Each column j is thus
 * drawn with probability proportional to d_j^-decay; the cost per draw stays small for spread-out layouts.
 * Distances below the floor (the kLocal-th local distance, at least 1e-9 times the grid's cell
 * size) count as the floor, so duplicate positions get a large but finite weight.
 */
export function smallWorldConnectivity(metric: ColumnMetric, kLocal: number, kLong: number, options: SmallWorldOptions): Int32Array {
  const space = spaceOf(metric, "smallWorldConnectivity");
  const n = space.n;
  if (!Number.isInteger(kLocal) || kLocal < 1) throw new Error(`smallWorldConnectivity: kLocal must be a positive integer, got ${kLocal}`);
  if (!Number.isInteger(kLong) || kLong < 0) throw new Error(`smallWorldConnectivity: kLong must be a non-negative integer, got ${kLong}`);
  if (kLocal + kLong > n) {
    throw new Error(`smallWorldConnectivity: kLocal + kLong = ${kLocal + kLong} exceeds the ${n} columns; every row needs distinct sources`);
  }
  const decay = options.decay ?? 0;
  if (!Number.isFinite(decay) || decay < 0) throw new Error(`smallWorldConnectivity: decay must be a finite number >= 0, got ${decay}`);
  if (!Number.isInteger(options.seed)) throw new Error(`smallWorldConnectivity: seed must be an integer, got ${options.seed}`);

  const k = kLocal + kLong;
  const grid = buildGrid(space.points, space.dims, space.numPoints);
  const local = nearestRows(space, kLocal, grid);
  const indices = new Int32Array(n * k);
  const envelope = decay > 0 ? new RingEnvelope(grid, decay) : null;
  const taken = new Set<number>();
  for (let i = 0; i < n; i++) {
    const row = i * k;
    taken.clear();
    for (let t = 0; t < kLocal; t++) {
      const j = local.indices[i * kLocal + t];
      indices[row + t] = j;
      taken.add(j);
    }
    if (kLong === 0) continue;
    const rng = new Rng(mixSeed(options.seed, i));
    const floor = Math.max(warped(space, Math.sqrt(local.sq[i * kLocal + kLocal - 1])), grid.cell * 1e-9);
    for (let t = kLocal; t < k; t++) {
      let j: number;
      do {
        j = envelope ? envelope.draw(space, i, floor, rng) : rng.int(n);
      } while (taken.has(j));
      taken.add(j);
      indices[row + t] = j;
    }
  }
  return indices;
}

/** Proposal distribution over Chebyshev cell rings for distance-decaying draws (see smallWorldConnectivity). */
class RingEnvelope {
  readonly #grid: SpatialGrid;
  readonly #decay: number;
  readonly #maxRing: number;
  /** tail[r] = sum over rings 2..r of cells(r') * ((r' - 1) * cell)^-decay (0 for r < 2). */
  readonly #tail: Float64Array;
  readonly #centre: Int32Array;
  readonly #cellCoord: Int32Array;

  constructor(grid: SpatialGrid, decay: number) {
    this.#grid = grid;
    this.#decay = decay;
    this.#maxRing = Math.max(...grid.counts) - 1;
    this.#tail = new Float64Array(this.#maxRing + 1);
    for (let r = 2; r <= this.#maxRing; r++) {
      this.#tail[r] = this.#tail[r - 1] + this.#ringCells(r) * ((r - 1) * grid.cell) ** -decay;
    }
    this.#centre = new Int32Array(grid.dims);
    this.#cellCoord = new Int32Array(grid.dims);
  }

  /** Cells in the full (unclipped) Chebyshev ring r in `dims` dimensions. */
  #ringCells(r: number): number {
    const d = this.#grid.dims;
    return r === 0 ? 1 : (2 * r + 1) ** d - (2 * r - 1) ** d;
  }

  /**
   * One non-self draw for target column i with probability proportional to max(d, floor)^-decay
   * (columns nearer than `floor` are local: the caller rejects those).
   */
  draw(space: Space, i: number, floor: number, rng: Rng): number {
    const grid = this.#grid;
    const dims = grid.dims;
    for (let a = 0; a < dims; a++) this.#centre[a] = grid.coords[i * dims + a];
    // Rings 0..m-1 have lower bound (r - 1) * cell < floor: their envelope uses the floor.
    const m = Math.min(this.#maxRing + 1, Math.max(2, Math.ceil(floor / grid.cell) + 1));
    const lowerBound = (r: number): number => (r < m ? floor : (r - 1) * grid.cell);
    let headCells = 0;
    for (let r = 0; r < m; r++) headCells += this.#ringCells(r);
    const head = headCells * floor ** -this.#decay;
    const tailBase = this.#tail[m - 1];
    const total = head + (this.#tail[this.#maxRing] - tailBase);
    for (;;) {
      const u = rng.next() * total;
      let r: number;
      if (u < head) {
        let cells = (u / head) * headCells;
        r = 0;
        while (r < m - 1 && cells >= this.#ringCells(r)) cells -= this.#ringCells(r++);
      } else {
        const target = tailBase + (u - head);
        let lo = m;
        let hi = this.#maxRing;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (this.#tail[mid] > target) hi = mid;
          else lo = mid + 1;
        }
        r = lo;
      }
      if (!this.#uniformRingCell(r, rng)) continue;
      let c = 0;
      for (let a = 0; a < dims; a++) c += this.#cellCoord[a] * grid.strides[a];
      const slot = rng.int(grid.maxOccupancy);
      if (slot >= grid.start[c + 1] - grid.start[c]) continue;
      const t = grid.items[grid.start[c] + slot];
      const j = t % space.n;
      if (j === i || !nearestImage(space, i, t)) continue;
      const d = Math.max(floor, warped(space, Math.sqrt(squaredDistance(space.points, dims, i, t))));
      if (rng.next() < (lowerBound(r) / d) ** this.#decay) return j;
    }
  }

  /**
   * A uniform cell of the unclipped Chebyshev ring r around the centre, written to #cellCoord;
   * false when it falls outside the grid (the draw is then rejected).
   */
  #uniformRingCell(r: number, rng: Rng): boolean {
    const grid = this.#grid;
    const dims = grid.dims;
    const cc = this.#cellCoord;
    if (r === 0) {
      cc.set(this.#centre);
      return true;
    }
    // Pick a face (axis, side), fill the other axes uniformly in [-r, r]; a cell on m faces is
    // proposed m times as often, so keep it with probability 1/m.
    for (;;) {
      const face = rng.int(2 * dims);
      const axis = face >> 1;
      let onFaces = 0;
      for (let a = 0; a < dims; a++) {
        const off = a === axis ? (face & 1 ? r : -r) : rng.int(2 * r + 1) - r;
        if (Math.abs(off) === r) onFaces++;
        cc[a] = this.#centre[a] + off;
      }
      if (onFaces > 1 && rng.next() * onFaces >= 1) continue;
      for (let a = 0; a < dims; a++) if (cc[a] < 0 || cc[a] >= grid.counts[a]) return false;
      return true;
    }
  }
}

/** Distance of every connection in the metric: out[i*K + t] = d(i, indices[i*K + t]), Float32Array [N * K]. */
export function connectionDistances(metric: ColumnMetric, indices: Int32Array, k: number): Float32Array {
  const n = checkMetric(metric, "connectionDistances");
  checkIndices(indices, n, k, "connectionDistances");
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let t = 0; t < k; t++) out[i * k + t] = columnDistance(metric, i, indices[i * k + t]);
  return out;
}

function checkIndices(indices: Int32Array, n: number, k: number, what: string): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`${what}: k must be a positive integer, got ${k}`);
  if (indices.length !== n * k) throw new Error(`${what}: indices has ${indices.length} entries, expected N * K = ${n} * ${k} = ${n * k}`);
  for (let t = 0; t < indices.length; t++) {
    const j = indices[t];
    if (j < 0 || j >= n) throw new Error(`${what}: indices[${Math.floor(t / k)}][${t % k}] = ${j} is out of range 0..${n - 1}`);
  }
}

/**
 * Check a connectivity pattern: every entry an integer column index in 0..n-1, no source
 * repeated within a row. Throws one line naming the first bad row and entry.
 */
export function validateConnectivity(indices: Int32Array, n: number, k: number, where = "connectivity"): void {
  checkIndices(indices, n, k, where);
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) {
    seen.clear();
    for (let t = 0; t < k; t++) {
      const j = indices[i * k + t];
      if (seen.has(j)) throw new Error(`${where}: row ${i} lists source column ${j} twice (entry ${t}); sources must be distinct`);
      seen.add(j);
    }
  }
}

/**
 * Parse a connectivity pattern for `n` columns from text: JSON `{"indices": [[...], ...]}` or
 * CSV (one row per column, comma-separated source indices; blank lines and lines starting with
 * `#` are skipped). Checks the row count, equal row lengths, index range and duplicates.
 */
export function parseConnectivity(text: string, n: number, format: "json" | "csv", file = "<connectivity>"): Connectivity {
  const rows = format === "json" ? parseJsonRows(text, file) : parseCsvRows(text, file);
  if (rows.length !== n) throw new Error(`${file}: has ${rows.length} rows but the sheet has ${n} columns; give one row per column`);
  const k = rows[0].length;
  if (k < 1) throw new Error(`${file}: row 0 is empty; every column needs at least one source`);
  const indices = new Int32Array(n * k);
  rows.forEach((row, i) => {
    if (row.length !== k) throw new Error(`${file}: row ${i} has ${row.length} sources but row 0 has ${k}; every row needs the same number K`);
    row.forEach((v, t) => {
      if (!Number.isInteger(v)) throw new Error(`${file}: row ${i} entry ${t} must be an integer column index, got ${String(v)}`);
      if (v < 0 || v >= n) throw new Error(`${file}: row ${i} entry ${t} = ${v} is out of range 0..${n - 1}`);
      indices[i * k + t] = v;
    });
  });
  validateConnectivity(indices, n, k, file);
  return { indices, n, k };
}

function parseJsonRows(text: string, file: string): number[][] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const rows = (data as { indices?: unknown } | null)?.indices;
  if (typeof data !== "object" || data === null || !Array.isArray(rows)) {
    throw new Error(`${file}: expected a JSON object {"indices": [[j, ...], ...]} with one array of source indices per column`);
  }
  return rows.map((row: unknown, i) => {
    if (!Array.isArray(row)) throw new Error(`${file}: indices[${i}] must be an array of source column indices`);
    return row.map((v: unknown, t) => {
      if (typeof v !== "number") throw new Error(`${file}: indices[${i}][${t}] must be an integer column index, got ${JSON.stringify(v)}`);
      return v;
    });
  });
}

function parseCsvRows(text: string, file: string): number[][] {
  const rows: number[][] = [];
  text.split(/\r?\n/).forEach((line, lineNo) => {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    rows.push(
      trimmed.split(",").map((cell, t) => {
        const s = cell.trim();
        if (!/^[-+]?\d+$/.test(s)) throw new Error(`${file}: line ${lineNo + 1} entry ${t} must be an integer column index, got "${s}"`);
        return Number(s);
      }),
    );
  });
  if (rows.length === 0) throw new Error(`${file}: no rows; expected one line of comma-separated source indices per column`);
  return rows;
}

/**
 * Read a connectivity pattern for `n` columns from a file: `.json` (`{"indices": [[...], ...]}`)
 * or anything else as CSV rows. See {@link parseConnectivity} for the checks.
 */
export function connectivityFromFile(path: string, n: number): Connectivity {
  // a regular file of bounded size only: never a device such as /dev/zero
  const text = readUserFileSync(path, MAX_CONNECTIVITY_FILE_BYTES, "connectivity file");
  return parseConnectivity(text, n, path.toLowerCase().endsWith(".json") ? "json" : "csv", path);
}
