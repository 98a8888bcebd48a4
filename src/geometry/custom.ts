/** Custom geometry: columns at explicit positions, optionally split into named areas, read from JSON or CSV. */
import { existsSync } from "node:fs";
import { readUserFileSync } from "../io/atomic.ts";
import { formatValue } from "../io/schema-errors.ts";
import { geometryFromJSON } from "./spec.ts";
import type { Area, ColumnLayout, GeometrySpec } from "./types.ts";

/** Lay out columns at the given (already checked) positions; areas default to one area "sheet". */
export function customLayout(positions: readonly (readonly number[])[], areas?: readonly Area[]): ColumnLayout {
  const n = positions.length;
  const dim = positions[0].length;
  const flat = new Float64Array(n * dim);
  positions.forEach((row, i) => {
    flat.set(row, i * dim);
  });
  const out: Area[] = areas
    ? areas.map((a) => (a.grid ? { name: a.name, start: a.start, end: a.end, grid: [a.grid[0], a.grid[1]] } : { name: a.name, start: a.start, end: a.end }))
    : [{ name: "sheet", start: 0, end: n }];
  return { numColumns: n, positions: flat, positionDim: dim, areas: out };
}

/** Positions and optional areas parsed from a custom-geometry file. */
export interface CustomGeometryData {
  positions: number[][];
  areas?: Area[];
}

/**
 * Parse CSV text: a header row naming columns x, y and optionally z and area (any order),
 * then one row per column. Rows sharing an `area` value must be contiguous; each run becomes a named area.
 * Blank lines and lines starting with '#' are skipped. `file` names the source in errors.
 */
export function parseCustomCSV(text: string, file = "<csv>"): CustomGeometryData {
  const lines = text.split(/\r?\n/);
  const split = (line: string) => line.split(",").map((f) => f.trim().replace(/^"(.*)"$/, "$1"));
  let header: string[] | undefined;
  let headerLine = 0;
  const positions: number[][] = [];
  const areas: Area[] = [];
  let col: Record<"x" | "y" | "z" | "area", number> = { x: -1, y: -1, z: -1, area: -1 };
  for (let li = 0; li < lines.length; li++) {
    const lineNo = li + 1;
    const line = lines[li].replace(/^\uFEFF/, "");
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    const fields = split(line);
    if (!header) {
      header = fields.map((f) => f.toLowerCase());
      headerLine = lineNo;
      col = { x: -1, y: -1, z: -1, area: -1 };
      header.forEach((h, k) => {
        if (!(h === "x" || h === "y" || h === "z" || h === "area")) {
          throw new Error(`${file}:${lineNo}: unknown CSV column "${fields[k]}"; expected header x, y and optionally z, area`);
        }
        if (col[h] !== -1) throw new Error(`${file}:${lineNo}: CSV column "${h}" appears twice in the header`);
        col[h] = k;
      });
      if (col.x === -1 || col.y === -1) {
        throw new Error(`${file}:${lineNo}: CSV header must name columns x and y (optionally z, area), got "${line.trim()}"`);
      }
      continue;
    }
    if (fields.length !== header.length) {
      throw new Error(`${file}:${lineNo}: expected ${header.length} fields (${header.join(", ")}), got ${fields.length}`);
    }
    const row: number[] = [];
    for (const axis of ["x", "y", "z"] as const) {
      if (col[axis] === -1) continue;
      const raw = fields[col[axis]];
      const v = raw === "" ? NaN : Number(raw);
      if (!Number.isFinite(v)) throw new Error(`${file}:${lineNo}: ${axis} must be a finite number, got "${raw}"`);
      row.push(v);
    }
    const index = positions.length;
    positions.push(row);
    if (col.area !== -1) {
      const name = fields[col.area];
      if (name === "") throw new Error(`${file}:${lineNo}: area must not be empty`);
      const last = areas[areas.length - 1];
      if (last && last.name === name) last.end = index + 1;
      else {
        if (areas.some((a) => a.name === name)) {
          throw new Error(`${file}:${lineNo}: area "${name}" appears again after "${last.name}"; rows of one area must be contiguous`);
        }
        areas.push({ name, start: index, end: index + 1 });
      }
    }
  }
  if (!header) throw new Error(`${file}: empty CSV; expected a header row x, y (optionally z, area) and one row per column`);
  if (positions.length === 0) throw new Error(`${file}:${headerLine}: CSV has a header but no data rows`);
  return col.area === -1 ? { positions } : { positions, areas };
}

/**
 * Offset and description of the first JSON syntax error in `text` (a small recursive-descent scan,
 * used only to point at a line when JSON.parse fails), or undefined when none is found.
 */
function findJSONError(text: string): { offset: number; what: string } | undefined {
  let i = 0;
  class Bad extends Error {
    constructor(readonly offset: number, readonly what: string) {
      super(what);
    }
  }
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const unexpected = (expected: string): never => {
    throw new Bad(i, i < text.length ? `unexpected ${JSON.stringify(text[i])}, expected ${expected}` : `unexpected end of input, expected ${expected}`);
  };
  const str = () => {
    if (text[i] !== '"') unexpected("a string");
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") i++;
      else if (text.charCodeAt(i) < 0x20) unexpected('a closing "');
      i++;
    }
    if (i >= text.length) unexpected('a closing "');
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") return void i++;
      for (;;) {
        ws();
        str();
        ws();
        if (text[i] !== ":") unexpected('":"');
        i++;
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return void i++;
        else unexpected('"," or "}"');
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return void i++;
        else unexpected('"," or "]"');
      }
    }
    if (c === '"') {
      str();
      return;
    }
    const m = /^(-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) {
      unexpected("a value");
      return;
    }
    i += m[0].length;
  };
  try {
    value();
    ws();
    if (i < text.length) unexpected("end of input");
  } catch (e) {
    if (e instanceof Bad) return { offset: e.offset, what: e.what };
    throw e;
  }
  return undefined;
}

/** 1-based line of a character offset in `text`. */
function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text[i] === "\n") line++;
  return line;
}

/**
 * Parse JSON text: either a bare array of positions or an object
 * {"positions": [[x, y], ...], "areas"?: [...], "kind"?: "custom", "metric"?: "euclidean", "self_offset"?: s}.
 */
export function parseCustomJSON(text: string, file = "<json>"): CustomGeometryData & { self_offset?: number } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const found = findJSONError(text);
    if (found) throw new Error(`${file}:${lineOf(text, found.offset)}: invalid JSON: ${found.what}`);
    throw new Error(`${file}: invalid JSON: ${(e as Error).message.split("\n")[0]}`);
  }
  if (Array.isArray(value)) return { positions: value as number[][] };
  if (typeof value !== "object" || value === null) {
    throw new Error(`${file}: expected a JSON array of positions or an object with "positions", got ${formatValue(value)}`);
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!["positions", "areas", "kind", "metric", "self_offset"].includes(key)) {
      throw new Error(`${file}: unknown field "${key}"; allowed: positions, areas, kind, metric, self_offset`);
    }
  }
  if (obj.kind !== undefined && obj.kind !== "custom") throw new Error(`${file}: kind must be "custom", got ${formatValue(obj.kind)}`);
  if (obj.metric !== undefined && obj.metric !== "euclidean") throw new Error(`${file}: metric must be "euclidean", got ${formatValue(obj.metric)}`);
  if (obj.positions === undefined) throw new Error(`${file}: missing field "positions" (an array of [x, y(, z)] rows)`);
  const out: CustomGeometryData & { self_offset?: number } = { positions: obj.positions as number[][] };
  if (obj.areas !== undefined) out.areas = obj.areas as Area[];
  if (obj.self_offset !== undefined) out.self_offset = obj.self_offset as number;
  return out;
}

/**
 * Read a custom geometry from a JSON or CSV file (chosen by extension, else by content) and return its spec.
 * `extra.self_offset` overrides one given in the file. Throws one line naming the file (and line where known).
 */
export function loadCustomGeometry(path: string, extra?: { self_offset?: number }): GeometrySpec {
  if (!existsSync(path)) throw new Error(`custom geometry file not found: ${path}`);
  // a regular file of bounded size only: never a device such as /dev/zero
  const text = readUserFileSync(path, 256 * 2 ** 20, "custom geometry file");
  const lower = path.toLowerCase();
  const isJSON = lower.endsWith(".json") ? true : lower.endsWith(".csv") ? false : /^\s*[[{]/.test(text.replace(/^\uFEFF/, ""));
  const data = isJSON ? parseCustomJSON(text.replace(/^\uFEFF/, ""), path) : parseCustomCSV(text, path);
  const selfOffset = extra?.self_offset ?? ("self_offset" in data ? data.self_offset : undefined);
  const spec = { kind: "custom", positions: data.positions, ...(data.areas !== undefined ? { areas: data.areas } : {}), ...(selfOffset !== undefined ? { self_offset: selfOffset } : {}) };
  return geometryFromJSON(spec, `${path}: `);
}
