/** Zod errors as one line naming the field, the same way for every config (train, sheet, sweep, progressive, checkpoints). */
import type { z } from "zod";

/**
 * A zod issue path as written in files, each segment with its separator: keys as `.key`,
 * array indices as `[i]`, keys containing dots as `["wiring.lambda"]`, e.g.
 * `.runs[7].set["wiring.lambda"]`.
 */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  return path.map((seg) => (typeof seg === "number" ? `[${seg}]` : String(seg).includes(".") ? `["${String(seg)}"]` : `.${String(seg)}`)).join("");
}

/** The first issue of a zod error as one line, `root` then the field path: `config.sheet.depth: expected number`. */
export function formatSchemaError(error: z.ZodError, root: string): string {
  const issue = error.issues[0];
  return `${root}${formatFieldPath(issue.path)}: ${issue.message}`;
}

/** Short printable form of a bad value for error messages. */
export function formatValue(value: unknown): string {
  if (typeof value === "number") return String(value);
  if (value === undefined) return "undefined";
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
