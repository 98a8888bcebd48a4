/**
 * Small file-system helpers shared by the file-based sources.
 */
import { promises as fs } from "node:fs";
import * as nodePath from "node:path";

/** Deterministic, locale-independent string order (UTF-16 code units). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** What is at `p`: a regular file, a directory, or nothing (`null`). Follows symlinks. */
export async function pathKind(p: string): Promise<"file" | "dir" | null> {
  try {
    const st = await fs.stat(p);
    return st.isDirectory() ? "dir" : st.isFile() ? "file" : null;
  } catch {
    return null;
  }
}

/**
 * All regular files under `dir` (recursively, following symlinks, skipping names that start
 * with "."), as paths relative to `dir` with "/" separators, sorted by {@link compareNames}.
 */
export async function listFilesRecursive(dir: string, keep: (name: string) => boolean = () => true): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await fs.readdir(nodePath.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        const k = await pathKind(nodePath.join(dir, r));
        isDir = k === "dir";
        isFile = k === "file";
      }
      if (isDir) await walk(r);
      else if (isFile && keep(e.name)) out.push(r);
    }
  }
  await walk("");
  return out.sort(compareNames);
}

/** Names of the immediate sub-directories of `dir` (not starting with "."), sorted. */
export async function listSubdirs(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    if (e.isDirectory() || (e.isSymbolicLink() && (await pathKind(nodePath.join(dir, e.name))) === "dir")) out.push(e.name);
  }
  return out.sort(compareNames);
}

/** Read `length` bytes of `file` starting at byte `offset`. */
export async function readRange(file: string, offset: number, length: number): Promise<Uint8Array> {
  const fh = await fs.open(file, "r");
  try {
    const buf = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) throw new Error(`unexpected end of ${file}`);
      done += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}
