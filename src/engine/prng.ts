/** PRNG keys (jax-js threefry): deterministic given the seed. */
import { type numpy as np, random } from "./jax.ts";

/** Split a PRNG key into `n` independent keys. Consumes `key`. */
export function splitKey(key: np.Array, n: number): np.Array[] {
  const keys = random.split(key, n);
  const out = Array.from({ length: n }, (_, i) => keys.ref.slice(i));
  keys.dispose();
  return out;
}
