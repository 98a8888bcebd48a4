/**
 * Hugging Face style parquet shards with an encoded-image column.
 */
import { promises as fs } from "node:fs";
import * as nodePath from "node:path";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet";
import type { AsyncBuffer, FileMetaData, SchemaTree } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import type { ImageDataset, OpenOptions, Split } from "./types.ts";
import { DataError } from "./errors.ts";
import { decodeImage } from "./decode.ts";
import { compareNames, listFilesRecursive, pathKind } from "./files.ts";
import { isHoldout, selectSplitFiles } from "./splits.ts";

const IMAGE_NAMES = ["image", "img", "picture", "png", "jpg", "jpeg", "webp"];
const LABEL_NAMES = ["label", "labels", "fine_label", "cls", "class", "target"];

/** Byte budget of the row-group cache of encoded images (for files without offset index). */
export const PARQUET_ROWGROUP_CACHE_BYTES = 256 * 1024 * 1024;

interface Shard {
  file: string;
  buffer: AsyncBuffer;
  metadata: FileMetaData;
  /** First row of each row group, plus the total at the end. */
  groupStarts: number[];
  /** Per row group: whether the image bytes chunk has a page offset index (single-row reads are cheap). */
  pageIndexed: boolean[];
  labels: (number | null)[] | null;
}

function isBytesLeaf(t: SchemaTree): boolean {
  const e = t.element;
  return t.children.length === 0 && e.type === "BYTE_ARRAY" && e.converted_type !== "UTF8" && e.logical_type?.type !== "STRING";
}
function isImageColumn(t: SchemaTree): boolean {
  return isBytesLeaf(t) || t.children.some((c) => c.element.name === "bytes" && isBytesLeaf(c));
}
function isNumericLeaf(t: SchemaTree): boolean {
  return t.children.length === 0 && (t.element.type === "INT32" || t.element.type === "INT64");
}

/** Class names from the Hugging Face `huggingface` key-value metadata, if the label is a ClassLabel. */
function hfClassNames(md: FileMetaData, column: string): string[] | null {
  const kv = md.key_value_metadata?.find((k) => k.key === "huggingface");
  if (!kv?.value) return null;
  try {
    const j = JSON.parse(kv.value) as { info?: { features?: Record<string, { names?: unknown }> } };
    const names = j.info?.features?.[column]?.names;
    return Array.isArray(names) && names.every((n) => typeof n === "string") ? (names as string[]) : null;
  } catch {
    return null;
  }
}

function toLabel(v: unknown): number | null {
  if (typeof v === "bigint") return v >= 0n ? Number(v) : null;
  if (typeof v === "number" && Number.isInteger(v)) return v >= 0 ? v : null;
  return null;
}

/** The encoded bytes of an image cell (raw bytes or a `{bytes, path}` struct), or a path to read. */
function cellBytes(cell: unknown): Uint8Array | string | null {
  if (cell instanceof Uint8Array) return cell;
  if (cell && typeof cell === "object") {
    const o = cell as { bytes?: unknown; path?: unknown };
    if (o.bytes instanceof Uint8Array && o.bytes.length > 0) return o.bytes;
    if (o.path instanceof Uint8Array) return Buffer.from(o.path).toString("utf8");
    if (typeof o.path === "string") return o.path;
  }
  return null;
}

/**
 * Open Hugging Face style parquet: `path` is a .parquet file or a folder searched
 * recursively for them (sorted). The image column (`image_column`, default `image`/`img`/...
 * or the first bytes column) holds a struct `{bytes, path}` or raw encoded bytes; the label
 * column (`label_column`, default `label`/`labels`/`fine_label`/`cls`/..., else unlabelled)
 * holds integers (negative = unlabelled). Class names come from the `huggingface` metadata
 * when the label is a ClassLabel, else numClasses = max label + 1 over all shards found.
 *
 * Split: in a folder, shards named with train/test/val (e.g. `train-00000-of-00002.parquet`,
 * or a `test/` folder) select the split, see splits.ts; a single file, or unnamed shards,
 * give every 10th row to the test split. Metadata and labels are read on open; images are
 * read on `get`: one row via the page (offset) index when the file has one, otherwise the
 * whole row group's image column, kept in a small LRU cache
 * ({@link PARQUET_ROWGROUP_CACHE_BYTES}).
 * @throws DataError when nothing is found or the columns are missing
 */
export async function openParquet(
  spec: { path: string; image_column?: string; label_column?: string },
  split: Split,
  options: OpenOptions = {},
): Promise<ImageDataset> {
  const { path } = spec;
  const kind = await pathKind(path);
  if (kind === null) throw new DataError(`parquet: ${path} not found; pass a .parquet file or a folder of shards (e.g. a Hugging Face dataset's data/ folder)`);
  const rel = kind === "file" ? [nodePath.basename(path)] : await listFilesRecursive(path, (n) => n.toLowerCase().endsWith(".parquet"));
  if (rel.length === 0) throw new DataError(`parquet: no .parquet files under ${path}`);
  rel.sort(compareNames);
  const sel = kind === "file" ? { files: rel, holdout: true } : selectSplitFiles(rel, split, `parquet: ${path}`);
  const fileOf = (r: string) => (kind === "file" ? path : nodePath.join(path, r));

  let imageCol: string | null = spec.image_column ?? null;
  let labelCol: string | null = spec.label_column ?? null;
  let classNames: string[] | null = null;
  const shards: Shard[] = [];
  const chosen = new Set(sel.files);
  let maxLabel = -1;
  for (const [ri, r] of rel.entries()) {
    const file = fileOf(r);
    let buffer: AsyncBuffer;
    let metadata: FileMetaData;
    try {
      buffer = await asyncBufferFromFile(file);
      metadata = await parquetMetadataAsync(buffer);
    } catch (e) {
      throw new DataError(`parquet: cannot read ${file}: ${(e as Error).message}`);
    }
    const cols = parquetSchema(metadata).children;
    const names = cols.map((c) => c.element.name);
    if (imageCol === null) {
      imageCol =
        cols.find((c) => IMAGE_NAMES.includes(c.element.name.toLowerCase()) && isImageColumn(c))?.element.name ??
        cols.find(isImageColumn)?.element.name ??
        null;
      if (imageCol === null) throw new DataError(`parquet: no image-bytes column in ${file} (columns: ${names.join(", ")}); set image_column`);
    }
    const ic = cols.find((c) => c.element.name === imageCol);
    if (!ic || !isImageColumn(ic)) {
      throw new DataError(`parquet: ${file} has no image column "${imageCol}" of bytes or {bytes, path} (columns: ${names.join(", ")}); set image_column`);
    }
    if (ri === 0 && labelCol === null) {
      labelCol = cols.find((c) => LABEL_NAMES.includes(c.element.name.toLowerCase()) && isNumericLeaf(c))?.element.name ?? null;
    }
    if (labelCol !== null && !cols.some((c) => c.element.name === labelCol && isNumericLeaf(c))) {
      throw new DataError(`parquet: ${file} has no integer label column "${labelCol}" (columns: ${names.join(", ")}); set label_column`);
    }
    if (labelCol !== null && classNames === null) classNames = hfClassNames(metadata, labelCol);
    let labels: (number | null)[] | null = null;
    if (labelCol !== null) {
      const rows = await parquetReadObjects({ file: buffer, metadata, columns: [labelCol], compressors, utf8: false });
      labels = rows.map((row) => toLabel(row[labelCol!]));
      for (const l of labels) if (l !== null && l > maxLabel) maxLabel = l;
    }
    if (!chosen.has(r)) continue;
    const groupStarts = [0];
    for (const g of metadata.row_groups) groupStarts.push(groupStarts[groupStarts.length - 1] + Number(g.num_rows));
    const pageIndexed = metadata.row_groups.map((g) => {
      const chunk = g.columns.find((c) => {
        const p = c.meta_data?.path_in_schema ?? [];
        return p[0] === imageCol && (p.length === 1 || p[p.length - 1] === "bytes");
      });
      return chunk?.offset_index_offset !== undefined && !!chunk.offset_index_length;
    });
    shards.push({ file, buffer, metadata, groupStarts, pageIndexed, labels });
  }
  const col = imageCol!;

  // Global row list of this split.
  const rows: { shard: number; row: number }[] = [];
  let pos = 0;
  shards.forEach((s, si) => {
    const n = s.groupStarts[s.groupStarts.length - 1];
    for (let row = 0; row < n; row++, pos++) if (!sel.holdout || isHoldout(pos) === (split === "test")) rows.push({ shard: si, row });
  });
  if (rows.length === 0) throw new DataError(`parquet: no ${split} rows in ${path}`);

  // LRU cache of whole row groups' encoded images.
  const cache = new Map<string, { bytes: number; cells: Promise<unknown[]> }>();
  let cached = 0;
  async function rowGroupCells(si: number, g: number): Promise<unknown[]> {
    const key = `${si}:${g}`;
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      cache.set(key, hit);
      return hit.cells;
    }
    const s = shards[si];
    const entry = { bytes: 0, cells: Promise.resolve([] as unknown[]) };
    entry.cells = parquetReadObjects({
      file: s.buffer,
      metadata: s.metadata,
      columns: [col],
      rowStart: s.groupStarts[g],
      rowEnd: s.groupStarts[g + 1],
      compressors,
      utf8: false,
    }).then((objs) => {
      const cells = objs.map((o) => o[col] as unknown);
      entry.bytes = cells.reduce<number>((a, c) => {
        const b = cellBytes(c);
        return a + (b instanceof Uint8Array ? b.byteLength : 64);
      }, 0);
      cached += entry.bytes;
      while (cached > PARQUET_ROWGROUP_CACHE_BYTES && cache.size > 1) {
        const [oldKey, old] = cache.entries().next().value!;
        cache.delete(oldKey);
        cached -= old.bytes;
      }
      return cells;
    });
    entry.cells.catch(() => {
      if (cache.get(key) === entry) cache.delete(key);
    });
    cache.set(key, entry);
    return entry.cells;
  }

  async function readCell(si: number, row: number): Promise<unknown> {
    const s = shards[si];
    let g = 0;
    while (s.groupStarts[g + 1] <= row) g++;
    if (s.pageIndexed[g]) {
      const objs = await parquetReadObjects({
        file: s.buffer,
        metadata: s.metadata,
        columns: [col],
        rowStart: row,
        rowEnd: row + 1,
        useOffsetIndex: true,
        compressors,
        utf8: false,
      });
      return objs[0]?.[col];
    }
    return (await rowGroupCells(si, g))[row - s.groupStarts[g]];
  }

  const numClasses = classNames ? Math.max(classNames.length, maxLabel + 1) : maxLabel >= 0 ? maxLabel + 1 : null;
  return {
    name: `parquet:${path}`,
    split,
    length: rows.length,
    numClasses,
    classNames: numClasses === null ? null : classNames,
    async get(index: number) {
      const r = rows[index];
      if (r === undefined) return null;
      let src: Uint8Array | string | null;
      try {
        src = cellBytes(await readCell(r.shard, r.row));
      } catch {
        return null;
      }
      if (src === null) return null;
      if (typeof src === "string") {
        // An external file referenced by path (relative to the shard's folder).
        const p = nodePath.resolve(nodePath.dirname(shards[r.shard].file), src);
        try {
          src = new Uint8Array(await fs.readFile(p));
        } catch {
          return null;
        }
      }
      const px = await decodeImage(src, { maxSide: options.maxSide });
      const labels = shards[r.shard].labels;
      return px && { ...px, label: labels ? labels[r.row] : null };
    },
  };
}
