import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as nodePath from "node:path";
import sharp from "sharp";
import { batches, decodeImageBytes, epochOrder, indexTar, openDataset } from "../src/data/index.ts";
import type { BatchOptions, ImageBatch, ImageDataset, ImageExample } from "../src/data/index.ts";
import { CORRUPT_BYTES, patternImage, pngBytes, tmpDir, writeFileDeep, writeTar } from "./data-fixtures.ts";

let root = "";
before(async () => {
  root = await tmpDir();
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

interface Fake extends ImageDataset {
  maxInFlight: number;
}

/** An in-memory data set: example i is a 4x4 grey image with pixel p = ((7 i + p) % 11) / 10, label i % 3. */
function fake(n: number, o: { bad?: number[]; throws?: number[]; labelled?: boolean; delay?: boolean } = {}): Fake {
  let inFlight = 0;
  const ds: Fake = {
    name: "fake",
    split: "train",
    length: n,
    numClasses: o.labelled === false ? null : 3,
    classNames: null,
    maxInFlight: 0,
    async get(i: number): Promise<ImageExample | null> {
      inFlight++;
      ds.maxInFlight = Math.max(ds.maxInFlight, inFlight);
      try {
        // Resolve in scrambled order to check that batching does not depend on timing.
        if (o.delay) await new Promise((r) => setTimeout(r, (i * 7) % 5));
        else await Promise.resolve();
        if (o.throws?.includes(i)) throw new Error(`boom ${i}`);
        if (o.bad?.includes(i)) return null;
        const image = Float32Array.from({ length: 16 }, (_, p) => ((7 * i + p) % 11) / 10);
        return { image, height: 4, width: 4, channels: 1, label: o.labelled === false ? null : i % 3 };
      } finally {
        inFlight--;
      }
    },
  };
  return ds;
}

const base: BatchOptions = { batchSize: 4, imageSize: 4, channels: 1, shuffle: true, seed: 1, epoch: 0, augment: "train" };

async function collect(ds: ImageDataset, o: BatchOptions): Promise<ImageBatch[]> {
  const out: ImageBatch[] = [];
  for await (const b of batches(ds, o)) out.push(b);
  return out;
}

test("epochOrder: a permutation, fixed by (seed, epoch)", () => {
  const a = epochOrder(50, true, 3, 0);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(a, epochOrder(50, true, 3, 0));
  assert.notDeepEqual(a, epochOrder(50, true, 3, 1));
  assert.notDeepEqual(a, epochOrder(50, true, 4, 0));
  assert.deepEqual(epochOrder(5, false, 3, 9), [0, 1, 2, 3, 4]);
});

test("batches: shapes, every example once, labels, last partial batch and dropLast", async () => {
  const ds = fake(10);
  const bs = await collect(ds, base);
  assert.deepEqual(bs.map((b) => b.size), [4, 4, 2]);
  assert.equal(bs[0].images.length, 4 * 16);
  assert.equal(bs[2].images.length, 2 * 16);
  assert.deepEqual(bs.flatMap((b) => b.indices).sort((x, y) => x - y), Array.from({ length: 10 }, (_, i) => i));
  for (const b of bs) {
    assert.deepEqual([...b.labels!], b.indices.map((i) => i % 3));
    for (const v of b.images) assert.ok(v >= -1e-6 && v <= 1 + 1e-6);
  }
  const dropped = await collect(ds, { ...base, dropLast: true });
  assert.deepEqual(dropped.map((b) => b.size), [4, 4]);
  const un = await collect(fake(3, { labelled: false }), base);
  assert.equal(un[0].labels, null);
});

test("batches: deterministic given (seed, epoch), independent of timing and prefetch", async () => {
  const a = await collect(fake(21, { delay: true }), { ...base, prefetch: 7 });
  const b = await collect(fake(21), { ...base, prefetch: 1 });
  assert.deepEqual(a.map((x) => x.indices), b.map((x) => x.indices));
  assert.deepEqual(a.map((x) => [...x.images]), b.map((x) => [...x.images]));
  const c = await collect(fake(21), { ...base, epoch: 1 });
  assert.notDeepEqual(a.map((x) => x.indices), c.map((x) => x.indices));
  // Eval, no shuffle, same size: exact pixels in index order.
  const e = await collect(fake(5), { ...base, shuffle: false, augment: "eval" });
  assert.deepEqual(e[0].indices, [0, 1, 2, 3]);
  const want = Float32Array.from({ length: 16 }, (_, p) => ((7 * 2 + p) % 11) / 10);
  assert.deepEqual(e[0].images.subarray(32, 48), want);
});

test("batches: channel conversion and output size", async () => {
  const [b] = await collect(fake(2), { ...base, channels: 3, imageSize: 6, augment: "eval" });
  assert.equal(b.images.length, 2 * 6 * 6 * 3);
  for (let p = 0; p < 36; p++) {
    assert.equal(b.images[3 * p], b.images[3 * p + 1]);
    assert.equal(b.images[3 * p], b.images[3 * p + 2]);
  }
});

test("batches: unreadable examples are skipped, reported and counted; batches stay full", async () => {
  const ds = fake(12, { bad: [2, 5], throws: [7] });
  const stats = { skipped: 0 };
  const skipped: [number, string][] = [];
  const bs = await collect(ds, { ...base, shuffle: false, stats, onSkip: (i, r) => skipped.push([i, r]) });
  assert.equal(stats.skipped, 3);
  assert.deepEqual(skipped.map((s) => s[0]), [2, 5, 7]);
  assert.match(skipped[2][1], /boom 7/);
  assert.deepEqual(bs.map((b) => b.indices), [[0, 1, 3, 4], [6, 8, 9, 10], [11]]);
});

test("batches: at most `prefetch` concurrent reads", async () => {
  const ds = fake(40, { delay: true });
  await collect(ds, { ...base, prefetch: 3 });
  assert.ok(ds.maxInFlight <= 3 && ds.maxInFlight >= 2, `${ds.maxInFlight}`);
  const ds2 = fake(40, { delay: true });
  await collect(ds2, { ...base, batchSize: 8 }); // default min(2 x 8, 64) = 16
  assert.ok(ds2.maxInFlight <= 16 && ds2.maxInFlight > 3, `${ds2.maxInFlight}`);
});

test("batches over an image folder with a corrupt file: skipped and counted, deterministic on rerun", async () => {
  const dir = nodePath.join(root, "folder");
  for (let i = 0; i < 5; i++) await writeFileDeep(nodePath.join(dir, "a", `${i}.png`), await pngBytes(patternImage(9, 11, 3, i)));
  for (let i = 0; i < 4; i++) await writeFileDeep(nodePath.join(dir, "b", `${i}.png`), await pngBytes(patternImage(7, 5, 1, i)));
  await writeFileDeep(nodePath.join(dir, "b", "9-bad.png"), CORRUPT_BYTES);
  const ds = await openDataset({ kind: "folder", path: dir }, "train");
  const run = async () => {
    const stats = { skipped: 0 };
    const bs = await collect(ds, { ...base, imageSize: 8, channels: 3, batchSize: 3, seed: 5, stats });
    return { stats, bs };
  };
  const r1 = await run();
  const r2 = await run();
  assert.equal(r1.stats.skipped, 1);
  assert.deepEqual(r1.bs.map((b) => b.size), [3, 3, 3]);
  assert.deepEqual(r1.bs.map((b) => [...b.images]), r2.bs.map((b) => [...b.images]));
  assert.deepEqual(r1.bs.map((b) => [...b.labels!]), r2.bs.map((b) => [...b.labels!]));
});

test("batches over photos: fresh crops per epoch", async () => {
  const dir = nodePath.join(root, "photos");
  await writeFileDeep(nodePath.join(dir, "p.png"), await pngBytes(patternImage(40, 50, 3, 1)));
  const ds = await openDataset({ kind: "photos", path: dir, crop_size: 12, crops_per_epoch: 6 }, "train");
  const o: BatchOptions = { ...base, imageSize: 12, channels: 3, batchSize: 6, augment: "eval", shuffle: false };
  const [e0] = await collect(ds, o);
  const [e0b] = await collect(ds, o);
  const [e1] = await collect(ds, { ...o, epoch: 1 });
  assert.equal(e0.labels, null);
  assert.deepEqual(e0.images, e0b.images);
  assert.notDeepEqual(e0.images, e1.images);
});

test("decode: grey stays grey, alpha composited onto black, 16-bit to 8-bit", async () => {
  const ga = await sharp(Buffer.from([10, 255, 200, 0, 100, 128, 60, 51]), { raw: { width: 2, height: 2, channels: 2 } })
    .toColourspace("b-w")
    .png()
    .toBuffer();
  const d1 = await decodeImageBytes(ga);
  assert.deepEqual(d1 && { c: d1.channels, v: [...d1.data] }, { c: 1, v: [10, 0, 50, 12] });
  const rgba = await sharp(Buffer.from([255, 100, 0, 255, 255, 100, 0, 0]), { raw: { width: 2, height: 1, channels: 4 } }).png().toBuffer();
  const d2 = await decodeImageBytes(rgba);
  assert.deepEqual(d2 && { c: d2.channels, v: [...d2.data] }, { c: 3, v: [255, 100, 0, 0, 0, 0] });
  const g16 = await sharp(Buffer.alloc(6, 77), { raw: { width: 3, height: 2, channels: 1 } }).toColourspace("grey16").png().toBuffer();
  const d3 = await decodeImageBytes(g16);
  assert.deepEqual(d3 && { c: d3.channels, v: [...d3.data] }, { c: 1, v: [77, 77, 77, 77, 77, 77] });
  assert.equal(await decodeImageBytes(CORRUPT_BYTES), null);
  assert.equal(await decodeImageBytes(nodePath.join(root, "missing.png")), null);
});

test("tar index: offsets of members written by tar-stream, long names", async () => {
  const file = nodePath.join(root, "t.tar");
  const long = `${"d".repeat(120)}/${"f".repeat(90)}.bin`;
  const members = [
    { name: "a.txt", bytes: "hello" },
    { name: long, bytes: new Uint8Array(1000).fill(7) },
    { name: "empty.cls", bytes: "" },
  ];
  await writeTar(file, members);
  const idx = indexTar(file);
  assert.deepEqual(idx.map((m) => [m.name, m.size]), [["a.txt", 5], [long, 1000], ["empty.cls", 0]]);
  const buf = await fs.readFile(file);
  assert.equal(buf.subarray(idx[0].offset, idx[0].offset + 5).toString(), "hello");
  assert.ok(buf.subarray(idx[1].offset, idx[1].offset + 1000).every((b) => b === 7));
});
