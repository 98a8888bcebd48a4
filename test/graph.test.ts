import assert from "node:assert/strict";
import { test } from "node:test";
import {
  characteristicPathLength,
  clusteringCoefficient,
  degrees,
  modularity,
  modularityOf,
  randomizeDegreePreserving,
  smallWorldness,
  symmetrize,
  thresholdTopFraction,
} from "../src/analysis/graph.ts";
import { Rng } from "../src/engine/rng.ts";

const close = (actual: number, expected: number, tol = 1e-12): void =>
  assert.ok(Math.abs(actual - expected) <= tol, `expected ${expected}, got ${actual}`);

/** Undirected 0/1 adjacency from an edge list. */
function graph(n: number, edges: [number, number][]): Uint8Array {
  const a = new Uint8Array(n * n);
  for (const [i, j] of edges) a[i * n + j] = a[j * n + i] = 1;
  return a;
}

const edgeList = (adj: Uint8Array, n: number): [number, number][] => {
  const out: [number, number][] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (adj[i * n + j]) out.push([i, j]);
  return out;
};

/** Two 4-cliques {0..3}, {4..7} joined by the edge 3-4. */
function twoCliques(): Uint8Array {
  const e: [number, number][] = [[3, 4]];
  for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) e.push([i, j], [i + 4, j + 4]);
  return graph(8, e);
}

/** Ring lattice: each node joined to its k/2 nearest neighbours on each side. */
function ringLattice(n: number, k: number): Uint8Array {
  const e: [number, number][] = [];
  for (let i = 0; i < n; i++) for (let s = 1; s <= k / 2; s++) e.push([i, (i + s) % n]);
  return graph(n, e);
}

/** Erdos-Renyi G(n, p), seeded. */
function erdosRenyi(n: number, p: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const e: [number, number][] = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (rng.next() < p) e.push([i, j]);
  return graph(n, e);
}

/** Newman's Q by the literal double sum. */
function naiveQ(a: Uint8Array, n: number, c: ArrayLike<number>): number {
  const k = Array.from({ length: n }, (_, i) => a.subarray(i * n, (i + 1) * n).reduce((s, v) => s + v, 0));
  const twoM = k.reduce((s, v) => s + v, 0);
  let q = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (c[i] === c[j]) q += a[i * n + j] - (k[i] * k[j]) / twoM;
  return q / twoM;
}

test("thresholdTopFraction keeps exactly the top off-diagonal edges", () => {
  // 3 x 3, diagonal large (must be ignored); off-diagonal weights distinct
  const w = new Float32Array([9, 0.5, 0.1, 0.3, 9, 0.6, 0.2, 0.4, 9]);
  // 6 off-diagonal edges; half -> k = 3: 0.6 (1->2), 0.5 (0->1), 0.4 (2->1)
  assert.deepEqual(edgeList(thresholdTopFraction(w, 3, 0.5), 3), [
    [0, 1],
    [1, 2],
    [2, 1],
  ]);
  assert.deepEqual(edgeList(thresholdTopFraction(w, 3, 1 / 6), 3), [[1, 2]]);
  assert.equal(edgeList(thresholdTopFraction(w, 3, 0), 3).length, 0);
  assert.equal(edgeList(thresholdTopFraction(w, 3, 1), 3).length, 6);
  // k = round(0.4 * 6) = 2
  assert.equal(edgeList(thresholdTopFraction(w, 3, 0.4), 3).length, 2);
  // ties broken by lower row-major index: all equal -> the first k off-diagonal entries
  assert.deepEqual(edgeList(thresholdTopFraction(new Float32Array(9).fill(1), 3, 0.5), 3), [
    [0, 1],
    [0, 2],
    [1, 0],
  ]);
  // bigger random matrix: exactly k edges, and every kept weight >= every dropped off-diagonal weight
  const n = 30;
  const rng = new Rng(5);
  const big = Float32Array.from({ length: n * n }, () => rng.next());
  const adj = thresholdTopFraction(big, n, 0.1);
  let kept = 0;
  let minKept = Infinity;
  let maxDropped = -Infinity;
  for (let i = 0; i < n; i++) {
    assert.equal(adj[i * n + i], 0);
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      if (adj[i * n + j]) {
        kept++;
        minKept = Math.min(minKept, big[i * n + j]);
      } else maxDropped = Math.max(maxDropped, big[i * n + j]);
    }
  }
  assert.equal(kept, Math.round(0.1 * n * (n - 1)));
  assert.ok(minKept >= maxDropped);
  assert.throws(() => thresholdTopFraction(big, n, 1.5));
});

test("degrees and symmetrisation of a directed graph", () => {
  // 0->1, 0->2, 1->2, 2->0, plus a self loop 1->1 that must be ignored
  const n = 3;
  const a = new Uint8Array(9);
  for (const [i, j] of [
    [0, 1],
    [0, 2],
    [1, 2],
    [2, 0],
    [1, 1],
  ]) a[i * n + j] = 1;
  const d = degrees(a, n);
  assert.deepEqual(Array.from(d.out), [2, 1, 1]);
  assert.deepEqual(Array.from(d.in), [1, 1, 2]);
  const s = symmetrize(a, n);
  assert.deepEqual(Array.from(s), [0, 1, 1, 1, 0, 1, 1, 1, 0]);
  const ds = degrees(s, n);
  assert.deepEqual(Array.from(ds.in), Array.from(ds.out));
});

test("modularity of two 4-cliques joined by one edge: hand value, and Louvain finds them", () => {
  const a = twoCliques();
  const truth = [0, 0, 0, 0, 1, 1, 1, 1];
  // m = 6 + 6 + 1 = 13 edges; each clique has L_c = 6 inner edges and degree sum K_c = 2*6 + 1 = 13:
  // Q = sum_c [L_c / m - (K_c / 2m)^2] = 2 * (6/13 - (13/26)^2) = 11/26
  const hand = 2 * (6 / 13 - (13 / 26) ** 2);
  close(hand, 11 / 26);
  close(modularityOf(a, 8, truth), hand);
  close(naiveQ(a, 8, truth), hand);
  // one community: Q = 1 - 1 = 0; singletons: Q = -sum_i (k_i / 2m)^2
  close(modularityOf(a, 8, new Array(8).fill(3)), 0);
  const k = [3, 3, 3, 4, 4, 3, 3, 3];
  close(modularityOf(a, 8, [0, 1, 2, 3, 4, 5, 6, 7]), -k.reduce((s, v) => s + (v / 26) ** 2, 0));
  for (const seed of [0, 1, 2, 3, 42]) {
    const r = modularity(a, 8, { seed });
    assert.deepEqual(Array.from(r.communities), truth, `seed ${seed}`);
    close(r.modularity, hand);
  }
  // directed input: one direction per edge symmetrises to the same graph
  const directed = new Uint8Array(64);
  for (let i = 0; i < 8; i++) for (let j = i + 1; j < 8; j++) directed[(i % 2 ? j * 8 + i : i * 8 + j)] = a[i * 8 + j];
  assert.deepEqual(Array.from(modularity(directed, 8, { seed: 1 }).communities), truth);
  // no edges: singletons, Q = 0
  const empty = modularity(new Uint8Array(16), 4);
  assert.deepEqual(Array.from(empty.communities), [0, 1, 2, 3]);
  assert.equal(empty.modularity, 0);
});

test("modularity on planted communities and on random graphs; deterministic per seed", () => {
  // 4 planted groups of 15: dense inside (p = 0.5), sparse between (p = 0.02)
  const n = 60;
  const rng = new Rng(9);
  const a = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (rng.next() < (Math.floor(i / 15) === Math.floor(j / 15) ? 0.5 : 0.02)) a[i * n + j] = a[j * n + i] = 1;
    }
  }
  const r = modularity(a, n, { seed: 7 });
  assert.deepEqual(Array.from(r.communities), Array.from({ length: n }, (_, i) => Math.floor(i / 15)));
  close(r.modularity, naiveQ(a, n, r.communities), 1e-9);
  // same seed -> identical results (on a graph without clear structure, where order matters)
  const er = erdosRenyi(80, 0.08, 3);
  const x = modularity(er, 80, { seed: 11 });
  const y = modularity(er, 80, { seed: 11 });
  assert.deepEqual(Array.from(x.communities), Array.from(y.communities));
  assert.equal(x.modularity, y.modularity);
  close(x.modularity, naiveQ(er, 80, x.communities), 1e-9);
});

test("clustering coefficient: triangle 1, star 0, triangle with a pendant by hand", () => {
  assert.equal(clusteringCoefficient(graph(3, [[0, 1], [1, 2], [0, 2]]), 3), 1);
  assert.equal(clusteringCoefficient(graph(5, [[0, 1], [0, 2], [0, 3], [0, 4]]), 5), 0);
  // triangle 0-1-2 plus 0-3: C_0 = 1/3 (1 of 3 neighbour pairs linked), C_1 = C_2 = 1, C_3 = 0 (degree 1)
  close(clusteringCoefficient(graph(4, [[0, 1], [1, 2], [0, 2], [0, 3]]), 4), (1 / 3 + 2) / 4);
  // complete graph
  const k5: [number, number][] = [];
  for (let i = 0; i < 5; i++) for (let j = i + 1; j < 5; j++) k5.push([i, j]);
  assert.equal(clusteringCoefficient(graph(5, k5), 5), 1);
  // ring lattice k = 4: 3(k-2) / (4(k-1)) = 1/2
  close(clusteringCoefficient(ringLattice(40, 4), 40), 0.5);
});

test("characteristic path length: P4 by hand, disconnected pairs reported", () => {
  const p4 = characteristicPathLength(graph(4, [[0, 1], [1, 2], [2, 3]]), 4);
  close(p4.L, (1 + 2 + 3 + 1 + 2 + 1) / 6);
  assert.equal(p4.disconnectedFraction, 0);
  // two disjoint edges: 4 of 12 ordered pairs connected, each at distance 1
  const two = characteristicPathLength(graph(4, [[0, 1], [2, 3]]), 4);
  assert.equal(two.L, 1);
  close(two.disconnectedFraction, 8 / 12);
  const none = characteristicPathLength(new Uint8Array(9), 3);
  assert.ok(Number.isNaN(none.L));
  assert.equal(none.disconnectedFraction, 1);
  // ring lattice n = 40, k = 4: ring distance r needs ceil(r/2) hops; from one node,
  // r = 1..19 twice and r = 20 once: 2 * (2 * (1 + ... + 9) + 10) + 10 = 210 over 39 others
  close(characteristicPathLength(ringLattice(40, 4), 40).L, 210 / 39);
});

test("degree-preserving rewiring keeps degrees, is simple, seeded", () => {
  const n = 40;
  const ring = ringLattice(n, 4);
  const r1 = randomizeDegreePreserving(ring, n, { seed: 1 });
  const r2 = randomizeDegreePreserving(ring, n, { seed: 1 });
  const r3 = randomizeDegreePreserving(ring, n, { seed: 2 });
  assert.deepEqual(r1, r2);
  assert.notDeepEqual(r1, r3);
  assert.notDeepEqual(r1, ring);
  assert.deepEqual(degrees(r1, n).out, degrees(ring, n).out);
  for (let i = 0; i < n; i++) {
    assert.equal(r1[i * n + i], 0);
    for (let j = 0; j < n; j++) assert.equal(r1[i * n + j], r1[j * n + i]);
  }
  // a star cannot be rewired: returned unchanged
  const star = graph(5, [[0, 1], [0, 2], [0, 3], [0, 4]]);
  assert.deepEqual(randomizeDegreePreserving(star, 5, { seed: 3 }), star);
});

test("small-worldness: ring lattice sigma > 1, Erdos-Renyi sigma ~ 1, deterministic", () => {
  const n = 40;
  const ring = ringLattice(n, 4);
  const sw = smallWorldness(ring, n, { randomGraphs: 10, seed: 0 });
  close(sw.C, 0.5);
  close(sw.L, 210 / 39);
  assert.ok(sw.C_rand < 0.25, `C_rand ${sw.C_rand}`);
  assert.ok(sw.L_rand < sw.L, `L_rand ${sw.L_rand}`);
  close(sw.sigma, sw.C / sw.C_rand / (sw.L / sw.L_rand));
  assert.ok(sw.sigma > 1.5, `ring lattice sigma ${sw.sigma}`);
  assert.deepEqual(smallWorldness(ring, n, { randomGraphs: 10, seed: 0 }), sw);
  assert.notDeepEqual(smallWorldness(ring, n, { randomGraphs: 10, seed: 1 }), sw);

  // Erdos-Renyi with the ring's density 4/39 (mean degree 4): sigma near 1
  const sigmas: number[] = [];
  for (const seed of [1, 2, 3, 4, 5]) {
    const er = erdosRenyi(n, 4 / 39, seed);
    const s = smallWorldness(er, n, { randomGraphs: 10, seed });
    assert.ok(s.sigma > 0.5 && s.sigma < 2, `ER seed ${seed}: sigma ${s.sigma}`);
    sigmas.push(s.sigma);
  }
  const mean = sigmas.reduce((s, v) => s + v, 0) / sigmas.length;
  assert.ok(mean > 0.7 && mean < 1.4, `mean ER sigma ${mean} (${sigmas.map((s) => s.toFixed(2)).join(", ")})`);
  assert.ok(mean < sw.sigma);
});
