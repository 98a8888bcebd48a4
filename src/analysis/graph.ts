/**
 * Graph metrics of the effective connectivity of a column sheet.
 *
 * The mean attention map W (N x N, row-major, W_ij = how much target column i reads from
 * source column j) is read as a directed weighted graph with an edge i -> j of weight W_ij.
 * {@link thresholdTopFraction} turns it into a binary directed adjacency (Uint8Array N*N,
 * `adj[i * N + j] = 1` for an edge i -> j); the undirected metrics (modularity, clustering,
 * path length, small-worldness) work on its symmetrisation ({@link symmetrize}: i ~ j if
 * i -> j or j -> i) and symmetrise any directed input themselves.
 *
 * Everywhere here the diagonal (self loops) is ignored. Randomness (Louvain node order,
 * degree-preserving rewiring) comes from the project's seeded mulberry32 {@link Rng}, so the
 * same seed always gives identical results.
 */
import { UndirectedGraph } from "graphology";
import louvainModule from "graphology-communities-louvain";
import { Rng, mixSeed } from "../engine/rng.ts";

// The package is CommonJS (`module.exports = louvain`) but its typings say `export default`, which
// under NodeNext types the default import as the module object; at run time it is the function.
const louvain = louvainModule as unknown as typeof louvainModule.default;

/** A binary adjacency matrix, row-major N x N, nonzero = edge. */
export type Adjacency = ArrayLike<number>;

function checkSquare(m: ArrayLike<number>, n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || m.length !== n * n) {
    throw new Error(`${what}: length ${m.length} does not match N*N with N = ${n}`);
  }
}

/**
 * Keep the strongest `fraction` of the off-diagonal edges of a weighted directed graph.
 *
 * Of the N(N-1) off-diagonal entries of `W` (row-major, edge i -> j has weight W_ij), the
 * k = round(fraction * N(N-1)) largest are kept (NaN counts as smallest; ties broken by lower
 * row-major index first, so exactly k edges are kept). Returns a directed adjacency without
 * self loops: `adj[i * N + j] = 1` for each kept edge i -> j.
 */
export function thresholdTopFraction(weights: ArrayLike<number>, n: number, fraction: number): Uint8Array {
  checkSquare(weights, n, "thresholdTopFraction");
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`thresholdTopFraction: fraction must be in [0, 1], got ${fraction}`);
  const total = n * (n - 1);
  const k = Math.min(total, Math.max(0, Math.round(fraction * total)));
  const idx = new Uint32Array(total);
  let e = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) idx[e++] = i * n + j;
  const key = (f: number): number => (Number.isNaN(weights[f]) ? -Infinity : weights[f]);
  const sorted = Array.from(idx).sort((a, b) => key(b) - key(a) || a - b);
  const adj = new Uint8Array(n * n);
  for (let r = 0; r < k; r++) adj[sorted[r]] = 1;
  return adj;
}

/** In- and out-degrees of a directed graph (see {@link degrees}). */
export interface Degrees {
  /** in[j] = number of edges i -> j (columns that read from j). */
  in: Int32Array;
  /** out[i] = number of edges i -> j (columns that i reads from). */
  out: Int32Array;
}

/**
 * Degrees of a directed adjacency (`adj[i * N + j]` nonzero = edge i -> j; diagonal ignored):
 * in-degree of j = #{i != j : i -> j}, out-degree of i = #{j != i : i -> j}. For an undirected
 * (symmetric) adjacency both equal the ordinary degree.
 */
export function degrees(adj: Adjacency, n: number): Degrees {
  checkSquare(adj, n, "degrees");
  const inDeg = new Int32Array(n);
  const outDeg = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i !== j && adj[i * n + j]) {
        outDeg[i]++;
        inDeg[j]++;
      }
    }
  }
  return { in: inDeg, out: outDeg };
}

/** Undirected symmetrisation of a directed adjacency: i ~ j iff i -> j or j -> i (i != j); a fresh 0/1 Uint8Array, zero diagonal. */
export function symmetrize(adj: Adjacency, n: number): Uint8Array {
  checkSquare(adj, n, "symmetrize");
  const out = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (adj[i * n + j] || adj[j * n + i]) {
        out[i * n + j] = 1;
        out[j * n + i] = 1;
      }
    }
  }
  return out;
}

/** Neighbour lists of the symmetrised graph, as CSR (offsets length N+1, neighbours sorted). */
interface Csr {
  offsets: Int32Array;
  neighbors: Int32Array;
}

function toCsr(sym: Uint8Array, n: number): Csr {
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    let d = 0;
    for (let j = 0; j < n; j++) d += sym[i * n + j];
    offsets[i + 1] = offsets[i] + d;
  }
  const neighbors = new Int32Array(offsets[n]);
  for (let i = 0; i < n; i++) {
    let p = offsets[i];
    for (let j = 0; j < n; j++) if (sym[i * n + j]) neighbors[p++] = j;
  }
  return { offsets, neighbors };
}

/**
 * Newman's modularity of a partition of an undirected graph:
 *
 *   Q = (1 / 2m) sum_ij (A_ij - k_i k_j / 2m) delta(c_i, c_j)
 *     = sum_c [ L_c / m - (K_c / 2m)^2 ],
 *
 * with A the symmetric 0/1 adjacency (diagonal ignored), k_i the degree, m the number of
 * edges, L_c the number of edges inside community c and K_c the sum of its degrees. The
 * adjacency is used as given (pass a symmetric one; see {@link symmetrize}). Returns 0 for a
 * graph without edges. `communities[i]` is any integer label of node i.
 */
export function modularityOf(adjUndirected: Adjacency, n: number, communities: ArrayLike<number>): number {
  checkSquare(adjUndirected, n, "modularityOf");
  if (communities.length !== n) throw new Error(`modularityOf: ${communities.length} labels for ${n} nodes`);
  const k = new Float64Array(n);
  let twoM = 0;
  let inside = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const a = adjUndirected[i * n + j] ? 1 : 0;
      k[i] += a;
      twoM += a;
      if (a && communities[i] === communities[j]) inside += 1;
    }
  }
  if (twoM === 0) return 0;
  const degreeSum = new Map<number, number>();
  for (let i = 0; i < n; i++) degreeSum.set(communities[i], (degreeSum.get(communities[i]) ?? 0) + k[i]);
  let expected = 0;
  for (const kc of degreeSum.values()) expected += (kc / twoM) * (kc / twoM);
  return inside / twoM - expected;
}

/** Options of {@link modularity}. */
export interface ModularityOptions {
  /** Seed of the Louvain node-visiting order (default 0). */
  seed?: number;
  /** Louvain resolution gamma (default 1, the standard modularity). */
  resolution?: number;
}

/** A partition found by Louvain (see {@link modularity}). */
export interface Communities {
  /** communities[i] = community of node i, relabelled 0, 1, ... in order of first appearance by node index. */
  communities: Int32Array;
  /** Newman's Q of that partition on the symmetrised graph ({@link modularityOf}). */
  modularity: number;
}

/**
 * Community structure by Louvain modularity maximisation (graphology-communities-louvain) on
 * the UNDIRECTED symmetrised graph (i ~ j if i -> j or j -> i; unweighted; diagonal ignored).
 *
 * Louvain visits nodes in a random order drawn from a mulberry32 stream seeded by `seed`, so
 * the same (graph, seed) always gives the same partition. Labels are canonical (0, 1, ... by
 * first node); `modularity` is Q ({@link modularityOf}) of the returned partition. A graph
 * without edges gives every node its own community and Q = 0.
 */
export function modularity(adj: Adjacency, n: number, options: ModularityOptions = {}): Communities {
  const sym = symmetrize(adj, n);
  const graph = new UndirectedGraph();
  for (let i = 0; i < n; i++) graph.addNode(String(i));
  let edges = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (sym[i * n + j]) {
        graph.addUndirectedEdge(String(i), String(j));
        edges++;
      }
    }
  }
  const raw = new Int32Array(n);
  if (edges === 0) {
    for (let i = 0; i < n; i++) raw[i] = i;
  } else {
    const rng = new Rng(mixSeed(options.seed ?? 0, 0x10a1));
    const mapping = louvain(graph, { rng: () => rng.next(), resolution: options.resolution ?? 1, getEdgeWeight: null });
    for (let i = 0; i < n; i++) raw[i] = mapping[String(i)];
  }
  const relabel = new Map<number, number>();
  const communities = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let c = relabel.get(raw[i]);
    if (c === undefined) {
      c = relabel.size;
      relabel.set(raw[i], c);
    }
    communities[i] = c;
  }
  return { communities, modularity: modularityOf(sym, n, communities) };
}

/**
 * Average local clustering coefficient of the undirected graph (directed input is
 * symmetrised; diagonal ignored):
 *
 *   C = (1/N) sum_i C_i,   C_i = T_i / (k_i (k_i - 1) / 2),
 *
 * with T_i the number of edges among the k_i neighbours of i (triangles through i). Nodes with
 * degree < 2 have C_i = 0 and still count in the average (the networkx convention). A triangle
 * has C = 1, a star C = 0; 0 for N = 0.
 */
export function clusteringCoefficient(adjUndirected: Adjacency, n: number): number {
  const sym = symmetrize(adjUndirected, n);
  return clusteringOfSymmetric(sym, n, toCsr(sym, n));
}

function clusteringOfSymmetric(sym: Uint8Array, n: number, csr: Csr): number {
  if (n === 0) return 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const a = csr.offsets[i];
    const b = csr.offsets[i + 1];
    const k = b - a;
    if (k < 2) continue;
    let t = 0;
    for (let p = a; p < b; p++) {
      const u = csr.neighbors[p];
      for (let q = p + 1; q < b; q++) t += sym[u * n + csr.neighbors[q]];
    }
    total += t / ((k * (k - 1)) / 2);
  }
  return total / n;
}

/** Shortest-path summary (see {@link characteristicPathLength}). */
export interface PathLength {
  /** Mean BFS distance over ordered pairs (i, j), i != j, with a path between them; NaN if there are none. */
  L: number;
  /** Fraction of the N(N-1) ordered pairs i != j with no path (0 for a connected graph; 0 for N < 2). */
  disconnectedFraction: number;
}

/**
 * Characteristic path length of the undirected, unweighted graph (directed input is
 * symmetrised): the mean hop distance (BFS from every node) over all pairs that are connected,
 * together with the fraction of pairs that are not. Disconnected pairs are left out of L
 * rather than counted as infinite. For the path graph P4, L = (1+2+3+1+2+1)/6 = 10/6.
 */
export function characteristicPathLength(adjUndirected: Adjacency, n: number): PathLength {
  return pathLengthOfCsr(toCsr(symmetrize(adjUndirected, n), n), n);
}

function pathLengthOfCsr(csr: Csr, n: number): PathLength {
  const dist = new Int32Array(n);
  const queue = new Int32Array(n);
  let sum = 0;
  let connected = 0;
  for (let s = 0; s < n; s++) {
    dist.fill(-1);
    dist[s] = 0;
    let head = 0;
    let tail = 0;
    queue[tail++] = s;
    while (head < tail) {
      const u = queue[head++];
      for (let p = csr.offsets[u]; p < csr.offsets[u + 1]; p++) {
        const v = csr.neighbors[p];
        if (dist[v] < 0) {
          dist[v] = dist[u] + 1;
          sum += dist[v];
          connected++;
          queue[tail++] = v;
        }
      }
    }
  }
  const pairs = n * (n - 1);
  return {
    L: connected > 0 ? sum / connected : NaN,
    disconnectedFraction: pairs > 0 ? (pairs - connected) / pairs : 0,
  };
}

/** Options of {@link randomizeDegreePreserving}. */
export interface RewireOptions {
  /** Seed of the swaps (default 0). */
  seed?: number;
  /** Successful double-edge swaps to perform per edge (default 10). At most 100x as many are attempted. */
  swapsPerEdge?: number;
}

/**
 * A degree-preserving random rewiring of an undirected graph (directed input is symmetrised)
 * by double-edge swaps: pick two edges a-b, c-d uniformly (and one of the two pairings at
 * random) and replace them by a-d, c-b unless that would create a self loop or a duplicate
 * edge. Every node keeps its degree; the result may be disconnected. Performs
 * `swapsPerEdge * m` successful swaps (or stops after 100 times as many attempts, e.g. for a
 * star, where no swap is possible). Seeded: the same input and seed give the same graph.
 */
export function randomizeDegreePreserving(adjUndirected: Adjacency, n: number, options: RewireOptions = {}): Uint8Array {
  const sym = symmetrize(adjUndirected, n);
  const us: number[] = [];
  const vs: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (sym[i * n + j]) {
        us.push(i);
        vs.push(j);
      }
    }
  }
  const m = us.length;
  if (m < 2) return sym;
  const rng = new Rng(mixSeed(options.seed ?? 0, 0x5a4b));
  const target = Math.round((options.swapsPerEdge ?? 10) * m);
  const maxTries = 100 * target;
  let done = 0;
  for (let tries = 0; tries < maxTries && done < target; tries++) {
    const e1 = rng.int(m);
    const e2 = rng.int(m);
    if (e1 === e2) continue;
    const a = us[e1];
    const b = vs[e1];
    let c = us[e2];
    let d = vs[e2];
    if (rng.next() < 0.5) [c, d] = [d, c];
    // a-b, c-d  ->  a-d, c-b
    if (a === c || a === d || b === c || b === d) continue;
    if (sym[a * n + d] || sym[c * n + b]) continue;
    sym[a * n + b] = sym[b * n + a] = 0;
    sym[c * n + d] = sym[d * n + c] = 0;
    sym[a * n + d] = sym[d * n + a] = 1;
    sym[c * n + b] = sym[b * n + c] = 1;
    us[e1] = a;
    vs[e1] = d;
    us[e2] = c;
    vs[e2] = b;
    done++;
  }
  return sym;
}

/** Options of {@link smallWorldness}. */
export interface SmallWorldOptions {
  /** Number of degree-preserving random reference graphs averaged (default 10). */
  randomGraphs?: number;
  /** Seed of the rewiring (default 0); reference r uses seed mixSeed(seed, r). */
  seed?: number;
  /** Successful double-edge swaps per edge for each reference (default 10). */
  swapsPerEdge?: number;
}

/** Small-world coefficient and its ingredients (see {@link smallWorldness}). */
export interface SmallWorld {
  /** sigma = (C / C_rand) / (L / L_rand). */
  sigma: number;
  /** Average clustering of the graph ({@link clusteringCoefficient}). */
  C: number;
  /** Characteristic path length of the graph ({@link characteristicPathLength}). */
  L: number;
  /** Mean clustering of the random references. */
  C_rand: number;
  /** Mean characteristic path length of the random references (over those with any connected pair). */
  L_rand: number;
}

/**
 * Small-world coefficient (Humphries & Gurney 2008) of the undirected graph (directed input is
 * symmetrised):
 *
 *   sigma = (C / C_rand) / (L / L_rand),
 *
 * where C is the average clustering ({@link clusteringCoefficient}), L the characteristic path
 * length over connected pairs ({@link characteristicPathLength}), and C_rand, L_rand their
 * means over `randomGraphs` degree-preserving random references ({@link randomizeDegreePreserving},
 * double-edge swaps, seeded). sigma > 1 means more clustered than a random graph with the same
 * degrees at a comparable path length (small-world); a random graph gives sigma ~ 1. Computed
 * literally, so degenerate graphs (no triangles in the references, no edges) give Infinity or NaN.
 */
export function smallWorldness(adjUndirected: Adjacency, n: number, options: SmallWorldOptions = {}): SmallWorld {
  const sym = symmetrize(adjUndirected, n);
  const csr = toCsr(sym, n);
  const C = clusteringOfSymmetric(sym, n, csr);
  const L = pathLengthOfCsr(csr, n).L;
  const count = options.randomGraphs ?? 10;
  if (!(Number.isInteger(count) && count >= 1)) throw new Error(`smallWorldness: randomGraphs must be a positive integer, got ${count}`);
  const seed = options.seed ?? 0;
  let cSum = 0;
  let lSum = 0;
  let lCount = 0;
  for (let r = 0; r < count; r++) {
    const rand = randomizeDegreePreserving(sym, n, { seed: mixSeed(seed, r), swapsPerEdge: options.swapsPerEdge ?? 10 });
    const rcsr = toCsr(rand, n);
    cSum += clusteringOfSymmetric(rand, n, rcsr);
    const l = pathLengthOfCsr(rcsr, n).L;
    if (!Number.isNaN(l)) {
      lSum += l;
      lCount++;
    }
  }
  const C_rand = cSum / count;
  const L_rand = lCount > 0 ? lSum / lCount : NaN;
  return { sigma: C / C_rand / (L / L_rand), C, L, C_rand, L_rand };
}
