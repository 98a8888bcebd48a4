/**
 * Learned column positions: distances from positions match the geometries,
 * the wiring cost's gradient moves linked columns together, the anti-collapse
 * mechanism keeps positions spread, and learned positions survive a checkpoint.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { grad, jit, numpy as np } from "../src/engine/jax.ts";
import { buildGeometry, type Geometry, type GeometrySpec } from "../src/geometry/index.ts";
import { medianSpacing, positionDistances, positionSpace, repulsion, withLearnedPositions } from "../src/geometry/learned.ts";
import { wiringCostFromDistances } from "../src/objectives/wiring-cost.ts";
import { adamwConfig, adamwInit, adamwUpdate } from "../src/optim/adamw.ts";
import { assertClose, read } from "./assertions.ts";
import { distanceMatrix } from "../src/geometry/metric.ts";

before(async () => {
  await initEngine();
});

const positionsOf = (g: Geometry) => np.array(new Float32Array(g.positions)).reshape([g.numColumns, g.positionDim]);

describe("distances from positions", () => {
  for (const spec of [
    { kind: "grid", height: 3, width: 4 },
    { kind: "torus", height: 4, width: 5 },
    { kind: "stacked", widths: [3, 2] },
    { kind: "sphere", num_columns: 12, radius: 2 },
    { kind: "grid", height: 2, width: 3, self_offset: 0.5 },
  ] as GeometrySpec[]) {
    test(`${spec.kind}${spec.self_offset ? " with self offset" : ""}: at the start they equal the geometry's`, async () => {
      const g = buildGeometry(spec);
      const d = await read(positionDistances(positionsOf(g), positionSpace(g)));
      // sqrt(d^2 + 1e-8) on the diagonal: 1e-4 off; the sphere's acos is clipped at 1 - 1e-6 (~1.4e-3 rad)
      assertClose(d, distanceMatrix(g), spec.kind === "sphere" ? 4e-3 : 2e-4, "distances");
    });
  }
  test("the Euclidean layout keeps its centre and spread whatever the raw positions", async () => {
    const g = buildGeometry({ kind: "grid", height: 3, width: 3 });
    const shrunk = positionsOf(g).mul(0.01).add(5); // collapsed and moved away
    const d = await read(positionDistances(shrunk, positionSpace(g)));
    assertClose(d, distanceMatrix(g), 2e-4, "scale- and shift-invariant");
  });
  test("torus distances wrap around", async () => {
    const g = buildGeometry({ kind: "torus", height: 1, width: 6 });
    // move column 0 by a whole period: nothing changes
    const moved = new Float32Array(g.positions);
    moved[0] += 6;
    const d = await read(positionDistances(np.array(moved).reshape([6, 2]), positionSpace(g)));
    assertClose(d, distanceMatrix(g), 2e-4, "shifted by one period");
  });
});

/** Train only the positions on wiring cost (+ repulsion) under a fixed attention map; returns the final distances. */
async function trainPositions(g: Geometry, attention: Float32Array, steps: number, repulsionWeight: number, spacing: number): Promise<Float32Array> {
  const n = g.numColumns;
  const space = positionSpace(g);
  const attn = np.array(attention).reshape([n, n]);
  const loss = (p: { positions: np.Array }, a: np.Array) => {
    const d = positionDistances(p.positions, space);
    return wiringCostFromDistances(a, d.ref, { form: "l1", lambda: 1 }).add(repulsion(d, spacing).mul(repulsionWeight));
  };
  const step = jit(grad(loss));
  let params = { positions: positionsOf(g) };
  let state = adamwInit(params);
  const cfg = adamwConfig({ lr: 0.05, weight_decay: 0 });
  for (let t = 0; t < steps; t++) {
    const grads = step({ positions: params.positions.ref }, attn.ref) as { positions: np.Array };
    ({ params, state } = adamwUpdate(params, grads, state, 0.05, cfg, { positions: false }));
  }
  step.dispose();
  attn.dispose();
  state.mu.positions.dispose();
  state.nu.positions.dispose();
  return read(positionDistances(params.positions, space)) as unknown as Promise<Float32Array>;
}

const minOffDiagonal = (d: ArrayLike<number>, n: number) => {
  let m = Infinity;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) m = Math.min(m, d[i * n + j]);
  return m;
};

describe("learning positions", () => {
  test("a wiring cost on attention linking two far corners pulls them together", async () => {
    const g = buildGeometry({ kind: "grid", height: 4, width: 4 });
    const n = 16;
    const a = new Float32Array(n * n);
    for (let i = 0; i < n; i++) a[i * n + i] = 1;
    a[0 * n + 0] = 0.1;
    a[0 * n + 15] = 0.9; // column 0 reads almost only from the opposite corner, and vice versa
    a[15 * n + 15] = 0.1;
    a[15 * n + 0] = 0.9;
    const before = distanceMatrix(g)[15];
    const after = (await trainPositions(g, a, 150, 1, medianSpacing(g) / 2))[15];
    assert.ok(after < 0.5 * before, `distance between the linked corners: ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  });

  test("repulsion keeps columns spread where the wiring cost alone piles them up", async () => {
    // two groups that attend uniformly within themselves: the wiring cost wants each group at one point
    const g = buildGeometry({ kind: "grid", height: 4, width: 4 });
    const n = 16;
    const a = new Float32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if ((i < 8) === (j < 8)) a[i * n + j] = 1 / 8;
    const spacing = medianSpacing(g) / 2; // 0.5 on a unit grid
    const without = minOffDiagonal(await trainPositions(g, a, 200, 0, spacing), n);
    const withRepulsion = minOffDiagonal(await trainPositions(g, a, 200, 1, spacing), n);
    assert.ok(without < 0.25 * spacing, `without repulsion the closest pair ends ${without.toFixed(3)} apart`);
    assert.ok(withRepulsion > 0.6 * spacing, `with repulsion the closest pair stays ${withRepulsion.toFixed(3)} apart (spacing ${spacing})`);
  });

  test("a geometry with learned positions carries the constrained positions and their distances", async () => {
    const g = buildGeometry({ kind: "grid", height: 2, width: 2 });
    const raw = np.array(new Float32Array([0, 0, 2, 0, 0, 2, 2, 2])).reshape([4, 2]); // twice the spread, shifted
    const learned = await withLearnedPositions(g, raw);
    assertClose(learned.positions, g.positions, 1e-6, "rescaled onto the original spread");
    assertClose(distanceMatrix(learned), distanceMatrix(g), 1e-5, "distances");
    assert.deepEqual(learned.areas, g.areas);
  });
});
