/**
 * Layering configs: a config file over a preset, then overrides over both. One rule for
 * `--set key=value`, a sweep's `set` and a progressive file's `set`: a dotted key builds a
 * nested patch that is deep-merged over the config ({@link mergeConfig}), so a leaf replaces
 * its value and an object merges into the one there unless its `kind` differs.
 */

/**
 * Deep-merge plain objects (arrays and scalars replace). An object with a
 * different `kind` (another geometry, data set, ...) replaces the old one
 * whole, since their other fields do not mix. Neither input is modified.
 */
export function mergeConfig(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override === undefined ? base : structuredClone(override);
  if ("kind" in override && override.kind !== base.kind) return structuredClone(override);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = mergeConfig(base[k], v);
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A dotted key and its value. */
export type Override = readonly [key: string, value: unknown];

/**
 * Parse `key.path=value` (value as JSON when it parses, else the string), e.g. `sheet.depth=6`,
 * `wiring.lambda=0.01`, `data={"kind":"fashion-mnist"}`.
 */
export function parseOverride(text: string): Override {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new Error(`override "${text}" must look like key.path=value (e.g. sheet.depth=6)`);
  const raw = text.slice(eq + 1);
  try {
    return [text.slice(0, eq), JSON.parse(raw) as unknown];
  } catch {
    return [text.slice(0, eq), raw];
  }
}

/**
 * Apply overrides in order: each dotted key's value is merged in at its path (see the module
 * comment); a sweep's `set` object gives them as `Object.entries(set)`. Returns a new config.
 *
 * @example applyOverrides({ wiring: { form: "l1" } }, [["wiring.lambda", 0.1]]) // { wiring: { form: "l1", lambda: 0.1 } }
 */
export function applyOverrides(config: unknown, overrides: Iterable<Override>): unknown {
  let out = config;
  for (const [key, value] of overrides) {
    const keys = key.split(".");
    if (keys.some((k) => k === "")) throw new Error(`override key "${key}" has an empty part`);
    out = mergeConfig(out, keys.reduceRight<unknown>((acc, k) => ({ [k]: acc }), value));
  }
  return out;
}
