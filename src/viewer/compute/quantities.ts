/**
 * The per-column quantities the sheet can be coloured by, from one forward pass
 * (see forward.ts). Pure functions of host arrays; dense rows are [N], sparse rows [K] with
 * `connectivity` [N, K] naming the sources.
 */
import type { ViewerForward } from "./forward.ts";
import type { PopulationStats } from "./population.ts";

/** What colours the columns. */
export type Quantity = "norm" | "energy" | "incoming" | "outgoing" | "received" | "entropy" | "preferred" | "selectivity" | "area";

export interface QuantityInfo {
  id: Quantity;
  label: string;
  /** Needs a selected column. */
  needsColumn: boolean;
  /** Needs statistics over the held-out images (see population.ts). */
  needsPopulation: boolean;
  /** Coloured by category (area, class) rather than on a colour scale. */
  categorical: boolean;
}

const q = (id: Quantity, label: string, flags: Partial<Omit<QuantityInfo, "id" | "label">> = {}): QuantityInfo => ({
  id,
  label,
  needsColumn: false,
  needsPopulation: false,
  categorical: false,
  ...flags,
});

export const QUANTITIES: QuantityInfo[] = [
  q("norm", "activation norm |x| at the step"),
  q("energy", "energy: mean |x| over features at the step"),
  q("incoming", "selected column reads from (its attention row)", { needsColumn: true }),
  q("outgoing", "reads the selected column (its attention column)", { needsColumn: true }),
  q("received", "in-degree: attention received (sum over readers; rows sum to 1, so out-degree is 1)"),
  q("entropy", "attention entropy of the column's row (nats)"),
  q("preferred", "preferred class over the held-out images (largest mean energy)", { needsPopulation: true, categorical: true }),
  q("selectivity", "class selectivity over the held-out images, (max - mean) / (max + mean)", { needsPopulation: true }),
  q("area", "area", { categorical: true }),
];

export const QUANTITY_IDS: readonly Quantity[] = QUANTITIES.map((x) => x.id);

/** Attention weight of target i on source j at `step`, for every source: a dense row [N]. */
export function attentionRow(f: ViewerForward, n: number, step: number, i: number, connectivity: Int32Array | null): Float32Array {
  const w = f.width;
  const row = f.attn.subarray((step * n + i) * w, (step * n + i + 1) * w);
  if (!connectivity) return Float32Array.from(row);
  const dense = new Float32Array(n);
  for (let t = 0; t < w; t++) dense[connectivity[i * w + t]] += row[t];
  return dense;
}

/** How much every target column reads from source j at `step`: [N]. */
export function attentionColumn(f: ViewerForward, n: number, step: number, j: number, connectivity: Int32Array | null): Float32Array {
  const w = f.width;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const base = (step * n + i) * w;
    if (!connectivity) out[i] = f.attn[base + j];
    else for (let t = 0; t < w; t++) if (connectivity[i * w + t] === j) out[i] += f.attn[base + t];
  }
  return out;
}

/** Values of `q` for every column, or null when it needs a selected column and there is none. */
export function quantityValues(
  q: Quantity,
  f: ViewerForward,
  n: number,
  step: number,
  selected: number | null,
  connectivity: Int32Array | null,
  areaOf: Int32Array,
  population: PopulationStats | null = null,
): Float32Array | null {
  const w = f.width;
  switch (q) {
    case "norm":
      return f.norms.slice(step * n, (step + 1) * n);
    case "energy":
      return f.energy.slice(step * n, (step + 1) * n);
    case "preferred":
      return population ? population.preferred.slice(step * n, (step + 1) * n) : null;
    case "selectivity":
      return population ? population.selectivity.slice(step * n, (step + 1) * n) : null;
    case "incoming":
      return selected === null ? null : attentionRow(f, n, step, selected, connectivity);
    case "outgoing":
      return selected === null ? null : attentionColumn(f, n, step, selected, connectivity);
    case "received": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const base = (step * n + i) * w;
        for (let t = 0; t < w; t++) out[connectivity ? connectivity[i * w + t] : t] += f.attn[base + t];
      }
      return out;
    }
    case "entropy": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        let h = 0;
        const base = (step * n + i) * w;
        for (let t = 0; t < w; t++) {
          const a = f.attn[base + t];
          if (a > 0) h -= a * Math.log(a);
        }
        out[i] = h;
      }
      return out;
    }
    case "area":
      return Float32Array.from(areaOf);
  }
}

/** The `count` largest entries of `values` as [index, value], largest first (ties: lower index). */
export function topK(values: ArrayLike<number>, count: number): [number, number][] {
  return Array.from(values, (v, i) => [i, v] as [number, number])
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, count);
}
