import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  decodeSafetensors,
  encodeSafetensors,
  expectTensor,
  readSafetensors,
  writeSafetensors,
  type TensorData,
} from "../src/io/safetensors.ts";
import { writeFileAtomic, writeFileAtomicSync } from "../src/io/atomic.ts";

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), "cf-st-"));
}

/** Every supported dtype, with awkward values. */
function allDTypes(): Record<string, TensorData> {
  return {
    f32: { dtype: "F32", shape: [2, 3], data: new Float32Array([0, -1.5, 3.25, Infinity, -0, 1e-30]) },
    f64: { dtype: "F64", shape: [3], data: new Float64Array([Math.PI, -1e300, Number.MIN_VALUE]) },
    i32: { dtype: "I32", shape: [2, 2], data: new Int32Array([0, -1, 2147483647, -2147483648]) },
    i64: { dtype: "I64", shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
    u8: { dtype: "U8", shape: [4], data: new Uint8Array([0, 1, 128, 255]) },
    f16: { dtype: "F16", shape: [1, 3], data: new Uint16Array([0x3c00, 0xc000, 0x7c00]) },
    bool: { dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) },
    scalar: { dtype: "F32", shape: [], data: new Float32Array([42]) },
    empty: { dtype: "F64", shape: [0, 5], data: new Float64Array(0) },
  };
}

/** Hand-built safetensors bytes: header JSON padded with spaces, then the given buffer. */
function handBuild(headerJson: string, buffer: Uint8Array, opts: { headerLen?: bigint } = {}): Uint8Array {
  let header = headerJson;
  while (header.length % 8 !== 0) header += " ";
  const hb = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + hb.length + buffer.length);
  new DataView(out.buffer).setBigUint64(0, opts.headerLen ?? BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(buffer, 8 + hb.length);
  return out;
}

test("round trip of every dtype, with metadata", () => {
  const tensors = allDTypes();
  const meta = { format: "pt", step: "12", "ü nicode": "✓" };
  const decoded = decodeSafetensors(encodeSafetensors(tensors, meta));
  assert.deepEqual(decoded.metadata, meta);
  assert.deepEqual(Object.keys(decoded.tensors).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const d = decoded.tensors[name]!;
    assert.equal(d.dtype, t.dtype, name);
    assert.deepEqual(d.shape, t.shape, name);
    assert.equal(d.data.constructor, t.data.constructor, name);
    assert.deepEqual(Array.from(d.data as ArrayLike<number | bigint>), Array.from(t.data as ArrayLike<number | bigint>), name);
    assert.equal(d.data.byteOffset % d.data.BYTES_PER_ELEMENT, 0, `${name} aligned`);
  }
  // -0 survives exactly
  assert.ok(Object.is((decoded.tensors.f32!.data as Float32Array)[4], -0));
  // No metadata -> empty record
  assert.deepEqual(decodeSafetensors(encodeSafetensors(tensors)).metadata, {});
});

test("typed arrays that are views into a larger buffer encode only their own bytes", () => {
  const big = new Float32Array([9, 9, 1, 2, 3, 9]);
  const view = big.subarray(2, 5);
  const dec = decodeSafetensors(encodeSafetensors({ v: { dtype: "F32", shape: [3], data: view } }));
  assert.deepEqual(Array.from(dec.tensors.v!.data as Float32Array), [1, 2, 3]);
  // decoding from an unaligned view of a larger buffer also works
  const enc = encodeSafetensors({ a: { dtype: "F64", shape: [2], data: new Float64Array([1.5, -2]) } });
  const padded = new Uint8Array(enc.length + 3);
  padded.set(enc, 3);
  const dec2 = decodeSafetensors(padded.subarray(3));
  assert.deepEqual(Array.from(dec2.tensors.a!.data as Float64Array), [1.5, -2]);
});

test("names like __proto__ and numeric strings are handled as plain tensor names", () => {
  const tensors: Record<string, TensorData> = {};
  Object.defineProperty(tensors, "__proto__", {
    value: { dtype: "U8", shape: [1], data: new Uint8Array([7]) },
    enumerable: true,
  });
  tensors["10"] = { dtype: "U8", shape: [1], data: new Uint8Array([10]) };
  tensors["2"] = { dtype: "U8", shape: [1], data: new Uint8Array([2]) };
  const bytes = encodeSafetensors(tensors);
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + hlen));
  // sorted by name as strings: "10" < "2" < "__proto__"
  assert.ok(header.indexOf('"10"') < header.indexOf('"2"') && header.indexOf('"2"') < header.indexOf('"__proto__"'));
  const dec = decodeSafetensors(bytes);
  assert.deepEqual(Object.keys(dec.tensors).sort(), ["10", "2", "__proto__"]);
  assert.equal((Object.getOwnPropertyDescriptor(dec.tensors, "__proto__")!.value as TensorData).data[0], 7);
  assert.equal(Object.getPrototypeOf(dec.tensors), Object.prototype);
});

test("encoding is deterministic and independent of insertion order", () => {
  const a = allDTypes();
  const b: Record<string, TensorData> = {};
  for (const k of Object.keys(a).reverse()) b[k] = allDTypes()[k]!;
  const e1 = encodeSafetensors(a, { x: "1", y: "2" });
  const e2 = encodeSafetensors(a, { x: "1", y: "2" });
  const e3 = encodeSafetensors(b, { y: "2", x: "1" });
  assert.deepEqual(e1, e2);
  assert.deepEqual(e1, e3);
  // header length is a multiple of 8 and the padding is spaces
  const hlen = Number(new DataView(e1.buffer).getBigUint64(0, true));
  assert.equal(hlen % 8, 0);
  const header = new TextDecoder().decode(e1.subarray(8, 8 + hlen));
  assert.match(header, /^\{.*\} *$/);
});

test("a hand-built file decodes to the expected values", () => {
  // Layout deliberately not in name order: "z" first, then "a", then "m".
  const header =
    '{"z":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},' +
    '"a":{"dtype":"F32","shape":[1,2],"data_offsets":[16,24]},' +
    '"m":{"dtype":"F16","shape":[],"data_offsets":[24,26]},' +
    '"__metadata__":{"who":"hand"}}';
  const buf = new Uint8Array(26);
  const dv = new DataView(buf.buffer);
  dv.setBigInt64(0, -5n, true);
  dv.setBigInt64(8, 1234567890123n, true);
  dv.setFloat32(16, 0.5, true);
  dv.setFloat32(20, -7, true);
  dv.setUint16(24, 0x3555, true);
  const file = decodeSafetensors(handBuild(header, buf), "hand.safetensors");
  assert.deepEqual(file.metadata, { who: "hand" });
  assert.deepEqual(file.tensors.z, { dtype: "I64", shape: [2], data: new BigInt64Array([-5n, 1234567890123n]) });
  assert.deepEqual(file.tensors.a, { dtype: "F32", shape: [1, 2], data: new Float32Array([0.5, -7]) });
  assert.deepEqual(file.tensors.m, { dtype: "F16", shape: [], data: new Uint16Array([0x3555]) });
});

test("encoder output for a small case equals a hand-built buffer", () => {
  const bytes = encodeSafetensors(
    {
      b: { dtype: "I32", shape: [], data: new Int32Array([7]) },
      a: { dtype: "F32", shape: [2], data: new Float32Array([1, -2.5]) },
    },
    { k: "v" },
  );
  const header =
    '{"__metadata__":{"k":"v"},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"I32","shape":[],"data_offsets":[8,12]}}';
  const buf = new Uint8Array(12);
  const dv = new DataView(buf.buffer);
  dv.setFloat32(0, 1, true);
  dv.setFloat32(4, -2.5, true);
  dv.setInt32(8, 7, true);
  const expected = handBuild(header, buf);
  assert.equal(Buffer.from(bytes).toString("hex"), Buffer.from(expected).toString("hex"));
});

const hasPython = spawnSync("python3", ["-c", "import safetensors, numpy"], { stdio: "ignore" }).status === 0;

test(
  "cross-check against the Python reference implementation",
  { skip: hasPython ? false : "python3 with safetensors+numpy not available" },
  () => {
    const dir = tmp();
    try {
      const ours = path.join(dir, "ours.safetensors");
      const theirs = path.join(dir, "theirs.safetensors");
      const t = allDTypes();
      writeFileSync(ours, encodeSafetensors(t, { src: "ts" }));
      const script = `
import sys, json, numpy as np
from safetensors.numpy import load_file, save_file
from safetensors import safe_open
d = load_file(sys.argv[1])
with safe_open(sys.argv[1], "np") as f: meta = f.metadata()
out = {k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": [repr(x) for x in v.reshape(-1).tolist()]} for k, v in d.items()}
print(json.dumps({"meta": meta, "tensors": out}))
save_file({
  "f32": np.array([[1.5, -2.0]], dtype=np.float32),
  "i64": np.array([-3, 2**62], dtype=np.int64),
  "f16": np.array([1.0, -2.0], dtype=np.float16),
  "b": np.array([True, False]),
  "u8": np.array([255], dtype=np.uint8),
}, sys.argv[2], metadata={"src": "py"})
`;
      const res = JSON.parse(execFileSync("python3", ["-c", script, ours, theirs], { encoding: "utf8" })) as {
        meta: Record<string, string>;
        tensors: Record<string, { dtype: string; shape: number[]; values: string[] }>;
      };
      assert.deepEqual(res.meta, { src: "ts" });
      assert.equal(res.tensors.f32!.dtype, "float32");
      assert.deepEqual(res.tensors.f32!.shape, [2, 3]);
      assert.deepEqual(res.tensors.i64!.values, ["-9223372036854775808", "9223372036854775807"]);
      assert.equal(res.tensors.f16!.dtype, "float16");
      assert.deepEqual(res.tensors.f16!.values, ["1.0", "-2.0", "inf"]);
      assert.deepEqual(res.tensors.bool!.values, ["True", "False", "True"]);
      assert.deepEqual(res.tensors.scalar!.shape, []);
      assert.deepEqual(res.tensors.empty!.shape, [0, 5]);
      const back = decodeSafetensors(readFileSync(theirs), theirs);
      assert.deepEqual(back.metadata, { src: "py" });
      assert.deepEqual(back.tensors.f32, { dtype: "F32", shape: [1, 2], data: new Float32Array([1.5, -2]) });
      assert.deepEqual(back.tensors.i64, { dtype: "I64", shape: [2], data: new BigInt64Array([-3n, 2n ** 62n]) });
      assert.deepEqual(back.tensors.f16, { dtype: "F16", shape: [2], data: new Uint16Array([0x3c00, 0xc000]) });
      assert.deepEqual(back.tensors.b, { dtype: "BOOL", shape: [2], data: new Uint8Array([1, 0]) });
      assert.deepEqual(back.tensors.u8, { dtype: "U8", shape: [1], data: new Uint8Array([255]) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("encoder validation errors name the tensor", () => {
  const enc = (t: TensorData) => () => encodeSafetensors({ w: t });
  assert.throws(enc({ dtype: "F32", shape: [2, 2], data: new Float32Array(3) }), /tensor "w".*3 elements.*\[2,2\] needs 4/);
  assert.throws(enc({ dtype: "F32", shape: [2], data: new Float64Array(2) }), /tensor "w".*F32 needs a Float32Array, got Float64Array/);
  assert.throws(enc({ dtype: "I64", shape: [1], data: new Int32Array(1) }), /tensor "w".*BigInt64Array/);
  assert.throws(enc({ dtype: "BF16" as never, shape: [1], data: new Uint16Array(1) }), /tensor "w".*unsupported dtype BF16/);
  assert.throws(enc({ dtype: "U8", shape: [-1], data: new Uint8Array(0) }), /tensor "w".*shape/);
  assert.throws(enc({ dtype: "BOOL", shape: [1], data: new Uint8Array([2]) }), /tensor "w".*BOOL/);
  assert.throws(
    () => encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }),
    /reserved/,
  );
  assert.throws(() => encodeSafetensors({}, { k: 5 as unknown as string }), /metadata "k" must be a string/);
});

test("corrupted inputs give one-line errors naming the file and the problem", () => {
  const src = "bad.safetensors";
  const good = encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
  const dec = (b: Uint8Array) => () => decodeSafetensors(b, src);
  const check = (b: Uint8Array, re: RegExp) => {
    assert.throws(dec(b), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.ok(!err.message.includes("\n"), `one line: ${err.message}`);
      assert.ok(err.message.startsWith(`${src}: `), err.message);
      assert.match(err.message, re);
      return true;
    });
  };
  const t = (h: string, buf = new Uint8Array(8)) => handBuild(h, buf);

  check(new Uint8Array(5), /truncated/);
  check(good.subarray(0, good.length - 1), /tensor "w".*out of range/);
  check(good.subarray(0, 20), /header length .* exceeds/);
  check(handBuild("{}", new Uint8Array(0), { headerLen: 2n ** 63n }), /header length .* exceeds/);
  check(t('{"w": {"dtype": "F32",'), /not valid JSON/);
  check(t("[1,2]"), /not an object/);
  check(t('{"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}'), /tensor "w".*unknown or unsupported dtype "Q7"/);
  check(t('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}'), /tensor "w".*out of range/);
  check(t('{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}'), /tensor "w".*reversed/);
  check(t('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}'), /tensor "w".*span 8 bytes.*needs 12/);
  check(t('{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}'), /tensor "w".*shape/);
  check(t('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}'), /tensor "w".*data_offsets/);
  check(t('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}'), /overlap/);
  check(t('{"w":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}'), /tensor "w".*gap/);
  check(t('{"w":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}'), /trailing/);
  check(t('{"w":{"dtype":"BOOL","shape":[8],"data_offsets":[0,8]}}', new Uint8Array([0, 1, 2, 0, 0, 0, 0, 0])), /tensor "w".*BOOL/);
  check(t('{"__metadata__":{"a":1}}', new Uint8Array(0)), /__metadata__/);
  check(t('{"w":5}'), /tensor "w".*not an object/);
  // invalid UTF-8 in the header
  const badUtf8 = handBuild('{"w":1}', new Uint8Array(0));
  badUtf8[10] = 0xff;
  check(badUtf8, /UTF-8/);
  // default source name still appears
  assert.throws(() => decodeSafetensors(new Uint8Array(3)), /^Error: <safetensors bytes>: /);
});

test("readSafetensors / writeSafetensors round trip and file errors", async () => {
  const dir = tmp();
  try {
    const p = path.join(dir, "sub", "deeper", "ckpt.safetensors");
    await writeSafetensors(p, allDTypes(), { step: "3" });
    const f = await readSafetensors(p);
    assert.deepEqual(f.metadata, { step: "3" });
    assert.deepEqual(f.tensors.i64!.data, allDTypes().i64!.data);
    assert.deepEqual(readdirSync(path.dirname(p)), ["ckpt.safetensors"]);

    const missing = path.join(dir, "nope.safetensors");
    await assert.rejects(readSafetensors(missing), { message: `cannot read ${missing}: no such file` });
    await assert.rejects(readSafetensors(dir), { message: `cannot read ${dir}: is a directory` });

    // a validation failure in the encoder leaves the old file in place
    const before = readFileSync(p);
    await assert.rejects(
      writeSafetensors(p, { w: { dtype: "F32", shape: [3], data: new Float32Array(2) } }),
      /tensor "w"/,
    );
    assert.deepEqual(readFileSync(p), before);

    const corrupt = path.join(dir, "corrupt.safetensors");
    writeFileSync(corrupt, new Uint8Array(4));
    await assert.rejects(readSafetensors(corrupt), new RegExp(`^Error: ${corrupt.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: .*truncated`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("expectTensor: found, missing, wrong dtype, wrong shape", () => {
  const file = decodeSafetensors(encodeSafetensors(allDTypes()));
  assert.equal(expectTensor(file, "f32", "F32", [2, 3], "m.st"), file.tensors.f32);
  assert.equal(expectTensor(file, "scalar", "F32", [], "m.st"), file.tensors.scalar);
  assert.throws(() => expectTensor(file, "nope", "F32", [2], "m.st"), /^Error: m\.st: tensor "nope" is missing \(expected F32 \[2\]; file has /);
  assert.throws(() => expectTensor(file, "f32", "F64", [2, 3], "m.st"), /m\.st: tensor "f32" has dtype F32, expected F64/);
  assert.throws(() => expectTensor(file, "f32", "F32", [3, 2], "m.st"), /m\.st: tensor "f32" has shape \[2,3\], expected \[3,2\]/);
  assert.throws(() => expectTensor(file, "f32", "F32", [2, 3, 1], "m.st"), /has shape \[2,3\], expected \[2,3,1\]/);
  assert.throws(() => expectTensor({ tensors: {} }, "x", "U8", [1], "e.st"), /file has no tensors/);
  // inherited properties are not tensors
  assert.throws(() => expectTensor({ tensors: {} }, "toString", "U8", [1], "e.st"), /is missing/);
});

test("writeFileAtomic: writes, replaces, creates parents, leaves no temp files", async () => {
  const dir = tmp();
  try {
    const p = path.join(dir, "a", "b", "out.txt");
    await writeFileAtomic(p, "first");
    assert.equal(readFileSync(p, "utf8"), "first");
    await writeFileAtomic(p, new Uint8Array([104, 105]));
    assert.equal(readFileSync(p, "utf8"), "hi");
    writeFileAtomicSync(p, "sync ✓");
    assert.equal(readFileSync(p, "utf8"), "sync ✓");
    // concurrent writers: the result is one complete payload, no temp files remain
    const payloads = Array.from({ length: 8 }, (_, i) => String(i).repeat(100_000));
    await Promise.all(payloads.map((s) => writeFileAtomic(p, s)));
    assert.ok(payloads.includes(readFileSync(p, "utf8")));
    assert.deepEqual(readdirSync(path.dirname(p)), ["out.txt"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("writeFileAtomic: a failed write keeps the old file and removes the temp file", async () => {
  const dir = tmp();
  try {
    const p = path.join(dir, "keep.txt");
    writeFileSync(p, "old");

    // data that makes the write itself throw (after the temp file was created)
    const bad = 42 as unknown as string;
    await assert.rejects(writeFileAtomic(p, bad));
    assert.throws(() => writeFileAtomicSync(p, bad));
    assert.equal(readFileSync(p, "utf8"), "old");
    assert.deepEqual(readdirSync(dir), ["keep.txt"]);

    // the rename fails: the target is a non-empty directory
    const target = path.join(dir, "isdir");
    mkdirSync(target);
    writeFileSync(path.join(target, "inner"), "x");
    await assert.rejects(writeFileAtomic(target, "data"));
    assert.throws(() => writeFileAtomicSync(target, "data"));
    assert.deepEqual(readdirSync(dir).sort(), ["isdir", "keep.txt"]);
    assert.equal(readFileSync(path.join(target, "inner"), "utf8"), "x");

    // the parent "directory" is a regular file: nothing is created anywhere
    await assert.rejects(writeFileAtomic(path.join(p, "child.txt"), "data"));
    assert.throws(() => writeFileAtomicSync(path.join(p, "child.txt"), "data"));
    assert.equal(readFileSync(p, "utf8"), "old");
    assert.ok(!existsSync(path.join(p, "child.txt")));
    assert.deepEqual(readdirSync(dir).sort(), ["isdir", "keep.txt"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
