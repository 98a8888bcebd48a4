/**
 * Reading and writing the safetensors format
 * (https://github.com/huggingface/safetensors):
 *
 * - 8 bytes: little-endian u64 `N`, the header length;
 * - `N` bytes: UTF-8 JSON header
 *   `{"__metadata__": {str: str}, "name": {"dtype", "shape", "data_offsets": [begin, end]}, ...}`,
 *   padded with spaces to a multiple of 8 bytes;
 * - the byte buffer; offsets are relative to its start, tensors are contiguous,
 *   without gaps, and cover the buffer exactly.
 *
 * All numeric data is little-endian. Decoded tensors are copied into freshly
 * allocated (hence aligned) typed arrays.
 */
import { readFile, stat } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.ts";

/** Element types supported here (a subset of the safetensors dtypes). */
export type SafetensorsDType = "F32" | "F64" | "I32" | "I64" | "U8" | "F16" | "BOOL";

/**
 * One tensor: dtype, shape (row-major, `[]` for a scalar) and flat data.
 *
 * Array type per dtype: F32 → Float32Array, F64 → Float64Array, I32 → Int32Array,
 * I64 → BigInt64Array, U8 → Uint8Array, F16 → Uint16Array (raw IEEE half bits),
 * BOOL → Uint8Array (values 0 or 1).
 */
export interface TensorData {
  dtype: SafetensorsDType;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;
}

/** The contents of a safetensors file. */
export interface SafetensorsFile {
  tensors: Record<string, TensorData>;
  metadata: Record<string, string>;
}

type TypedArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor
  | Uint8ArrayConstructor
  | Uint16ArrayConstructor;

interface DTypeInfo {
  itemsize: number;
  ctor: TypedArrayCtor;
  arrayName: string;
}

const DTYPES: Record<SafetensorsDType, DTypeInfo> = {
  F32: { itemsize: 4, ctor: Float32Array, arrayName: "Float32Array" },
  F64: { itemsize: 8, ctor: Float64Array, arrayName: "Float64Array" },
  I32: { itemsize: 4, ctor: Int32Array, arrayName: "Int32Array" },
  I64: { itemsize: 8, ctor: BigInt64Array, arrayName: "BigInt64Array" },
  U8: { itemsize: 1, ctor: Uint8Array, arrayName: "Uint8Array" },
  F16: { itemsize: 2, ctor: Uint16Array, arrayName: "Uint16Array" },
  BOOL: { itemsize: 1, ctor: Uint8Array, arrayName: "Uint8Array" },
};

const METADATA_KEY = "__metadata__";
/** Same cap as the reference implementation, against absurd headers. */
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === "string" && Object.hasOwn(DTYPES, s);
}

const DTYPE_LIST = Object.keys(DTYPES).join(", ");

/** Define an own enumerable property (safe for names such as "__proto__"). */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function shapeStr(shape: readonly unknown[]): string {
  return `[${shape.join(",")}]`;
}

/** Code-unit order, like Rust's byte-wise String ordering for the BMP. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ");
}

// ---------------------------------------------------------------------------
// Encoding

/** Check one tensor before encoding; throws naming the tensor. */
function validateForEncode(name: string, t: TensorData): void {
  const where = `safetensors: tensor ${JSON.stringify(name)}`;
  if (name === METADATA_KEY) throw new Error(`${where}: the name ${METADATA_KEY} is reserved`);
  if (t === null || typeof t !== "object") throw new Error(`${where}: not a tensor object`);
  if (!isDType(t.dtype)) throw new Error(`${where}: unsupported dtype ${String(t.dtype)} (supported: ${DTYPE_LIST})`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`);
  }
  const info = DTYPES[t.dtype];
  if (!(t.data instanceof info.ctor)) {
    const found = (t.data as { constructor?: { name?: string } } | null)?.constructor?.name ?? typeof t.data;
    throw new Error(`${where}: dtype ${t.dtype} needs a ${info.arrayName}, got ${found}`);
  }
  const n = numel(t.shape);
  if (t.data.length !== n) {
    throw new Error(
      `${where}: data has ${t.data.length} elements but shape ${shapeStr(t.shape)} needs ${n}`,
    );
  }
  if (t.dtype === "BOOL") {
    const d = t.data as Uint8Array;
    for (let i = 0; i < d.length; i++) {
      if (d[i]! > 1) throw new Error(`${where}: BOOL data must be 0 or 1, found ${d[i]} at index ${i}`);
    }
  }
}

/** Copy `t.data` as little-endian bytes into `out` at `offset`. */
function writeLE(out: Uint8Array, offset: number, t: TensorData): void {
  const src = t.data;
  if (LITTLE_ENDIAN || src.BYTES_PER_ELEMENT === 1) {
    out.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), offset);
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset + offset, src.byteLength);
  const n = src.length;
  switch (t.dtype) {
    case "F32":
      for (let i = 0; i < n; i++) view.setFloat32(i * 4, (src as Float32Array)[i]!, true);
      break;
    case "F64":
      for (let i = 0; i < n; i++) view.setFloat64(i * 8, (src as Float64Array)[i]!, true);
      break;
    case "I32":
      for (let i = 0; i < n; i++) view.setInt32(i * 4, (src as Int32Array)[i]!, true);
      break;
    case "I64":
      for (let i = 0; i < n; i++) view.setBigInt64(i * 8, (src as BigInt64Array)[i]!, true);
      break;
    case "F16":
      for (let i = 0; i < n; i++) view.setUint16(i * 2, (src as Uint16Array)[i]!, true);
      break;
    default:
      throw new Error(`safetensors: internal error, unexpected dtype ${t.dtype}`);
  }
}

/**
 * Serialise tensors (and optional string metadata) to safetensors bytes.
 *
 * Deterministic: tensors are laid out and listed in the header sorted by name
 * (code-unit order), metadata keys are sorted, the header JSON is compact and
 * padded with spaces to a multiple of 8 bytes. Identical input gives
 * byte-identical output.
 *
 * @param tensors Tensors by name (`__metadata__` is reserved).
 * @param metadata Optional string-to-string metadata, stored under `__metadata__`.
 * @returns The encoded file.
 * @throws Error naming the tensor when its dtype is unsupported, its array type does
 *   not match the dtype, its shape is invalid, or its length is not product(shape).
 */
export function encodeSafetensors(tensors: Record<string, TensorData>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort(compareNames);
  const entries: string[] = [];

  if (metadata !== undefined) {
    const metaParts: string[] = [];
    for (const key of Object.keys(metadata).sort(compareNames)) {
      const value = metadata[key];
      if (typeof value !== "string") {
        throw new Error(`safetensors: metadata ${JSON.stringify(key)} must be a string, got ${typeof value}`);
      }
      metaParts.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
    }
    if (metaParts.length > 0) entries.push(`${JSON.stringify(METADATA_KEY)}:{${metaParts.join(",")}}`);
  }

  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    validateForEncode(name, t);
    const begin = offset;
    offset += t.data.byteLength;
    entries.push(
      `${JSON.stringify(name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(",")}],` +
        `"data_offsets":[${begin},${offset}]}`,
    );
  }

  const headerBytes = new TextEncoder().encode(`{${entries.join(",")}}`);
  const headerLen = Math.ceil(headerBytes.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(headerBytes, 8);
  out.fill(0x20, 8 + headerBytes.length, 8 + headerLen);

  const base = 8 + headerLen;
  let pos = 0;
  for (const name of names) {
    const t = tensors[name]!;
    writeLE(out, base + pos, t);
    pos += t.data.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Decoding

/** Copy little-endian bytes into a fresh, aligned typed array of the dtype. */
function readLE(bytes: Uint8Array, start: number, dtype: SafetensorsDType, n: number): TensorData["data"] {
  const info = DTYPES[dtype];
  const out = new info.ctor(n);
  const byteLength = n * info.itemsize;
  if (LITTLE_ENDIAN || info.itemsize === 1) {
    new Uint8Array(out.buffer).set(bytes.subarray(start, start + byteLength));
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, byteLength);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case "F32":
        (out as Float32Array)[i] = view.getFloat32(i * 4, true);
        break;
      case "F64":
        (out as Float64Array)[i] = view.getFloat64(i * 8, true);
        break;
      case "I32":
        (out as Int32Array)[i] = view.getInt32(i * 4, true);
        break;
      case "I64":
        (out as BigInt64Array)[i] = view.getBigInt64(i * 8, true);
        break;
      case "F16":
        (out as Uint16Array)[i] = view.getUint16(i * 2, true);
        break;
      default:
        throw new Error(`safetensors: internal error, unexpected dtype ${dtype}`);
    }
  }
  return out;
}

interface RawEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parse and validate safetensors bytes.
 *
 * Checks: header length fits in the input, the header is valid UTF-8 JSON object,
 * metadata values are strings, every dtype is supported, shapes are arrays of
 * non-negative integers, offsets are integers within the buffer with
 * `end - begin = product(shape) * itemsize`, and the tensors tile the buffer
 * exactly (no overlaps, no gaps, nothing trailing). BOOL values must be 0 or 1.
 *
 * @param bytes The file contents.
 * @param source Name used in error messages (typically the file path).
 * @returns Tensors (copied into aligned typed arrays) and metadata (empty if absent).
 * @throws A one-line Error naming `source` and, where relevant, the bad tensor.
 */
export function decodeSafetensors(bytes: Uint8Array, source = "<safetensors bytes>"): SafetensorsFile {
  const fail = (msg: string): never => {
    throw new Error(`${source}: invalid safetensors file: ${oneLine(msg)}`);
  };
  if (bytes.length < 8) fail(`file is truncated (${bytes.length} bytes, need at least 8 for the header length)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLenBig = view.getBigUint64(0, true);
  if (headerLenBig > BigInt(bytes.length - 8)) {
    fail(`header length ${headerLenBig} exceeds the ${bytes.length - 8} bytes after the length field (truncated file?)`);
  }
  const headerLen = Number(headerLenBig);
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);

  let headerText: string;
  try {
    headerText = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail("header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    return fail(`header is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("header JSON is not an object");
  }
  const headerObj = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const entries: RawEntry[] = [];
  const bufferLen = bytes.length - 8 - headerLen;

  for (const name of Object.keys(headerObj)) {
    const value = headerObj[name];
    if (name === METADATA_KEY) {
      if (value === null) continue;
      if (typeof value !== "object" || Array.isArray(value)) fail(`${METADATA_KEY} is not an object`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`${METADATA_KEY} value for ${JSON.stringify(k)} is not a string`);
        setOwn(metadata, k, v as string);
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (value === null || typeof value !== "object" || Array.isArray(value)) fail(`${where}: entry is not an object`);
    const info = value as Record<string, unknown>;
    const dtype = info.dtype;
    if (!isDType(dtype)) fail(`${where}: unknown or unsupported dtype ${JSON.stringify(dtype)} (supported: ${DTYPE_LIST})`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      fail(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    const offsets = info.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
    ) {
      fail(`${where}: data_offsets must be two non-negative integers, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`${where}: data_offsets [${begin},${end}] are reversed`);
    if (end > bufferLen) {
      fail(`${where}: data_offsets [${begin},${end}] out of range (data buffer is ${bufferLen} bytes)`);
    }
    const itemsize = DTYPES[dtype as SafetensorsDType].itemsize;
    const expected = numel(shape as number[]) * itemsize;
    if (end - begin !== expected) {
      fail(
        `${where}: data_offsets [${begin},${end}] span ${end - begin} bytes but ${dtype} shape ` +
          `${shapeStr(shape as number[])} needs ${expected}`,
      );
    }
    entries.push({ name, dtype: dtype as SafetensorsDType, shape: (shape as number[]).slice(), begin, end });
  }

  // The tensors must tile the buffer: sorted by offset, each starts where the previous ended.
  const byOffset = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: RawEntry | undefined;
  for (const e of byOffset) {
    if (e.begin < cursor) {
      fail(
        `tensor ${JSON.stringify(e.name)}: data_offsets [${e.begin},${e.end}] overlap tensor ` +
          `${JSON.stringify(prev!.name)} [${prev!.begin},${prev!.end}]`,
      );
    }
    if (e.begin > cursor) {
      fail(`tensor ${JSON.stringify(e.name)}: gap in the data buffer before offset ${e.begin} (expected ${cursor})`);
    }
    cursor = e.end;
    prev = e;
  }
  if (cursor !== bufferLen) {
    fail(`data buffer is ${bufferLen} bytes but the tensors cover ${cursor} (trailing or missing data)`);
  }

  const base = 8 + headerLen;
  const tensors: Record<string, TensorData> = {};
  for (const e of entries) {
    const n = numel(e.shape);
    const data = readLE(bytes, base + e.begin, e.dtype, n);
    if (e.dtype === "BOOL") {
      const d = data as Uint8Array;
      for (let i = 0; i < d.length; i++) {
        if (d[i]! > 1) fail(`tensor ${JSON.stringify(e.name)}: BOOL value ${d[i]} at index ${i} is not 0 or 1`);
      }
    }
    setOwn(tensors, e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

// ---------------------------------------------------------------------------
// Files

/**
 * Read and decode a safetensors file.
 *
 * @param filePath Path of the file.
 * @returns Its tensors and metadata.
 * @throws One-line Errors such as `cannot read <path>: no such file`, or the
 *   validation errors of {@link decodeSafetensors} naming the path.
 */
export async function readSafetensors(filePath: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    const st = await stat(filePath);
    if (!st.isFile() && !st.isDirectory()) throw new Error(`cannot read ${filePath}: not a regular file (a device, FIFO or socket)`);
    bytes = await readFile(filePath);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith("cannot read ")) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "is a directory"
          : code === "EACCES" || code === "EPERM"
            ? "permission denied"
            : oneLine(err instanceof Error ? err.message : String(err));
    throw new Error(`cannot read ${filePath}: ${why}`);
  }
  return decodeSafetensors(bytes, filePath);
}

/**
 * Encode tensors and write them atomically to `filePath` (parent directories
 * are created; an existing file is replaced only once the new one is complete).
 *
 * @param filePath Destination path.
 * @param tensors Tensors by name.
 * @param metadata Optional string metadata.
 * @throws The validation errors of {@link encodeSafetensors}, or the I/O error.
 */
export async function writeSafetensors(
  filePath: string,
  tensors: Record<string, TensorData>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(filePath, encodeSafetensors(tensors, metadata));
}

/**
 * Look up a tensor and check its dtype and shape.
 *
 * @param file Decoded file (anything with a `tensors` record).
 * @param name Tensor name.
 * @param dtype Expected dtype.
 * @param shape Expected shape.
 * @param source Name used in error messages (typically the file path).
 * @returns The tensor.
 * @throws Error naming `source`, the tensor, and expected vs found (missing,
 *   wrong dtype, or wrong shape).
 */
export function expectTensor(
  file: { tensors: Record<string, TensorData> },
  name: string,
  dtype: SafetensorsDType,
  shape: number[],
  source: string,
): TensorData {
  const where = `${source}: tensor ${JSON.stringify(name)}`;
  const want = `${dtype} ${shapeStr(shape)}`;
  if (!Object.hasOwn(file.tensors, name)) {
    const names = Object.keys(file.tensors);
    const listed = names.slice(0, 10).map((s) => JSON.stringify(s)).join(", ");
    const more = names.length > 10 ? `, ... (${names.length} in all)` : "";
    throw new Error(`${where} is missing (expected ${want}; file has ${names.length === 0 ? "no tensors" : listed + more})`);
  }
  const t = file.tensors[name]!;
  if (t.dtype !== dtype) {
    throw new Error(`${where} has dtype ${t.dtype}, expected ${dtype} (expected ${want}, found ${t.dtype} ${shapeStr(t.shape)})`);
  }
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${where} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)} (dtype ${dtype})`);
  }
  return t;
}
