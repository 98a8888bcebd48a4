/**
 * Atomic file writes: the data goes to a uniquely named temporary file in the
 * target's directory, is flushed to disk (fsync), and is then renamed over the
 * target. A reader of `path` therefore sees either the old file or the whole
 * new one, never a partial write. On any failure the temporary file is removed
 * and the error is rethrown; the old file (if any) is left untouched.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import path from "node:path";

/** Temporary sibling of `target`: hidden, and unique per process and call. */
function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Best-effort fsync of a directory so the rename itself is durable (not supported everywhere). */
async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // Some platforms/filesystems cannot open or fsync directories; the rename is still atomic.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // See fsyncDir.
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // ignore
      }
    }
  }
}

/**
 * Write `data` to `filePath` atomically (temp file in the same directory, fsync,
 * rename). Parent directories are created as needed. Strings are written as UTF-8.
 *
 * @param filePath Destination file.
 * @param data Bytes or UTF-8 text to write.
 * @throws The underlying error; no temporary file is left behind and any existing
 *   file at `filePath` is unchanged.
 */
export async function writeFileAtomic(filePath: string, data: Uint8Array | string): Promise<void> {
  const target = path.resolve(filePath);
  const dir = path.dirname(target);
  await mkdir(dir, { recursive: true });
  const tmp = tempPathFor(target);
  let created = false;
  try {
    const handle = await open(tmp, "wx", 0o666);
    created = true;
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
    created = false;
  } catch (err) {
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

/**
 * Synchronous twin of {@link writeFileAtomic}: same guarantees, blocking I/O.
 *
 * @param filePath Destination file.
 * @param data Bytes or UTF-8 text to write.
 * @throws The underlying error; no temporary file is left behind and any existing
 *   file at `filePath` is unchanged.
 */
export function writeFileAtomicSync(filePath: string, data: Uint8Array | string): void {
  const target = path.resolve(filePath);
  const dir = path.dirname(target);
  mkdirSync(dir, { recursive: true });
  const tmp = tempPathFor(target);
  let created = false;
  try {
    const fd = openSync(tmp, "wx", 0o666);
    created = true;
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
    created = false;
  } catch (err) {
    if (created) {
      try {
        rmSync(tmp, { force: true });
      } catch {
        // ignore: the original error matters more
      }
    }
    throw err;
  }
  fsyncDirSync(dir);
}
