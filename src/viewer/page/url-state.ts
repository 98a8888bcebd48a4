/**
 * The shareable part of the viewer's state, kept in the URL hash
 * (`#run=NAME&col=12&step=2&img=3&q=incoming&seed=1`), so a link reopens the same view.
 */
import { QUANTITY_IDS, type Quantity } from "../compute/quantities.ts";

export interface ViewState {
  /** Sweep: the run being viewed (null: the sweep's table, or a single run). */
  run: string | null;
  /** Selected column, or null. */
  col: number | null;
  step: number;
  /** Held-out image index, or "draw" for the drawing. */
  img: number | "draw";
  q: Quantity;
  /** Seed of the MIM mask. */
  seed: number;
}

function int(v: string | null, fallback: number): number {
  const n = v === null ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

/** Read the state from `location.hash`. */
export function readViewState(): ViewState {
  const p = new URLSearchParams(location.hash.replace(/^#/, ""));
  const q = p.get("q") as Quantity | null;
  const col = p.get("col");
  return {
    run: p.get("run"),
    col: col === null || col === "" ? null : int(col, 0),
    step: int(p.get("step"), 0),
    img: p.get("img") === "draw" ? "draw" : int(p.get("img"), 0),
    q: q && QUANTITY_IDS.includes(q) ? q : "norm",
    seed: int(p.get("seed"), 1),
  };
}

/** Write the state to the hash without adding a history entry. */
export function writeViewState(s: ViewState): void {
  const p = new URLSearchParams();
  if (s.run !== null) p.set("run", s.run);
  if (s.col !== null) p.set("col", String(s.col));
  p.set("step", String(s.step));
  p.set("img", String(s.img));
  p.set("q", s.q);
  p.set("seed", String(s.seed));
  history.replaceState(null, "", `${location.pathname}${location.search}#${p.toString()}`);
}
