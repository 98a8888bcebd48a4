import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Rng,
  centerCrop,
  crop,
  evalTransform,
  flipHorizontal,
  mixSeed,
  randomResizedCrop,
  resize,
  resizeShorterSide,
  resizedCrop,
  sampleResizedCropBox,
  toGrey,
  toRGB,
  trainTransform,
} from "../src/data/index.ts";
import type { Pixels } from "../src/data/index.ts";

function img(height: number, width: number, channels: 1 | 3, values: number[]): Pixels {
  assert.equal(values.length, height * width * channels);
  return { image: Float32Array.from(values), height, width, channels };
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6): void {
  assert.equal(a.length, b.length, "length");
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `index ${i}: ${a[i]} vs ${b[i]}`);
}

test("rng: same seed gives the same stream; different seeds differ", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 100 }, () => a.next());
  const ys = Array.from({ length: 100 }, () => b.next());
  assert.deepEqual(xs, ys);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const c = new Rng(43);
  assert.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => c.next()));
  // Golden values pin the generator across releases (mulberry32).
  const g = new Rng(1);
  assert.equal(Math.floor(g.next() * 2 ** 32), 2693262067);
  assert.equal(mixSeed(1, 2, 3), mixSeed(1, 2, 3));
  assert.notEqual(mixSeed(1, 2, 3), mixSeed(1, 3, 2));
  const mean = Array.from({ length: 10000 }, () => a.next()).reduce((s, v) => s + v, 0) / 10000;
  assert.ok(Math.abs(mean - 0.5) < 0.02);
});

test("flipHorizontal of a known 2x3 image", () => {
  const im = img(2, 3, 1, [1, 2, 3, 4, 5, 6]);
  const f = flipHorizontal(im);
  close(f.image, [3, 2, 1, 6, 5, 4]);
  const rgb = img(1, 2, 3, [1, 2, 3, 4, 5, 6]);
  close(flipHorizontal(rgb).image, [4, 5, 6, 1, 2, 3]);
});

test("centerCrop and crop of a known image", () => {
  // 4x5 grey image with value 10*y + x.
  const v: number[] = [];
  for (let y = 0; y < 4; y++) for (let x = 0; x < 5; x++) v.push(10 * y + x);
  const im = img(4, 5, 1, v);
  const c = centerCrop(im, 2, 3);
  assert.equal(c.height, 2);
  assert.equal(c.width, 3);
  close(c.image, [11, 12, 13, 21, 22, 23]);
  close(crop(im, { top: 3, left: 3, height: 2, width: 3 }).image, [33, 34, 0, 0, 0, 0]);
});

test("resize: identity at the same size, bilinear (half-pixel) when enlarging", () => {
  const im = img(1, 2, 1, [0, 1]);
  close(resize(im, 1, 2).image, [0, 1]);
  close(resize(im, 1, 4).image, [0, 0.25, 0.75, 1]); // = torch bilinear, align_corners=False
  const sq = img(2, 2, 1, [0, 1, 2, 3]);
  close(resize(sq, 4, 4).image, [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
});

test("resize: shrinking averages (antialias), constants stay constant", () => {
  const v = Array.from({ length: 8 * 8 * 3 }, () => 0.4);
  close(resize(img(8, 8, 3, v), 3, 5).image, Array.from({ length: 3 * 5 * 3 }, () => 0.4), 1e-6);
  // 2x shrink of a 1x4 ramp: kernel weights (.75, .75, .25) normalised.
  close(resize(img(1, 4, 1, [0, 1, 2, 3]), 1, 2).image, [1.25 / 1.75, 4 / 1.75], 1e-6);
  // A checkerboard shrunk 4x is flat grey, not aliased.
  const cb: number[] = [];
  for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) cb.push((x + y) % 2);
  const r = resize(img(16, 16, 1, cb), 4, 4);
  for (const x of r.image) assert.ok(Math.abs(x - 0.5) < 0.1, `${x}`);
});

test("resizedCrop with scale 1 and ratio 1 of a square image equals resize", () => {
  const v = Array.from({ length: 6 * 6 * 3 }, (_, i) => ((i * 7) % 13) / 13);
  const im = img(6, 6, 3, v);
  const rng = new Rng(5);
  const box = sampleResizedCropBox(6, 6, rng, [1, 1], [1, 1]);
  assert.deepEqual(box, { top: 0, left: 0, height: 6, width: 6 });
  const a = randomResizedCrop(im, 4, 4, new Rng(9), [1, 1], [1, 1]);
  close(a.image, resize(im, 4, 4).image);
  close(resizedCrop(im, { top: 1, left: 2, height: 3, width: 3 }, 3, 3).image, crop(im, { top: 1, left: 2, height: 3, width: 3 }).image);
});

test("sampleResizedCropBox stays inside and follows the scale/ratio ranges", () => {
  const rng = new Rng(123);
  for (let i = 0; i < 500; i++) {
    const H = 20 + (i % 30);
    const W = 15 + ((i * 7) % 40);
    const b = sampleResizedCropBox(H, W, rng);
    assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= H && b.left + b.width <= W, JSON.stringify(b));
    assert.ok(b.height > 0 && b.width > 0);
  }
  // On a big square image the first try nearly always succeeds: check the area fraction.
  for (let i = 0; i < 200; i++) {
    const b = sampleResizedCropBox(1000, 1000, rng);
    const frac = (b.height * b.width) / 1e6;
    assert.ok(frac > 0.34 && frac < 1.01, `${frac}`);
    const ratio = b.width / b.height;
    assert.ok(ratio > 0.74 && ratio < 1.35, `${ratio}`);
  }
});

test("grey <-> RGB conversion (BT.601 luma)", () => {
  const rgb = img(1, 2, 3, [1, 0, 0, 0.2, 0.4, 0.6]);
  close(toGrey(rgb).image, [0.299, 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6], 1e-6);
  const g = img(1, 2, 1, [0.25, 0.5]);
  const r = toRGB(g);
  assert.equal(r.channels, 3);
  close(r.image, [0.25, 0.25, 0.25, 0.5, 0.5, 0.5]);
  close(toGrey(r).image, [0.25, 0.5], 1e-6);
});

test("evalTransform: resize shorter side then centre crop", () => {
  const v: number[] = [];
  for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) v.push(x / 7);
  const im = img(4, 8, 1, v);
  const r = resizeShorterSide(im, 2);
  assert.equal(r.height, 2);
  assert.equal(r.width, 4);
  const e = evalTransform(im, 2, 3);
  assert.equal(e.height, 2);
  assert.equal(e.width, 2);
  assert.equal(e.channels, 3);
  close(e.image, centerCrop(toRGB(r), 2, 2).image, 1e-6);
  // Same size in = out.
  const sq = img(3, 3, 1, [1, 2, 3, 4, 5, 6, 7, 8, 9].map((x) => x / 9));
  close(evalTransform(sq, 3, 1).image, sq.image);
});

test("trainTransform is deterministic for a seed and stays in [0, 1]", () => {
  const v = Array.from({ length: 10 * 12 * 3 }, (_, i) => ((i * 31) % 17) / 16);
  const im = img(10, 12, 3, v);
  const a = trainTransform(im, 8, 1, new Rng(7));
  const b = trainTransform(im, 8, 1, new Rng(7));
  assert.deepEqual(a.image, b.image);
  assert.equal(a.image.length, 64);
  for (const x of a.image) assert.ok(x >= -1e-6 && x <= 1 + 1e-6);
  const c = trainTransform(im, 8, 1, new Rng(8));
  assert.notDeepEqual(a.image, c.image);
  // flipProbability 1 with full-image crop = flipped resize.
  const f = trainTransform(im, 10, 3, new Rng(1), { scale: [1, 1], ratio: [1.2, 1.2], flipProbability: 1 });
  close(f.image, flipHorizontal(resize(im, 10, 10)).image, 1e-6);
});
