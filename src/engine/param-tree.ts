/**
 * Parameter trees <-> named tensors. A tree `{ attn: { q: { weight } } }`
 * under prefix "sheet" becomes the tensor name "sheet.attn.q.weight", the
 * PyTorch state-dict convention.
 */
import { numpy as np } from "./jax.ts";
import type { TensorData } from "../io/safetensors.ts";

/** A nested object whose leaves are arrays. */
export interface ParamTree {
  [key: string]: np.Array | ParamTree;
}

/** [dotted path, leaf] pairs in insertion order. */
export function namedLeaves(params: object, prefix = ""): [string, np.Array][] {
  const out: [string, np.Array][] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    const name = prefix ? `${prefix}.${key}` : key;
    if (value instanceof np.Array) out.push([name, value]);
    else out.push(...namedLeaves(value as object, name));
  }
  return out;
}

/** Copy every leaf to the host as float32 tensors named by path. Borrows `params` (does not consume). */
export async function treeToTensors(params: object, prefix = ""): Promise<Record<string, TensorData>> {
  const tensors: Record<string, TensorData> = {};
  for (const [name, leaf] of namedLeaves(params, prefix)) {
    const data = await leaf.ref.astype(np.float32).data();
    tensors[name] = { dtype: "F32", shape: [...leaf.shape], data: data as Float32Array };
  }
  return tensors;
}

/** Total number of scalars in the tree's leaves. */
export function countParameters(params: object): number {
  return namedLeaves(params).reduce((sum, [, leaf]) => sum + leaf.size, 0);
}

/**
 * The same tree with every object's keys in sorted order (arrays kept, undefined leaves
 * dropped). Flattening follows key order, and a sum over leaves (the global gradient norm
 * of clipping) rounds differently in another order, so a training run keeps its parameters
 * in this one order whether they were initialised or loaded from a checkpoint.
 */
export function canonicalParamOrder<T extends object>(params: T): T {
  const walk = (node: unknown): unknown => {
    if (node instanceof np.Array || node === null || typeof node !== "object") return node;
    if (Array.isArray(node)) return node.map(walk);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(node).sort()) {
      const v = (node as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = walk(v);
    }
    return out;
  };
  return walk(params) as T;
}
