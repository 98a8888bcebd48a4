/**
 * Parameter specs: every module declares its leaves once (dotted path, shape, initialisation,
 * column axis), and init, checkpoints (tensor names and shapes), parameter counts and the grow
 * gather all read that one declaration.
 *
 * Random leaves name the PRNG stream they draw from (their own path, e.g. "attn.q.weight");
 * a model's initialiser derives one key per stream (sheet.ts's `sheetStreams`, vision.ts's
 * `visionStreams`), so turning a leaf on or off never changes another leaf's values.
 */
import { numpy as np, random } from "../engine/jax.ts";
import type { ParamTree } from "../engine/param-tree.ts";

/** How a leaf starts. */
export type ParamInit =
  | { kind: "zeros" }
  | { kind: "ones" }
  /** U(-bound, bound) from the key of `stream`. */
  | { kind: "uniform"; bound: number; stream: string }
  /** N(0, std^2) from the key of `stream`. */
  | { kind: "normal"; std: number; stream: string }
  /** Given values (e.g. the local attention-bias prior, the geometry's positions), computed when initialised. */
  | { kind: "values"; values: () => Float32Array };

/** One leaf of a parameter tree. */
export interface ParamSpec {
  /** Dotted path, the state-dict name: "attn.q.weight" (prefixed "sheet." inside the vision model). */
  path: string;
  shape: number[];
  init: ParamInit;
  /** The axis indexed by the sheet's N columns (untied modules, attention-bias rows, per-column states), or null. */
  columnAxis: number | null;
}

/** The specs of a sub-module at `prefix`: `prefix.` in front of each path and each PRNG stream. */
export function prefixSpecs(prefix: string, specs: readonly ParamSpec[]): ParamSpec[] {
  return specs.map((s) => ({
    ...s,
    path: `${prefix}.${s.path}`,
    init: s.init.kind === "uniform" || s.init.kind === "normal" ? { ...s.init, stream: `${prefix}.${s.init.stream}` } : s.init,
  }));
}

/** Tensor shapes by path, in declaration order. */
export function specShapes(specs: readonly ParamSpec[]): Record<string, number[]> {
  return Object.fromEntries(specs.map((s) => [s.path, s.shape]));
}

/** Total number of scalars of the specs. */
export function specSize(specs: readonly ParamSpec[]): number {
  return specs.reduce((total, s) => total + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** A tree from [dotted path, leaf] pairs (the inverse of namedLeaves). */
export function treeFromLeaves(leaves: Iterable<readonly [string, np.Array]>): ParamTree {
  const root: ParamTree = {};
  for (const [path, leaf] of leaves) {
    const keys = path.split(".");
    let node = root;
    for (const key of keys.slice(0, -1)) {
      node[key] ??= {};
      node = node[key] as ParamTree;
    }
    node[keys[keys.length - 1]] = leaf;
  }
  return root;
}

/** The leaf at a dotted path of a tree (undefined when absent). */
export function leafAt(tree: object, path: string): np.Array | undefined {
  let node: unknown = tree;
  for (const key of path.split(".")) node = node === undefined ? undefined : (node as Record<string, unknown>)[key];
  return node as np.Array | undefined;
}

/** Initialise the leaves of `specs` as a tree. Consumes `streams` (one key per stream; the unused are disposed). */
export function initParams(specs: readonly ParamSpec[], streams: Record<string, np.Array>): ParamTree {
  const used = new Set<string>();
  const keyOf = (stream: string): np.Array => {
    const key = streams[stream];
    if (key === undefined) throw new Error(`initParams: no PRNG stream "${stream}"`);
    if (used.has(stream)) throw new Error(`initParams: PRNG stream "${stream}" is drawn from twice`);
    used.add(stream);
    return key;
  };
  const leaf = ({ shape, init }: ParamSpec): np.Array => {
    switch (init.kind) {
      case "zeros":
        return np.zeros(shape);
      case "ones":
        return np.ones(shape);
      case "uniform":
        return random.uniform(keyOf(init.stream), shape, { minval: -init.bound, maxval: init.bound });
      case "normal":
        return random.normal(keyOf(init.stream), shape).mul(init.std);
      case "values":
        return np.array(init.values()).reshape(shape);
    }
  };
  const tree = treeFromLeaves(specs.map((s) => [s.path, leaf(s)] as const));
  for (const [stream, key] of Object.entries(streams)) if (!used.has(stream)) key.dispose();
  return tree;
}
