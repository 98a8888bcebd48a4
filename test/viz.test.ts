import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import sharp from "sharp";
import { encodePng, imageGrid, writePng } from "../src/viz/png.ts";
import {
  composeReconstruction,
  maskImage,
  reconstructionFigure,
  writeReconstructionPng,
} from "../src/viz/reconstructions.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "cf-viz-"));

async function decode(png: Buffer): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  // sharp decodes to sRGB by default; keep a greyscale PNG as one channel.
  const grey = (await sharp(png).metadata()).channels === 1;
  const img = grey ? sharp(png).toColourspace("b-w") : sharp(png);
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

const closeTo = (actual: ArrayLike<number>, expected: number[], tol = 1e-6): void => {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
};

test("encodePng round trip: RGB, clamping and rounding", async () => {
  // 3x2 RGB
  const px = new Float32Array([
    0, 0.5, 1, /**/ 0.2, 0.4, 0.6, /**/ -0.5, 1.5, Number.NaN,
    1 / 255, 0.999, 0.0019, /**/ 0.25, 0.75, 0.1, /**/ 0.3, 0.3, 0.3,
  ]);
  const png = await encodePng(px, 3, 2, 3);
  assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
  assert.equal(png[25], 2, "PNG colour type 2 (RGB)");
  const d = await decode(png);
  assert.deepEqual([d.width, d.height, d.channels], [3, 2, 3]);
  assert.deepEqual([...d.data], [0, 128, 255, 51, 102, 153, 0, 255, 0, 1, 255, 0, 64, 191, 26, 77, 77, 77]);
});

test("encodePng writes grey as a 1-channel PNG; writePng is atomic", async () => {
  const px = new Float32Array([0, 0.25, 0.5, 1]);
  const file = path.join(tmp, "grey", "g.png");
  await writePng(file, px, 2, 2, 1);
  const meta = await sharp(readFileSync(file)).metadata();
  assert.equal(meta.channels, 1);
  assert.equal(readFileSync(file)[25], 0, "PNG colour type 0 (greyscale)");
  assert.equal(meta.format, "png");
  const d = await decode(readFileSync(file));
  assert.deepEqual([...d.data], [0, 64, 128, 255]);
  assert.deepEqual(readdirSync(path.dirname(file)), ["g.png"], "no temp files left");
  await assert.rejects(encodePng(px, 2, 2, 2), RangeError);
  await assert.rejects(encodePng(px, 3, 2, 1), RangeError);
});

test("imageGrid places cells by hand-computed offsets", () => {
  const a = new Float32Array([0.1, 0.2, 0.3, 0.4]); // 2x2 grey
  const b = new Float32Array([0.5, 0.6, 0.7, 0.8]);
  const c = new Float32Array([0.0, 0.0, 0.0, 1.0]);
  const g = imageGrid([a, b, c], 2, 2, 1, 2, { pad: 1, background: 0.9 });
  // width = 1 + 2*(2+1) = 7, height = 1 + 2*(2+1) = 7
  assert.equal(g.width, 7);
  assert.equal(g.height, 7);
  const B = 0.9;
  // prettier-ignore
  const expected = [
    B, B,   B,   B, B,   B,   B,
    B, 0.1, 0.2, B, 0.5, 0.6, B,
    B, 0.3, 0.4, B, 0.7, 0.8, B,
    B, B,   B,   B, B,   B,   B,
    B, 0.0, 0.0, B, B,   B,   B,
    B, 0.0, 1.0, B, B,   B,   B,
    B, B,   B,   B, B,   B,   B,
  ];
  closeTo(g.pixels, expected);
});

test("imageGrid nearest-neighbour upscaling with RGB and no padding", () => {
  // 2x1 RGB image: red, blue; scale 2, one column -> 4x2
  const img = new Float32Array([1, 0, 0, 0, 0, 1]);
  const g = imageGrid([img, img], 2, 1, 3, 1, { pad: 0, scale: 2 });
  assert.equal(g.width, 4);
  assert.equal(g.height, 4);
  const R = [1, 0, 0];
  const Bl = [0, 0, 1];
  const row = [...R, ...R, ...Bl, ...Bl];
  closeTo(g.pixels, [...row, ...row, ...row, ...row]);
  assert.throws(() => imageGrid([img], 2, 1, 3, 1, { scale: 1.5 }), RangeError);
  assert.throws(() => imageGrid([], 2, 1, 3, 1), RangeError);
  assert.throws(() => imageGrid([new Float32Array(5)], 2, 1, 3, 1), RangeError);
});

// Hand-made 4x4 grey image, patch 2 -> 2x2 patch grid.
// prettier-ignore
const IMG = new Float32Array([
  0.1, 0.2, /**/ 0.2, 0.4,
  0.3, 0.4, /**/ 0.6, 0.8,
  0.0, 1.0, /**/ 0.5, 0.5,
  1.0, 0.0, /**/ 0.5, 0.5,
]);
const MASK = [false, true, true, false]; // patches (0,1) and (1,0) masked

test("maskImage fills masked patches with mid-grey", () => {
  const m = maskImage(IMG, 4, 4, 1, 2, MASK);
  // prettier-ignore
  closeTo(m, [
    0.1, 0.2, 0.5, 0.5,
    0.3, 0.4, 0.5, 0.5,
    0.5, 0.5, 0.5, 0.5,
    0.5, 0.5, 0.5, 0.5,
  ]);
  closeTo(maskImage(IMG, 4, 4, 1, 2, [true, false, false, false], 0), [0, 0, 0.2, 0.4, 0, 0, 0.6, 0.8, ...IMG.slice(8)]);
  assert.throws(() => maskImage(IMG, 4, 4, 1, 3, MASK), RangeError);
  assert.throws(() => maskImage(IMG, 4, 4, 1, 2, [true]), RangeError);
});

test("composeReconstruction copies visible patches and takes masked ones from the prediction", () => {
  // predictions for all 4 patches, [P=4, 2*2*1]; visible ones must be ignored
  // prettier-ignore
  const pred = new Float32Array([
    9, 9, 9, 9,
    0.11, 0.12, 0.13, 0.14, // patch (0,1): image[0,2], image[0,3], image[1,2], image[1,3]
    -0.2, 0.3, 1.7, 0.4,    // patch (1,0): clamped to [0, 1]
    9, 9, 9, 9,
  ]);
  const r = composeReconstruction(IMG, pred, MASK, 4, 4, 1, 2, false);
  // prettier-ignore
  closeTo(r, [
    0.1, 0.2, 0.11, 0.12,
    0.3, 0.4, 0.13, 0.14,
    0.0, 0.3, 0.5,  0.5,
    1.0, 0.4, 0.5,  0.5,
  ]);
});

test("composeReconstruction denormalises with the original patch's mean and std", () => {
  // patch (0,1) = [0.2, 0.4, 0.6, 0.8]: mean 0.5, population var (0.09+0.01+0.01+0.09)/4 = 0.05
  // patch (1,0) = [0, 1, 1, 0]: mean 0.5, var 0.25
  // prettier-ignore
  const pred = new Float32Array([
    0, 0, 0, 0,
    -1, 0, 1, 2,
    -2, 0.5, 1, 0,
    0, 0, 0, 0,
  ]);
  const s1 = Math.sqrt(0.05 + 1e-6);
  const s2 = Math.sqrt(0.25 + 1e-6);
  const r = composeReconstruction(IMG, pred, MASK, 4, 4, 1, 2, true);
  // prettier-ignore
  closeTo(r, [
    0.1, 0.2, 0.5 - s1, 0.5,
    0.3, 0.4, 0.5 + s1, Math.min(1, 0.5 + 2 * s1),
    0.0 /* 0.5 - 2*s2 < 0 */, 0.5 + 0.5 * s2, 0.5, 0.5,
    1.0 /* 0.5 + s2 > 1 */, 0.5, 0.5, 0.5,
  ]);
  assert.ok(Math.abs(r[7] - (0.5 + 2 * s1)) < 1e-6 && r[7] < 1); // 0.947..., not clamped
  // Unbiased variance (torch.var convention): 0.2/3 for patch (0,1).
  const ru = composeReconstruction(IMG, pred, MASK, 4, 4, 1, 2, true, { varianceDdof: 1 });
  closeTo([ru[2], ru[6]], [0.5 - Math.sqrt(0.2 / 3 + 1e-6), 0.5 + Math.sqrt(0.2 / 3 + 1e-6)]);
});

test("composeReconstruction patch-pixel layout with channels", () => {
  // 4 wide, 2 high RGB, patch 2: patch 1 covers x = 2..3. Prediction value at q = (r*2 + c)*3 + ch.
  const orig = new Float32Array(4 * 2 * 3).fill(0.9);
  const pred = new Float32Array(2 * 12);
  for (let q = 0; q < 12; q++) pred[12 + q] = 0.01 * q + 0.1;
  const r = composeReconstruction(orig, pred, [false, true], 4, 2, 3, 2, false);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 4; x++) {
      for (let ch = 0; ch < 3; ch++) {
        const want = x < 2 ? 0.9 : 0.01 * ((y * 2 + (x - 2)) * 3 + ch) + 0.1;
        assert.ok(Math.abs(r[(y * 4 + x) * 3 + ch] - want) < 1e-6, `y=${y} x=${x} ch=${ch}`);
      }
    }
  }
});

test("reconstruction figure: rows of original | masked | reconstruction", async () => {
  const masked = maskImage(IMG, 4, 4, 1, 2, MASK);
  const recon = composeReconstruction(IMG, new Float32Array(16).fill(0.25), MASK, 4, 4, 1, 2, false);
  const rows = [
    { original: IMG, masked, reconstruction: recon },
    { original: recon, masked: IMG, reconstruction: masked },
  ];
  const fig = reconstructionFigure(rows, 4, 4, 1, { scale: 2 });
  // cells 8x8, pad 2: width = 2 + 3*(8+2) = 32, height = 2 + 2*(8+2) = 22
  assert.equal(fig.width, 32);
  assert.equal(fig.height, 22);
  const at = (x: number, y: number): number => fig.pixels[y * fig.width + x];
  assert.equal(at(0, 0), 1); // white background
  // row 0: original at x=2, masked at x=12, recon at x=22 (scale 2: image pixel (px, py) -> 2px, 2py)
  assert.ok(Math.abs(at(2 + 2, 2) - 0.2) < 1e-6); // original[0,1]
  assert.equal(at(12 + 4, 2), 0.5); // masked patch (0,1)
  assert.equal(at(22 + 4, 2 + 1), 0.25); // reconstruction, masked patch (0,1)
  assert.ok(Math.abs(at(22 + 1, 2 + 1) - 0.1) < 1e-6); // reconstruction, visible patch (0,0)
  // row 1 starts at y = 12
  assert.equal(at(2, 12), recon[0]);
  assert.ok(Math.abs(at(12, 12) - 0.1) < 1e-6);

  const file = path.join(tmp, "figs", "recon.png");
  await writeReconstructionPng(file, rows, 4, 4, 1, { scale: 2 });
  const d = await decode(readFileSync(file));
  assert.deepEqual([d.width, d.height, d.channels], [32, 22, 1]);
  assert.equal(d.data[2 * 32 + 12 + 4], 128);
});
