/**
 * How the "train" / "test" split is chosen for sources without a fixed layout.
 *
 * Rule 1 (named shards): a file whose name, or else a folder on its relative path, has a
 * word `train`/`training` belongs to train; `test`/`testing` to test; `val`/`valid`/
 * `validation`/`eval` to validation. When any file is so named, split "train" takes the
 * train files and split "test" the test files, or the validation files if there are no test
 * files; files with no split word are ignored.
 *
 * Rule 2 (hold-out): when no file is named by split, every example whose position `i` in
 * the sorted, concatenated example list has `i % 10 === 9` is the test split, the rest train.
 */
import type { Split } from "./types.ts";
import { DataError } from "./errors.ts";

/** Every this-many-th example is held out for the test split (rule 2). */
export const HOLDOUT_EVERY = 10;

/** True if example position `i` belongs to the test split under the hold-out rule. */
export function isHoldout(i: number): boolean {
  return i % HOLDOUT_EVERY === HOLDOUT_EVERY - 1;
}

/** Positions `0..n-1` that belong to `split` under the hold-out rule, in order. */
export function holdoutPositions(n: number, split: Split): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (isHoldout(i) === (split === "test")) out.push(i);
  return out;
}

/** The split a relative path names (`val` counts separately from `test`), or null. */
export function splitOfPath(relPath: string): "train" | "test" | "val" | null {
  const segments = relPath.toLowerCase().split("/").reverse(); // base name first
  for (const seg of segments) {
    const words = seg.split(/[^a-z0-9]+/);
    for (const w of words) {
      if (w === "train" || w === "training") return "train";
      if (w === "test" || w === "testing") return "test";
      if (w === "val" || w === "valid" || w === "validation" || w === "eval") return "val";
    }
  }
  return null;
}

/** Result of {@link selectSplitFiles}. */
export interface SplitFiles {
  /** The files to read, in the given order. */
  files: string[];
  /** True when no file is named by split and rule 2 (every 10th example = test) applies. */
  holdout: boolean;
}

/**
 * Choose the files of `split` among `files` (relative paths) by the rules above.
 * @param what names the source in the error, e.g. "parquet: /data/x"
 * @throws DataError when files are named by split but none is for `split`
 */
export function selectSplitFiles(files: string[], split: Split, what: string): SplitFiles {
  const tagged = files.map((f) => ({ f, s: splitOfPath(f) }));
  if (tagged.every((t) => t.s === null)) return { files, holdout: true };
  let chosen = tagged.filter((t) => t.s === split).map((t) => t.f);
  if (split === "test" && chosen.length === 0) chosen = tagged.filter((t) => t.s === "val").map((t) => t.f);
  if (chosen.length === 0) {
    const have = [...new Set(tagged.map((t) => t.s).filter((s) => s !== null))].join("/");
    throw new DataError(
      `${what}: no ${split === "test" ? "test or validation" : "train"} files (found only ${have} files); name shards like ${split}-00000-of-00001.<ext>`,
    );
  }
  return { files: chosen, holdout: false };
}
