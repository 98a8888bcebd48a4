/**
 * The vision front end and objectives against naive loops and hand values:
 * patchify/unpatchify, the MIM loss, masks, cross-entropy, layout errors,
 * visionEncode (input area placement, injection, mask token) against the
 * naive sheet, and the classification head.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np, tree } from "../src/engine/jax.ts";
import { buildGeometry } from "../src/geometry/index.ts";
import { resolveSheetConfig, type SheetConfig } from "../src/model/config.ts";
import { patchify, unpatchify } from "../src/model/patches.ts";
import { classify, initVision, type VisionConfig, type VisionParams, visionEncode, visionLayout } from "../src/model/vision.ts";
import { correctCount, crossEntropy } from "../src/objectives/classification.ts";
import { maskedMse, normalizePatches, randomPatchMask } from "../src/objectives/mim.ts";
import { Rng } from "../src/engine/rng.ts";
import { visionConfigSchema } from "../src/model/vision-config.ts";
import { type Mat, type NaiveSheet, type Nested, naiveStep, nest, seededValues } from "./naive-sheet.ts";
import { assertClose, read } from "./assertions.ts";

before(async () => {
  await initEngine();
});


function arr(values: ArrayLike<number>, shape: number[]): np.Array {
  return np.array(new Float32Array(Array.from(values))).reshape(shape);
}

function vision(overrides: Partial<VisionConfig>): VisionConfig {
  return visionConfigSchema.parse(overrides) as VisionConfig;
}

describe("patches", () => {
  const B = 2;
  const H = 4;
  const W = 6;
  const C = 3;
  const p = 2;
  const values = Array.from(Float32Array.from(seededValues(3, B * H * W * C)));
  const at = (b: number, y: number, x: number, c: number) => values[((b * H + y) * W + x) * C + c];

  test("patchify matches a naive index loop", async () => {
    const out = patchify(arr(values, [B, H, W, C]), p);
    const gh = H / p;
    const gw = W / p;
    assert.deepEqual(out.shape, [B, gh * gw, p * p * C]);
    const expected = new Array(B * gh * gw * p * p * C).fill(NaN);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < gh; i++) {
        for (let j = 0; j < gw; j++) {
          for (let r = 0; r < p; r++) {
            for (let c = 0; c < p; c++) {
              for (let ch = 0; ch < C; ch++) {
                const patch = i * gw + j;
                expected[(b * gh * gw + patch) * p * p * C + (r * p + c) * C + ch] = at(b, i * p + r, j * p + c, ch);
              }
            }
          }
        }
      }
    }
    assertClose(await read(out), expected, 0, "patches");
  });

  test("unpatchify inverts patchify", async () => {
    const back = unpatchify(patchify(arr(values, [B, H, W, C]), p), p, H / p, W / p, C);
    assert.deepEqual(back.shape, [B, H, W, C]);
    assertClose(await read(back), Float32Array.from(values), 0, "round trip");
  });
});

describe("MIM objective", () => {
  test("predicting zero scores var/(var+1e-6), about 1.0", async () => {
    const [B, P, K] = [3, 5, 16];
    const target = normalizePatches(arr(seededValues(11, B * P * K), [B, P, K]));
    const rng = new Rng(1);
    const mask = arr(randomPatchMask(B, P, 0.6, () => rng.next()), [B, P]);
    const loss = (await read(maskedMse(np.zeros([B, P, K]), target, mask)))[0];
    assert.ok(Math.abs(loss - 1) < 1e-4, `loss ${loss}`);
  });

  test("normalizePatches by hand", async () => {
    // patch [0, 2]: mean 1, variance 1; patch [3, 3]: variance 0 -> zeros
    const out = await read(normalizePatches(arr([0, 2, 3, 3], [1, 2, 2])));
    const s = 1 / Math.sqrt(1 + 1e-6);
    assertClose(out, [-s, s, 0, 0], 1e-6, "normalized");
  });

  test("maskedMse by hand: 1 image, 2 patches, 2 pixels", async () => {
    const target = [1, -1, -1, 1];
    const pred = [0, 0, 1, 1];
    // per patch: ((0-1)^2 + (0+1)^2)/2 = 1; ((1+1)^2 + 0)/2 = 2
    const both = (await read(maskedMse(arr(pred, [1, 2, 2]), arr(target, [1, 2, 2]), arr([1, 1], [1, 2]))))[0];
    assert.ok(Math.abs(both - 1.5) < 1e-6, `both masked: ${both}`);
    const second = (await read(maskedMse(arr(pred, [1, 2, 2]), arr(target, [1, 2, 2]), arr([0, 1], [1, 2]))))[0];
    assert.ok(Math.abs(second - 2) < 1e-6, `second masked: ${second}`);
    const first = (await read(maskedMse(arr(pred, [1, 2, 2]), arr(target, [1, 2, 2]), arr([1, 0], [1, 2]))))[0];
    assert.ok(Math.abs(first - 1) < 1e-6, `first masked: ${first}`);
  });

  test("only masked patches count", async () => {
    const [B, P, K] = [2, 4, 3];
    const target = seededValues(21, B * P * K);
    const pred = seededValues(22, B * P * K);
    const maskValues = [1, 0, 1, 0, 0, 1, 1, 0];
    const changed = pred.slice();
    // change every visible patch's prediction
    for (let b = 0; b < B; b++) {
      for (let q = 0; q < P; q++) if (maskValues[b * P + q] === 0) for (let k = 0; k < K; k++) changed[(b * P + q) * K + k] += 5 + k;
    }
    const l1 = (await read(maskedMse(arr(pred, [B, P, K]), arr(target, [B, P, K]), arr(maskValues, [B, P]))))[0];
    const l2 = (await read(maskedMse(arr(changed, [B, P, K]), arr(target, [B, P, K]), arr(maskValues, [B, P]))))[0];
    assert.equal(l1, l2);
    // naive value
    let s = 0;
    let n = 0;
    for (let b = 0; b < B; b++) {
      for (let q = 0; q < P; q++) {
        if (!maskValues[b * P + q]) continue;
        let e = 0;
        for (let k = 0; k < K; k++) e += (pred[(b * P + q) * K + k] - target[(b * P + q) * K + k]) ** 2;
        s += e / K;
        n++;
      }
    }
    assert.ok(Math.abs(l1 - s / n) < 1e-5, `${l1} vs ${s / n}`);
  });

  test("randomPatchMask: exactly round(ratio * P) per image, deterministic", () => {
    for (const [P, ratio] of [[49, 0.75], [4, 0.5], [10, 0.33], [16, 0.9]] as const) {
      const B = 7;
      const a = new Rng(5);
      const m = randomPatchMask(B, P, ratio, () => a.next());
      assert.equal(m.length, B * P);
      for (let b = 0; b < B; b++) {
        const row: number[] = Array.from(m.subarray(b * P, (b + 1) * P));
        assert.ok(row.every((v: number) => v === 0 || v === 1));
        assert.equal(row.reduce((s: number, v: number) => s + v, 0), Math.round(ratio * P), `P=${P} ratio=${ratio} image ${b}`);
      }
      const c = new Rng(5);
      assert.deepEqual(randomPatchMask(B, P, ratio, () => c.next()), m);
    }
    // different images get different masks (49 patches: a repeat is vanishingly unlikely)
    const r = new Rng(9);
    const m = randomPatchMask(2, 49, 0.75, () => r.next());
    assert.notDeepEqual(Array.from(m.subarray(0, 49)), Array.from(m.subarray(49)));
  });
});

describe("classification objective", () => {
  test("crossEntropy by hand", async () => {
    const logits = [1, 2, 3, 0, 0, 0];
    const labels = [0, 0, 1, 1, 0, 0];
    // row 0: -(3 - logsumexp(1,2,3)); row 1: log 3
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    const expected = (lse - 3 + Math.log(3)) / 2;
    const ce = (await read(crossEntropy(arr(logits, [2, 3]), arr(labels, [2, 3]))))[0];
    assert.ok(Math.abs(ce - expected) < 1e-6, `${ce} vs ${expected}`);
    assert.ok(Math.abs(expected - 0.7531091) < 1e-6);
  });

  test("correctCount by hand", async () => {
    const logits = [1, 2, 3, 0, 5, 1, 2, 1, 0, -3, -1, -2];
    // labels: 2 (correct), 0 (wrong), 0 (correct), 1 (correct: -1 is the max)
    const labels = [0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0];
    const n = (await read(correctCount(arr(logits, [4, 3]), arr(labels, [4, 3]))))[0];
    assert.equal(n, 3);
  });
});

describe("visionLayout", () => {
  test("image_size must be a multiple of patch_size", () => {
    const g = buildGeometry({ kind: "stacked", widths: [7, 7] });
    assert.throws(() => visionLayout(vision({ image_size: 30, patch_size: 4 }), g), /image_size 30 is not a multiple of vision\.patch_size 4/);
  });

  test("input area grid mismatch names the area and the fix", () => {
    const g = buildGeometry({ kind: "stacked", widths: [8, 8] });
    assert.throws(
      () => visionLayout(vision({ image_size: 28, patch_size: 4 }), g),
      (e: Error) => /input area "area0"/.test(e.message) && /8x8/.test(e.message) && /7x7/.test(e.message) && /change the geometry, image_size or patch_size/.test(e.message),
    );
  });

  test("output area must match for MIM, not for classification", () => {
    const g = buildGeometry({ kind: "stacked", widths: [7, 5] });
    assert.throws(() => visionLayout(vision({ image_size: 28, patch_size: 4, task: "mim" }), g), /output area "area1"/);
    const l = visionLayout(vision({ image_size: 28, patch_size: 4, task: "classify" }), g);
    assert.equal(l.outputArea.name, "area1");
    assert.equal(l.numPatches, 49);
    assert.equal(l.patchDim, 16);
  });

  test("named areas", () => {
    const g = buildGeometry({ kind: "stacked", widths: [2, 2, 2] });
    const l = visionLayout(vision({ image_size: 4, patch_size: 2, channels: 3, input_area: "area1", output_area: "area0" }), g);
    assert.equal(l.inputArea.start, 4);
    assert.equal(l.outputArea.start, 0);
    assert.equal(l.patchDim, 12);
    assert.throws(() => visionLayout(vision({ image_size: 4, patch_size: 2, input_area: "nope" }), g), /no area named "nope"/);
  });
});

// ---------------------------------------------------------------------------
// visionEncode against the naive sheet

async function sheetToNaive(p: VisionParams["sheet"], c: SheetConfig): Promise<NaiveSheet> {
  const g = async <T extends Nested>(a: np.Array) => nest<T>(await a.ref.data(), [...a.shape]);
  return {
    n: c.num_columns,
    d: c.dim,
    qk: c.qk_dim,
    mlp: c.mlp_dim,
    norm1: { weight: await g(p.norm1.weight), bias: await g(p.norm1.bias) },
    q: { weight: await g(p.attn.q.weight), bias: await g(p.attn.q.bias) },
    k: { weight: await g(p.attn.k.weight) },
    attnBias: await g(p.attn.attn_bias!),
    norm2: { weight: await g(p.norm2.weight), bias: await g(p.norm2.bias) },
    fc1: { weight: await g(p.mlp.fc1.weight), bias: await g(p.mlp.fc1.bias) },
    fc2: { weight: await g(p.mlp.fc2.weight) },
  };
}

describe("visionEncode against the naive sheet", () => {
  const { config: sheet, geometry } = resolveSheetConfig({
    geometry: { kind: "stacked", widths: [2, 2] },
    dim: 4,
    qk_dim: 2,
    mlp_dim: 5,
    depth: 3,
  });
  const B = 2;
  const S = 4; // image side
  const P = 4; // 2x2 patches of 2 px
  const K = 4; // 2*2*1
  const D = sheet.dim;
  const N = sheet.num_columns;
  const images = seededValues(31, B * S * S).map((v) => (v + 1) / 2);
  const pix = (b: number, y: number, x: number) => images[(b * S + y) * S + x];

  /** Naive x0 input-area embeddings [B][P][D] (mask: 1 = masked -> mask token). */
  function naiveEmbed(w: Mat, bias: number[], maskToken: number[], mask: number[] | null): Mat[] {
    const out: Mat[] = [];
    for (let b = 0; b < B; b++) {
      const rows: Mat = [];
      for (let i = 0; i < 2; i++) {
        for (let j = 0; j < 2; j++) {
          const patchIndex = i * 2 + j;
          const patch: number[] = [];
          for (let r = 0; r < 2; r++) for (let c = 0; c < 2; c++) patch.push(pix(b, i * 2 + r, j * 2 + c));
          if (mask && mask[b * P + patchIndex] === 1) rows.push(maskToken.slice());
          else rows.push(w.map((row, o) => row.reduce((s, wv, k) => s + wv * patch[k], 0) + bias[o]));
        }
      }
      out.push(rows);
    }
    return out;
  }

  /** Naive recurrent run: drive in columns 0..3, zeros in 4..7; returns states of columns 4..7 flattened. */
  function naiveRun(naive: NaiveSheet, embed: Mat[], inject: "first" | "every"): number[] {
    const out: number[] = [];
    for (let b = 0; b < B; b++) {
      const drive: Mat = Array.from({ length: N }, (_, n) => (n < 4 ? embed[b][n].slice() : new Array(D).fill(0)));
      let x: Mat = drive.map((r) => r.slice());
      for (let t = 0; t < sheet.depth; t++) {
        if (t > 0 && inject === "every") x = x.map((r, n) => r.map((v, c) => v + drive[n][c]));
        x = naiveStep(naive, x, sheet.attn_scale, sheet.skip_attn, sheet.norm_eps).x;
      }
      for (let n = 4; n < 8; n++) out.push(...x[n]);
    }
    return out;
  }

  async function setup(v: VisionConfig) {
    const layout = visionLayout(v, geometry);
    const params = initVision(sheet, v, geometry, 3);
    // make the bias non-zero so that it is tested
    params.patch_embed.bias.dispose();
    params.patch_embed.bias = arr(seededValues(41, D).map((x) => 0.3 * x), [D]);
    const naive = await sheetToNaive(params.sheet, sheet);
    const w = nest(await params.patch_embed.weight.ref.data(), [D, K]) as Mat;
    const bias: number[] = Array.from(await params.patch_embed.bias.ref.data());
    const maskToken: number[] = Array.from(await params.mask_token.ref.data());
    return { layout, params, naive, w, bias, maskToken };
  }

  function encode(params: VisionParams, mask: np.Array | null, v: VisionConfig, layout: ReturnType<typeof visionLayout>) {
    const { decoder, head, ...encoder } = params;
    tree.dispose([decoder, head]);
    return visionEncode(encoder, arr(images, [B, S, S, 1]), mask, sheet, v, layout);
  }

  for (const inject of ["first", "every"] as const) {
    test(`input area placement, inject=${inject}`, async () => {
      const v = vision({ image_size: 4, patch_size: 2, task: "mim", inject });
      const { layout, params, naive, w, bias, maskToken } = await setup(v);
      assert.equal(layout.inputArea.start, 0);
      assert.equal(layout.outputArea.start, 4);
      const { out, attn, patches } = encode(params, null, v, layout);
      assert.deepEqual(out.shape, [B, 4, D]);
      assert.deepEqual(attn.shape, [B, sheet.depth, N, N]);
      assert.deepEqual(patches.shape, [B, P, K]);
      attn.dispose();
      patches.dispose();
      const expected = naiveRun(naive, naiveEmbed(w, bias, maskToken, null), inject);
      assertClose(await read(out), expected, 1e-4, `out (${inject})`);
    });
  }

  test('inject "every" and "first" differ', async () => {
    const results: number[][] = [];
    for (const inject of ["first", "every"] as const) {
      const v = vision({ image_size: 4, patch_size: 2, task: "mim", inject });
      const { layout, params } = await setup(v);
      const { out, attn, patches } = encode(params, null, v, layout);
      attn.dispose();
      patches.dispose();
      results.push(await read(out));
    }
    const maxDiff = Math.max(...results[0].map((a, i) => Math.abs(a - results[1][i])));
    assert.ok(maxDiff > 1e-3, `max difference ${maxDiff}`);
  });

  test("a partial mask replaces exactly the masked embeddings by the mask token", async () => {
    const v = vision({ image_size: 4, patch_size: 2, task: "mim" });
    const { layout, params, naive, w, bias, maskToken } = await setup(v);
    const maskValues = [1, 0, 0, 1, 0, 1, 1, 1];
    const { out, attn, patches } = encode(params, arr(maskValues, [B, P]), v, layout);
    attn.dispose();
    patches.dispose();
    const expected = naiveRun(naive, naiveEmbed(w, bias, maskToken, maskValues), "first");
    assertClose(await read(out), expected, 1e-4, "masked out");
  });

  test("masking every patch makes the output independent of the image", async () => {
    const v = vision({ image_size: 4, patch_size: 2, task: "mim", inject: "every" });
    const { layout, params, naive, w, bias, maskToken } = await setup(v);
    const ones = new Array(B * P).fill(1);
    const { out, attn, patches } = encode(params, arr(ones, [B, P]), v, layout);
    attn.dispose();
    patches.dispose();
    const values = await read(out);
    const expected = naiveRun(naive, naiveEmbed(w, bias, maskToken, ones), "every");
    assertClose(values, expected, 1e-4, "all masked");
    // both images give the same output
    const per = 4 * D;
    assertClose(values.slice(0, per), values.slice(per), 1e-6, "image 0 vs image 1");
  });
});

describe("classification head", () => {
  const [B, Pout, D, C] = [3, 4, 5, 3];
  const outValues = seededValues(51, B * Pout * D);
  const wValues = seededValues(52, C * D);
  const bValues = seededValues(53, C);
  const poolValues = seededValues(54, C * Pout).map((v) => 2 * v);
  const o = (b: number, p: number, d: number) => outValues[(b * Pout + p) * D + d];

  function naiveLogits(pool: number[] | null): number[] {
    const out: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        // pooling weights over output columns for class c
        let weights: number[];
        if (pool === null) weights = new Array(Pout).fill(1 / Pout);
        else {
          const row = pool.slice(c * Pout, (c + 1) * Pout);
          const m = Math.max(...row);
          const e = row.map((v) => Math.exp(v - m));
          const z = e.reduce((s, v) => s + v, 0);
          weights = e.map((v) => v / z);
        }
        let s = bValues[c];
        for (let d = 0; d < D; d++) {
          let pooled = 0;
          for (let p = 0; p < Pout; p++) pooled += weights[p] * o(b, p, d);
          s += wValues[c * D + d] * pooled;
        }
        out.push(s);
      }
    }
    return out;
  }

  test("avg pooling: mean over output columns, then linear", async () => {
    const logits = classify({ weight: arr(wValues, [C, D]), bias: arr(bValues, [C]) }, arr(outValues, [B, Pout, D]));
    assert.deepEqual(logits.shape, [B, C]);
    assertClose(await read(logits), naiveLogits(null), 1e-5, "avg logits");
  });

  test("spatial pooling with zero pool logits equals avg pooling", async () => {
    const logits = classify(
      { pool: np.zeros([C, Pout]), weight: arr(wValues, [C, D]), bias: arr(bValues, [C]) },
      arr(outValues, [B, Pout, D]),
    );
    assertClose(await read(logits), naiveLogits(null), 1e-5, "spatial(0) logits");
  });

  test("spatial pooling: per-class softmax weights", async () => {
    const logits = classify(
      { pool: arr(poolValues, [C, Pout]), weight: arr(wValues, [C, D]), bias: arr(bValues, [C]) },
      arr(outValues, [B, Pout, D]),
    );
    assertClose(await read(logits), naiveLogits(poolValues), 1e-5, "spatial logits");
  });

  test("final norm: each output column's features are layer-normalised (weight, bias [D]) before pooling", async () => {
    const gamma = seededValues(55, D);
    const beta = seededValues(56, D);
    const normed: number[] = [];
    for (let r = 0; r < B * Pout; r++) {
      const x = outValues.slice(r * D, (r + 1) * D);
      const mean = x.reduce((a, v) => a + v, 0) / D;
      const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / D;
      x.forEach((v, d) => {
        normed.push(((v - mean) / Math.sqrt(variance + 1e-5)) * gamma[d] + beta[d]);
      });
    }
    const expected: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        let s = bValues[c];
        for (let d = 0; d < D; d++) {
          let pooled = 0;
          for (let p = 0; p < Pout; p++) pooled += normed[(b * Pout + p) * D + d] / Pout;
          s += wValues[c * D + d] * pooled;
        }
        expected.push(s);
      }
    }
    const logits = classify(
      { norm: { weight: arr(gamma, [D]), bias: arr(beta, [D]) }, weight: arr(wValues, [C, D]), bias: arr(bValues, [C]) },
      arr(outValues, [B, Pout, D]),
    );
    assertClose(await read(logits), expected, 1e-5, "final-norm logits");
  });
});
