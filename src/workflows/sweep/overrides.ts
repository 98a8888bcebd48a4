/** Labels for the overrides that tell the runs of a sweep apart (compare tables, figure axes). */

/** An override value as written: strings bare, other values as compact JSON. */
export function formatValue(v: unknown): string {
  if (typeof v === "string") return v;
  return JSON.stringify(v) ?? "undefined";
}

/**
 * Short labels of dotted override keys: the shortest dotted suffix that is unique
 * among `keys` (`wiring.lambda` -> `lambda` unless another key also ends in `lambda`).
 */
export function shortKeys(keys: readonly string[]): Map<string, string> {
  const parts = keys.map((k) => k.split("."));
  const out = new Map<string, string>();
  parts.forEach((p, i) => {
    for (let take = 1; take <= p.length; take++) {
      const label = p.slice(-take).join(".");
      if (!parts.some((q, j) => j !== i && q.slice(-take).join(".") === label)) {
        out.set(keys[i], label);
        return;
      }
    }
    out.set(keys[i], keys[i]);
  });
  return out;
}

/**
 * The "key" override keys of a sweep: those whose value is not the same in every
 * run (a key missing from some runs counts as varying). With one run, all its keys.
 * Keys are in order of first appearance.
 */
export function varyingKeys(rows: readonly { overrides: Record<string, unknown> }[]): string[] {
  const keys: string[] = [];
  for (const r of rows) for (const k of Object.keys(r.overrides)) if (!keys.includes(k)) keys.push(k);
  if (rows.length <= 1) return keys;
  return keys.filter((k) => {
    const first = rows[0].overrides;
    return rows.some((r) => !(k in r.overrides) || !(k in first) || JSON.stringify(r.overrides[k]) !== JSON.stringify(first[k]));
  });
}

/** `lambda=0.01, untie_mlp=false` for a row, over `keys` (missing keys left out); `-` when empty. */
export function describeOverrides(overrides: Record<string, unknown>, keys: readonly string[], labels: Map<string, string>): string {
  const parts = keys.filter((k) => k in overrides).map((k) => `${labels.get(k) ?? k}=${formatValue(overrides[k])}`);
  return parts.length ? parts.join(", ") : "-";
}
