import assert from "node:assert/strict";
import { before, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { jit, numpy as np, tree, valueAndGrad } from "../src/engine/jax.ts";
import { resolveSheetConfig } from "../src/model/config.ts";
import type { SheetParams } from "../src/model/params.ts";
import { initSheet, sheetApply } from "../src/model/sheet.ts";
import { wiringCostFromDistances } from "../src/objectives/wiring-cost.ts";
import { distanceMatrix } from "../src/geometry/metric.ts";

before(async () => {
  await initEngine();
});

const { config, geometry } = resolveSheetConfig({
  geometry: { kind: "grid", height: 8, width: 8 },
  dim: 32,
  qk_dim: 16,
  mlp_dim: 32,
  depth: 2,
});
const n = config.num_columns;

const loss = (params: SheetParams, x: np.Array, dist: np.Array): np.Array => {
  const { x: y, attn } = sheetApply(params, x, config);
  return np.square(y).mean().add(wiringCostFromDistances(attn, dist, { form: "l1", lambda: 0.01 }));
};
const step = jit(valueAndGrad(loss));

/** RSS after a full JS garbage collection (the test command passes --expose-gc), so JS garbage is not mistaken for a leak. */
function settledRss(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, "run with node --expose-gc");
  gc();
  return process.memoryUsage().rss;
}

/**
 * RSS growth over `iterations` forward+backward calls, the smallest of `windows` consecutive
 * windows: a leak grows RSS in every window, while allocator and scheduling noise (seen up to
 * +-40 MiB in one window when other test files run beside this one) does not. With `leak`, two
 * gradient leaves are deliberately kept per call (positive control).
 */
async function rssGrowthMiB(iterations: number, leak: boolean, windows = 3): Promise<number> {
  const params = initSheet(config, geometry, 0);
  const x = np.ones([4, n, config.dim]);
  const dist = np.array(distanceMatrix(geometry)).reshape([n, n]);
  const kept: np.Array[] = [];
  const run = async () => {
    const [value, grads] = step(tree.ref(params), x.ref, dist.ref);
    await value.data();
    if (leak) kept.push(grads.mlp.fc1.weight.ref, grads.mlp.fc2.weight.ref); // 2 x 256 KiB per call
    await grads.mlp.fc2.weight.ref.data(); // wait for the backward pass
    tree.dispose(grads);
  };
  for (let i = 0; i < 100; i++) await run(); // warm-up: allocator and JIT caches settle
  let smallest = Infinity;
  for (let w = 0; w < windows; w++) {
    const before = settledRss();
    for (let i = 0; i < iterations; i++) await run();
    smallest = Math.min(smallest, (settledRss() - before) / 2 ** 20);
  }
  tree.dispose([params, x, dist, kept]);
  return smallest;
}

test("memory stays flat over 200 forward+backward calls (smallest growth of 3 windows)", async () => {
  const growth = await rssGrowthMiB(200, false);
  // the positive control below leaks 100 MiB in every window of the same calls; 25-30 MiB of
  // noise in every window was seen on a loaded 2-core machine, so the line sits halfway
  assert.ok(growth < 50, `RSS grew ${growth.toFixed(1)} MiB over 200 calls in every window`);
});

test("the memory check detects a leak (positive control: two 256 KiB gradients kept per call)", async () => {
  const growth = await rssGrowthMiB(200, true);
  assert.ok(growth > 60, `a 100 MiB leak per window was expected to show, RSS grew ${growth.toFixed(1)} MiB`);
});
