/**
 * A minimal tar reader that indexes member offsets, so members can be read at random.
 * Understands ustar (with name prefix), GNU long names (`L`) and pax headers (`x`: path, size).
 */
import * as fs from "node:fs";

/** One regular file inside a tar archive. */
export interface TarMember {
  /** Path inside the archive. */
  name: string;
  /** Byte offset of the member's data in the archive file. */
  offset: number;
  /** Data size in bytes. */
  size: number;
}

function cString(b: Uint8Array, start: number, len: number): string {
  let end = start;
  while (end < start + len && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString("utf8");
}

function parseSize(b: Uint8Array, start: number, len: number): number {
  if (b[start] & 0x80) {
    // GNU base-256 encoding.
    let v = b[start] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[start + i];
    return v;
  }
  const s = cString(b, start, len).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function parsePax(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8");
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(" ", i);
    if (sp < 0) break;
    const len = parseInt(text.slice(i, sp), 10);
    if (!(len > 0)) break;
    const rec = text.slice(sp + 1, i + len - 1); // drop trailing newline
    const eq = rec.indexOf("=");
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

function readAt(fd: number, offset: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, offset + done);
    if (n === 0) throw new Error("unexpected end of tar archive");
    done += n;
  }
  return buf;
}

/**
 * List the regular-file members of a tar archive with their data offsets, reading only
 * headers (synchronous reads; member data is skipped).
 * @param file path of an uncompressed .tar
 * @param readSmall optional predicate; members for which it returns true (and of at most
 *   4096 bytes) also get their bytes read, passed to `onSmall`
 * @throws Error on a malformed archive
 */
export function indexTar(
  file: string,
  readSmall?: (name: string, size: number) => boolean,
  onSmall?: (member: TarMember, bytes: Uint8Array) => void,
): TarMember[] {
  const fd = fs.openSync(file, "r");
  try {
    const total = fs.fstatSync(fd).size;
    const members: TarMember[] = [];
    let offset = 0;
    let longName: string | null = null;
    let pax: Map<string, string> | null = null;
    while (offset + 512 <= total) {
      const h = readAt(fd, offset, 512);
      if (h.every((v) => v === 0)) break;
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
      const want = parseSize(h, 148, 8);
      if (sum !== want) throw new Error(`bad tar header checksum at byte ${offset}`);
      let size = parseSize(h, 124, 12);
      const type = String.fromCharCode(h[156] || 48);
      let name = cString(h, 0, 100);
      const magic = cString(h, 257, 6);
      if (magic.startsWith("ustar")) {
        const prefix = cString(h, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      const dataOffset = offset + 512;
      if (type === "x" || type === "L") {
        const data = readAt(fd, dataOffset, size);
        if (type === "x") pax = parsePax(data);
        else longName = cString(data, 0, data.length);
      } else {
        if (pax?.has("size")) size = Number(pax.get("size"));
        if (longName !== null) name = longName;
        if (pax?.has("path")) name = pax.get("path")!;
        if (type === "0" || type === "7") {
          const m = { name, offset: dataOffset, size };
          members.push(m);
          if (readSmall && onSmall && size <= 4096 && readSmall(name, size)) onSmall(m, readAt(fd, dataOffset, size));
        }
        longName = null;
        pax = null;
      }
      offset = dataOffset + Math.ceil(size / 512) * 512;
    }
    return members;
  } finally {
    fs.closeSync(fd);
  }
}
