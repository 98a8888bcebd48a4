/**
 * Atomic file writes: the data goes to a uniquely named temporary file in the
 * target's directory, is flushed to disk (fsync), and is then renamed over the
 * target. A reader of `path` therefore sees either the old file or the whole
 * new one, never a partial write. On any failure the temporary file is removed
 * and the error is rethrown; the old file (if any) is left untouched.
 *
 * Temporary files are named `.NAME.<pid>.<12 hex>.tmp`. Those of this process that are in
 * flight are removed when it exits (also on SIGINT / SIGTERM / SIGHUP once
 * {@link installSignalCleanup} has run); those of dead processes (kill -9, power loss) are
 * removed by {@link removeStaleTempFiles} when a run directory is opened.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
  constants as fsConstants,
} from "node:fs";
import { type FileHandle, mkdir, open, rename, rm } from "node:fs/promises";
import path from "node:path";

/** Temporary files of this process that are being written (removed on exit if still there). */
const inFlight = new Set<string>();
/** Synchronous clean-up jobs run when the process exits (e.g. releasing run-directory locks). */
const exitJobs = new Set<() => void>();
let exitHookInstalled = false;

function runExitJobs(): void {
  for (const tmp of inFlight) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // best effort: the process is exiting
    }
  }
  inFlight.clear();
  for (const job of exitJobs) {
    try {
      job();
    } catch {
      // best effort
    }
  }
  exitJobs.clear();
}

function ensureExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", runExitJobs);
}

/**
 * Run `job` (synchronous, must not throw) when the process exits, normally or through
 * {@link installSignalCleanup}'s signals. Returns a function that unregisters it.
 */
export function onProcessExit(job: () => void): () => void {
  ensureExitHook();
  exitJobs.add(job);
  return () => exitJobs.delete(job);
}

let signalsInstalled = false;

/**
 * Make SIGINT, SIGTERM and SIGHUP end the process through its exit clean-up (in-flight
 * temporary files removed, locks released), with the usual exit status 128 + signal number
 * (130, 143, 129). Exiting is deferred by one turn so other handlers of the same signal
 * (e.g. a sweep stopping its children) still run. For commands; a library leaves signals alone.
 */
export function installSignalCleanup(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  ensureExitHook();
  const codes: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  for (const [signal, code] of Object.entries(codes) as [NodeJS.Signals, number][]) {
    process.on(signal, () => {
      runExitJobs();
      setImmediate(() => process.exit(code));
    });
  }
}

/** Temporary sibling of `target`: hidden, and unique per process and call. */
function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/** `.NAME.<pid>.<12 hex>.tmp`, as {@link tempPathFor} names them. */
const TEMP_RE = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** Whether a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Remove the temporary files that writers which are gone left in `dir` (not recursive):
 * `.NAME.<pid>.<hex>.tmp` whose process no longer exists, or this process's own that are
 * not in flight. Returns the names removed. A missing folder removes nothing.
 */
export function removeStaleTempFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    const full = path.join(dir, name);
    const stale = pid === process.pid ? !inFlight.has(full) : !processAlive(pid);
    if (!stale) continue;
    try {
      rmSync(full, { force: true });
      removed.push(name);
    } catch {
      // leave it: not ours to fight over
    }
  }
  return removed;
}

/** A one-line reason for a file-system error code. */
function describeCode(code: string | undefined): string | null {
  switch (code) {
    case "EROFS":
      return "read-only file system";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "ENOSPC":
      return "no space left on the device";
    case "EDQUOT":
      return "disk quota exceeded";
    case "ENOTDIR":
      return "a path component is a file, not a directory";
    default:
      return null;
  }
}

/**
 * The real reason `mkdir -p dir` failed. Node reports ENOENT for a recursive mkdir on a
 * read-only file system; a plain mkdir of the first missing component tells the truth.
 */
function mkdirFailure(dir: string, err: unknown): Error {
  let code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") {
    let first = dir;
    while (!existsSync(path.dirname(first)) && path.dirname(first) !== first) first = path.dirname(first);
    try {
      mkdirSync(first);
      rmdirSync(first);
    } catch (e) {
      code = (e as NodeJS.ErrnoException).code ?? code;
    }
  }
  const why = describeCode(code) ?? (err as Error).message;
  const hint = code === "EROFS" || code === "EACCES" || code === "EPERM" ? "; choose a writable location" : "";
  return new Error(`cannot create directory ${dir}: ${why}${hint}`);
}

/** `mkdir -p dir` with a one-line error naming the real cause (read-only, permission, space). */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw mkdirFailure(dir, err);
  }
}

/** Synchronous {@link ensureDir}. */
export function ensureDirSync(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw mkdirFailure(dir, err);
  }
}

/** Rewrite an I/O error of writing `target` as one line naming the file and the cause. */
function writeFailure(target: string, err: unknown): Error {
  const why = describeCode((err as NodeJS.ErrnoException).code);
  if (why === null) return err as Error;
  return new Error(`cannot write ${target}: ${why}`);
}

/**
 * Read a file that a user named (a connectivity list, a geometry, a config), refusing what
 * is not a regular file (a device such as /dev/zero, a FIFO, a directory) and anything over
 * `maxBytes`. Returns UTF-8 text. Errors are one line naming `what` and the path.
 */
export function readUserFileSync(filePath: string, maxBytes: number, what: string): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer
    fd = openSync(filePath, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${what} ${filePath}: cannot read it (${code ?? (e as Error).message})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new Error(`${what} ${filePath}: not a regular file (${st.isDirectory() ? "a directory" : "a device, FIFO or socket"}); name a file`);
    }
    if (st.size > maxBytes) {
      throw new Error(`${what} ${filePath}: ${st.size} bytes is over the limit of ${maxBytes} bytes`);
    }
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** Size of a regular file, or null if `filePath` is missing or not a regular file. */
export function regularFileSize(filePath: string): number | null {
  try {
    const st = statSync(filePath);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

/** Best-effort fsync of a directory so the rename itself is durable (not supported everywhere). */
async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
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
  await ensureDir(dir);
  const tmp = tempPathFor(target);
  ensureExitHook();
  inFlight.add(tmp);
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
    throw writeFailure(target, err);
  } finally {
    inFlight.delete(tmp);
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
  ensureDirSync(dir);
  const tmp = tempPathFor(target);
  ensureExitHook();
  inFlight.add(tmp);
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
    throw writeFailure(target, err);
  } finally {
    inFlight.delete(tmp);
  }
  fsyncDirSync(dir);
}
