/**
 * Webdataset shards: uncompressed .tar files whose members are grouped into samples by key.
 */
import * as nodePath from "node:path";
import type { ImageDataset, OpenOptions, Split } from "./types.ts";
import { DataError } from "./errors.ts";
import { decodeImage } from "./decode.ts";
import { compareNames, listFilesRecursive, pathKind, readRange } from "./files.ts";
import { isHoldout, selectSplitFiles } from "./splits.ts";
import { indexTar } from "./tar.ts";

const IMAGE_EXTS = ["jpg", "jpeg", "png", "webp"];
const LABEL_EXTS = ["cls", "label", "txt"];

/** Split a member name into webdataset key and extension (at the first dot of the base name). */
export function webdatasetKey(name: string): { key: string; ext: string } {
  const slash = name.lastIndexOf("/");
  const dot = name.indexOf(".", slash + 1);
  if (dot < 0) return { key: name, ext: "" };
  return { key: name.slice(0, dot), ext: name.slice(dot + 1).toLowerCase() };
}

interface Sample {
  shard: string;
  offset: number;
  size: number;
  labelText: string | null;
  labelExt: string | null;
}

function indexShard(file: string): Sample[] {
  const groups = new Map<string, { image?: { offset: number; size: number }; labels: Map<string, string> }>();
  const group = (key: string) => {
    let g = groups.get(key);
    if (!g) {
      g = { labels: new Map() };
      groups.set(key, g);
    }
    return g;
  };
  const members = indexTar(
    file,
    (name) => LABEL_EXTS.includes(webdatasetKey(name).ext),
    (m, bytes) => {
      const { key, ext } = webdatasetKey(m.name);
      group(key).labels.set(ext, Buffer.from(bytes).toString("utf8").trim());
    },
  );
  for (const m of members) {
    const { key, ext } = webdatasetKey(m.name);
    if (IMAGE_EXTS.includes(ext)) {
      const g = group(key);
      if (!g.image) g.image = { offset: m.offset, size: m.size };
    }
  }
  const out: Sample[] = [];
  for (const g of groups.values()) {
    if (!g.image) continue;
    const ext = LABEL_EXTS.find((e) => g.labels.has(e)) ?? null;
    out.push({ shard: file, offset: g.image.offset, size: g.image.size, labelText: ext ? g.labels.get(ext)! : null, labelExt: ext });
  }
  return out;
}

/**
 * Open webdataset shards: `path` is one .tar or a folder searched recursively for .tar files
 * (sorted by name). Members are grouped by key (the member path up to the first dot of its
 * base name); a sample's image is its first jpg/jpeg/png/webp member; its label comes from
 * a `.cls`, `.label` or `.txt` member: an integer (negative = unlabelled) or a class name
 * (class names are then sorted and numbered). `.txt` names are ignored when they look like
 * captions (more distinct values than half the samples). The archive headers are indexed on
 * open (data skipped), so `get` is random access. numClasses / classNames are computed over
 * all shards found, so both splits agree. Split: in a folder, shards named with
 * train/test/val (see splits.ts) select the split; a single .tar file, or unnamed shards,
 * give every 10th sample (in shard order) to the test split.
 * Compressed shards (.tar.gz) are not supported: decompress them first.
 * @throws DataError when nothing is found or an archive is malformed
 */
export async function openWebdataset(path: string, split: Split, options: OpenOptions = {}): Promise<ImageDataset> {
  const kind = await pathKind(path);
  if (kind === null) throw new DataError(`webdataset: ${path} not found; pass a .tar shard or a folder of .tar shards`);
  let shards: string[];
  if (kind === "file") shards = [path];
  else shards = (await listFilesRecursive(path, (n) => /\.tar$/i.test(n))).map((f) => nodePath.join(path, f));
  if (shards.length === 0) {
    const gz = kind === "dir" ? await listFilesRecursive(path, (n) => /\.(tar\.gz|tgz)$/i.test(n)) : [];
    throw new DataError(
      gz.length > 0
        ? `webdataset: only compressed shards (.tar.gz) in ${path}; decompress them (gunzip) to plain .tar first`
        : `webdataset: no .tar shards under ${path}`,
    );
  }
  shards.sort(compareNames);
  const rel = shards.map((s) => (kind === "dir" ? nodePath.relative(path, s).split(nodePath.sep).join("/") : nodePath.basename(s)));
  const sel = kind === "file" ? { files: rel, holdout: true } : selectSplitFiles(rel, split, `webdataset: ${path}`);
  const chosen = new Set(sel.files);

  const all: Sample[] = [];
  const mine: Sample[] = [];
  for (let i = 0; i < shards.length; i++) {
    let samples: Sample[];
    try {
      samples = indexShard(shards[i]);
    } catch (e) {
      throw new DataError(`webdataset: cannot index ${shards[i]}: ${(e as Error).message}`);
    }
    all.push(...samples);
    if (chosen.has(rel[i])) mine.push(...samples);
  }
  const selected = sel.holdout ? mine.filter((_, i) => isHoldout(i) === (split === "test")) : mine;
  if (selected.length === 0) throw new DataError(`webdataset: no ${split} samples with a jpg/jpeg/png/webp member in ${path}`);

  // Labels.
  const isInt = (s: string) => /^-?\d+$/.test(s);
  const labelled = all.filter((s) => s.labelText !== null && s.labelText !== "");
  let useTxt = true;
  const txt = labelled.filter((s) => s.labelExt === "txt" && !isInt(s.labelText!));
  if (txt.length > 0 && new Set(txt.map((s) => s.labelText)).size > Math.max(1, all.length / 2)) useTxt = false;
  const usable = labelled.filter((s) => useTxt || s.labelExt !== "txt");
  const names = usable.some((s) => !isInt(s.labelText!)) ? [...new Set(usable.map((s) => s.labelText!))].sort(compareNames) : null;
  let maxInt = -1;
  if (!names) for (const s of usable) maxInt = Math.max(maxInt, Number(s.labelText));
  const labelOf = (s: Sample): number | null => {
    if (s.labelText === null || s.labelText === "" || (!useTxt && s.labelExt === "txt")) return null;
    if (names) return names.indexOf(s.labelText);
    const v = Number(s.labelText);
    return v >= 0 ? v : null;
  };
  const hasLabels = usable.length > 0 && (names !== null || maxInt >= 0);
  return {
    name: `webdataset:${path}`,
    split,
    length: selected.length,
    numClasses: hasLabels ? (names ? names.length : maxInt + 1) : null,
    classNames: hasLabels ? names : null,
    describe: (index: number) => (selected[index] ? `${selected[index].shard} (entry at byte ${selected[index].offset})` : `example ${index}`),
    async get(index: number) {
      const s = selected[index];
      if (s === undefined) return null;
      let bytes: Uint8Array;
      try {
        bytes = await readRange(s.shard, s.offset, s.size);
      } catch {
        return null;
      }
      const px = await decodeImage(bytes, { maxSide: options.maxSide });
      return px && { ...px, label: labelOf(s) };
    },
  };
}
