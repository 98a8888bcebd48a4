/** Shared test helpers: reading device arrays and comparing numbers with a tolerance. */
import assert from "node:assert/strict";
import type { numpy as np } from "../src/engine/jax.ts";

/** Read (and consume) an array as plain numbers. */
export async function read(x: np.Array): Promise<number[]> {
  return Array.from((await x.data()) as Float32Array);
}

/** Element-wise |actual - expected| <= tol * (1 + |expected|). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    assert.ok(diff <= tol * (1 + Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]} (diff ${diff})`);
  }
}
