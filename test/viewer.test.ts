/**
 * `columnformer view`: the viewer's forward (the code the page runs) against the model's own
 * visionEncode, the served site, broken inputs, and an end-to-end run in a real browser
 * (Debian's Chromium, headless, driven by playwright-core; skipped with a message when
 * /usr/bin/chromium is missing): click a column, move the step slider, draw a stroke, and check
 * the page's attention row and predicted class against `columnformer forward` and the jax-js
 * model in Node on the same input. A screenshot is saved as a test artifact.
 *
 * The fixture is the tiny preset's sheet (3 stacked 7x7 areas, dim 64, depth 4) with a
 * classification readout, trained for 2 steps on MNIST.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, type TestContext, test } from "node:test";
import type { Browser } from "playwright-core";
import { readSafetensors, writeSafetensors } from "../src/io/safetensors.ts";
import { loadVisionCheckpoint, saveVisionCheckpoint } from "../src/checkpoint/vision-checkpoint.ts";
import { initEngine } from "../src/engine/engine.ts";
import { nn, numpy as np, tree } from "../src/engine/jax.ts";
import { classify, decodePatches, initVision, visionEncode, visionFront } from "../src/model/vision.ts";
import { resolveSheetConfig } from "../src/model/config.ts";
import { composeReconstruction } from "../src/viz/reconstructions.ts";
import { parseTrainConfig } from "../src/train/config.ts";
import { PRESETS } from "../src/train/presets.ts";
import { train } from "../src/train/trainer.ts";
import { viewerForward } from "../src/viewer/compute/forward.ts";
import { modelFromBytes } from "../src/viewer/compute/load-model.ts";
import type { RunManifest, SampleSet } from "../src/viewer/compute/manifest.ts";
import { buildSite } from "../src/view/site.ts";
import { tmpDir } from "./data-fixtures.ts";

/** The page's globals as the callbacks passed to page.evaluate see them (this project type-checks without the DOM lib). */
interface PageHook {
  ready: boolean;
  forwards: number;
  device: string;
  numColumns: number;
  state(): { run: string | null; col: number | null; step: number; img: number | "draw"; q: string; seed: number };
  input(): number[];
  x0(): number[];
  probs(): number[] | null;
  mask(): number[] | null;
  reconstruction(): number[] | null;
  attentionRow(): number[] | null;
  lastForwardMs(): number;
  columnCenter(i: number): { x: number; y: number };
  train: { status: string; device: string; note: string | null; losses: number[]; stepsPerSecond: number };
}
declare const window: { columnformerViewer: PageHook };
declare const document: { getElementById(id: string): { textContent: string | null } | null };

const run = promisify(execFile);
const ROOT = path.join(import.meta.dirname, "..");
const CLI = path.join(ROOT, "src", "cli", "main.ts");
const CHROMIUM = process.env.COLUMNFORMER_CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = process.env.COLUMNFORMER_TEST_ARTIFACTS ?? path.join(os.tmpdir(), "columnformer-test-artifacts");
let runDir = "";
let checkpoint = "";
let assets = "";
const children: ChildProcess[] = [];

before(async () => {
  await initEngine();
  runDir = path.join(await tmpDir("cf-view-run-"), "run");
  const tiny = PRESETS.tiny;
  await train(
    parseTrainConfig({
      ...tiny,
      vision: { ...tiny.vision, task: "classify", num_classes: 10 },
      batch_size: 8,
      steps: 2,
      eval_every: 2,
      eval_images: 16,
      checkpoint_every: 2,
    }),
    runDir,
    { verbose: false },
  );
  checkpoint = path.join(runDir, "checkpoints", "last.safetensors");
  // the page as the current source builds it (npm ci builds dist/viewer-app the same way)
  assets = await tmpDir("cf-view-assets-");
  await run(process.execPath, [path.join(ROOT, "scripts", "build-viewer.mjs"), assets]);
});

after(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGINT");
});

/** Start `columnformer view TARGET` and resolve with its URL (printed on stdout). */
function startView(target: string): Promise<{ url: string; child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "view", target, "--samples", "16"], {
    cwd: ROOT,
    env: { ...process.env, COLUMNFORMER_VIEWER_ASSETS: assets, COLUMNFORMER_THREADS: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`columnformer view printed no URL in 60 s; stderr: ${err}`)), 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], child, stderr: () => err });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`columnformer view exited with ${code}: ${err}`));
    });
  });
}

/** The jax-js model in Node (loadVisionCheckpoint + visionEncode + classify): x0 and class probabilities. */
async function nodeReference(image: Float32Array): Promise<{ x0: Float32Array; probs: Float32Array; attn: Float32Array }> {
  const ck = await loadVisionCheckpoint(checkpoint);
  const size = ck.vision.image_size;
  const { sheet: _sheet, decoder: _d, head: _h, positions: _p, ...front } = tree.ref(ck.params);
  tree.dispose([_sheet, _d, _h, _p].filter((x) => x !== undefined));
  const f = visionFront(front, np.array(image).reshape([1, size, size, 1]), null, ck.sheet, ck.vision, ck.layout);
  f.drive.dispose();
  f.patches.dispose();
  const x0 = (await f.x0.data()) as Float32Array;
  const enc = visionEncode(ck.params, np.array(image).reshape([1, size, size, 1]), null, ck.sheet, ck.vision, ck.layout);
  enc.patches.dispose();
  const attn = (await enc.attn.data()) as Float32Array;
  const probs = (await nn.softmax(classify(ck.params.head!, enc.out), -1).data()) as Float32Array;
  return { x0, probs, attn };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "same length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test("the viewer's forward (the page's code) equals visionEncode + classify", async () => {
  const { site } = await buildSite(runDir, { samples: 4 });
  const samples = JSON.parse(new TextDecoder().decode((site.get("samples.json") as { data: Uint8Array }).data)) as SampleSet;
  assert.equal(samples.images.length, 4);
  assert.equal(samples.image_size, 28);
  const image = Float32Array.from(samples.images[1]);
  const model = modelFromBytes(new Uint8Array(readFileSync(checkpoint)), checkpoint);
  const f = await viewerForward(model, image, null);
  const ref = await nodeReference(image);
  const n = model.sheet.num_columns;
  assert.equal(f.attn.length, model.sheet.depth * n * n);
  assert.ok(maxAbsDiff(f.attn, ref.attn) < 1e-6, "attention maps");
  assert.ok(maxAbsDiff(f.x0, ref.x0) < 1e-6, "input states");
  assert.ok(maxAbsDiff(f.probs!, ref.probs) < 1e-6, "class probabilities");
  assert.equal(f.norms.length, model.sheet.depth * n);
  tree.dispose(model.params);
});

test("the served site: run manifest with log, and problems kept for the page", async () => {
  const { manifest, site } = await buildSite(runDir, { samples: 2 });
  assert.equal(manifest.kind, "run");
  const m = manifest as RunManifest;
  assert.equal(m.problem, null);
  assert.equal(m.checkpoint, "checkpoint.safetensors");
  assert.ok(m.log.some((r) => typeof r.loss === "number"), "training log records");
  assert.ok(site.has("manifest.json") && site.has("checkpoint.safetensors") && site.has("samples.json"));
  // a damaged checkpoint: reported, not served
  const bad = path.join(await tmpDir("cf-view-bad-"), "broken.safetensors");
  writeFileSync(bad, readFileSync(checkpoint).subarray(0, 300));
  const broken = (await buildSite(bad)).manifest as RunManifest;
  assert.equal(broken.checkpoint, null);
  assert.match(broken.problem ?? "", /broken\.safetensors/);
  await assert.rejects(buildSite(path.join(runDir, "nope")), /does not exist/);
});

test("columnformer view: a missing run is one line in the terminal; --export writes a static site", async () => {
  const env = { ...process.env, COLUMNFORMER_VIEWER_ASSETS: assets };
  await assert.rejects(run(process.execPath, ["--import", "tsx", CLI, "view", path.join(runDir, "missing")], { env }), (e: { stderr: string; code: number }) => {
    assert.equal(e.code, 1);
    assert.match(e.stderr, /^columnformer: error: .*missing does not exist/m);
    return true;
  });
  const out = path.join(await tmpDir("cf-view-export-"), "site");
  await run(process.execPath, ["--import", "tsx", CLI, "view", runDir, "--export", out, "--samples", "3"], { env });
  for (const f of ["index.html", "app.js", "style.css", "manifest.json", "checkpoint.safetensors", "samples.json"]) assert.ok(existsSync(path.join(out, f)), f);
  const samples = JSON.parse(readFileSync(path.join(out, "samples.json"), "utf8")) as SampleSet;
  assert.equal(samples.images.length, 3);
});

/** A launcher of headless Debian Chromium (offline, no sandbox), or null with the test skipped when it is not installed. */
async function chromiumLauncher(t: TestContext): Promise<((flags: string[]) => Promise<Browser>) | null> {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is missing (apt-get install chromium; .ci/run does): the browser test is skipped`);
    return null;
  }
  const { chromium } = await import("playwright-core");
  const base = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"];
  return (flags) => chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...base, ...flags] });
}

test("in Chromium: click a column, move the step slider, draw; the page's numbers equal columnformer forward's", { timeout: 120_000 }, async (t) => {
  const launch = await chromiumLauncher(t);
  if (!launch) return;
  const server = await startView(runDir);
  const browser = await launch(["--disable-gpu", "--disable-sync"]);
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(server.url);
    await page.waitForFunction(() => window.columnformerViewer?.ready === true, null, { timeout: 60_000 });
    const hook = () => page.evaluate(() => window.columnformerViewer);
    assert.equal((await hook()).numColumns, 147);

    // forward timing for one image (a few held-out images; the first one warms jax-js up)
    const times: number[] = [];
    for (const key of ["]", "]", "]"]) {
      const before = await page.evaluate(() => window.columnformerViewer.forwards);
      await page.keyboard.press(key);
      await page.waitForFunction((b) => window.columnformerViewer.forwards > b, before);
      times.push(await page.evaluate(() => window.columnformerViewer.lastForwardMs()));
    }
    console.log(`# in-page forward, tiny preset, one image: ${times.map((x) => x.toFixed(0)).join(", ")} ms (device ${await page.evaluate(() => window.columnformerViewer.device)})`);

    // click column 70 (area1), move the step slider to step 3
    const col = 70;
    const c = await page.evaluate((i) => window.columnformerViewer.columnCenter(i), col);
    await page.mouse.click(c.x, c.y);
    assert.equal(await page.evaluate(() => window.columnformerViewer.state().col), col);
    await page.locator("#step").fill("3");
    assert.equal(await page.evaluate(() => window.columnformerViewer.state().step), 2);
    assert.match((await page.locator("#column-id").textContent()) ?? "", /column 70/);

    // draw a stroke (a "1")
    const before = await page.evaluate(() => window.columnformerViewer.forwards);
    const box = (await page.locator("canvas.draw").boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
    await page.mouse.down();
    for (let k = 1; k <= 10; k++) await page.mouse.move(box.x + box.width * (0.5 - 0.02 * k * 0.3), box.y + box.height * (0.15 + 0.07 * k));
    await page.mouse.up();
    await page.waitForFunction((b) => window.columnformerViewer.forwards > b, before);
    const state = await page.evaluate(() => window.columnformerViewer.state());
    assert.equal(state.img, "draw");
    const input = Float32Array.from(await page.evaluate(() => window.columnformerViewer.input()));
    assert.ok(input.some((v) => v > 0.5), "the stroke is in the input");
    const pageX0 = await page.evaluate(() => window.columnformerViewer.x0());
    const pageRow = (await page.evaluate(() => window.columnformerViewer.attentionRow()))!;
    const domRow = JSON.parse(await page.locator("#attention-row").textContent() as string) as number[];
    const pageClass = Number(await page.locator("#predicted").getAttribute("data-class"));
    const pageProbs = (await page.evaluate(() => window.columnformerViewer.probs()))!;

    // golden: the CLI's forward on the model input x0 the Node model computes for the same image
    const ref = await nodeReference(input);
    assert.ok(maxAbsDiff(pageX0, ref.x0) < 1e-4, "model input x0");
    const dir = await tmpDir("cf-view-forward-");
    const n = 147;
    const d = 64;
    await writeSafetensors(path.join(dir, "in.safetensors"), { x: { dtype: "F32", shape: [1, n, d], data: ref.x0 } });
    await run(process.execPath, ["--import", "tsx", CLI, "forward", "--checkpoint", checkpoint, "--input", path.join(dir, "in.safetensors"), "--output", path.join(dir, "out.safetensors")]);
    const attn = (await readSafetensors(path.join(dir, "out.safetensors"))).tensors.attn;
    assert.deepEqual(attn.shape, [1, 4, n, n]);
    const cliRow = (attn.data as Float32Array).subarray((state.step * n + col) * n, (state.step * n + col + 1) * n);
    assert.ok(maxAbsDiff(pageRow, cliRow) < 1e-4, `attention row of column ${col} at step 3: max |diff| ${maxAbsDiff(pageRow, cliRow)}`);
    assert.ok(maxAbsDiff(domRow, cliRow) < 1e-4, "the row the page shows");
    let best = 0;
    for (let k = 1; k < ref.probs.length; k++) if (ref.probs[k] > ref.probs[best]) best = k;
    assert.equal(pageClass, best, "predicted class");
    assert.ok(maxAbsDiff(pageProbs, ref.probs) < 1e-4, "class probabilities");
    assert.deepEqual(errors, [], "no page errors");

    // colour by preferred class: column statistics over the held-out images, computed in the page
    await page.selectOption("#quantity", "preferred");
    await page.waitForFunction(() => /column statistics over 16 held-out images/.test(document.getElementById("status")!.textContent ?? ""), null, { timeout: 30_000 });
    assert.match((await page.locator(".colorbar").textContent()) ?? "", /preferred class .*\(16 images\)/);

    // the URL keeps the view: a new page on it shows the same column, step and colouring
    const shared = page.url();
    assert.match(shared, /col=70&step=2&img=draw&q=preferred/);
    const again = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await again.goto(shared.replace("img=draw", "img=5"));
    await again.waitForFunction(() => window.columnformerViewer?.ready === true, null, { timeout: 60_000 });
    const restored = await again.evaluate(() => window.columnformerViewer.state());
    assert.deepEqual([restored.col, restored.step, restored.img], [70, 2, 5]);
    await again.close();

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, "viewer.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`# screenshot: ${shot}`);

    // a damaged checkpoint: a clear message in the page and in the terminal
    const badDir = await tmpDir("cf-view-bad-");
    const bad = path.join(badDir, "broken.safetensors");
    writeFileSync(bad, readFileSync(checkpoint).subarray(0, 300));
    const badServer = await startView(bad);
    await page.goto(badServer.url);
    await page.locator("#error").waitFor({ state: "visible" });
    assert.match((await page.locator("#error").textContent()) ?? "", /cannot run the model: .*broken\.safetensors/);
    assert.match(badServer.stderr(), /warning: .*broken\.safetensors/);
    badServer.child.kill("SIGINT");

    // a MIM run (the tiny preset at initialisation): masked input and reconstruction equal the Node model's
    const mimDir = path.join(await tmpDir("cf-view-mim-"), "mim");
    mkdirSync(path.join(mimDir, "checkpoints"), { recursive: true });
    const mimConfig = parseTrainConfig({ ...PRESETS.tiny, steps: 1 });
    const { config: mimSheet, geometry: mimGeometry } = resolveSheetConfig(mimConfig.sheet);
    const mimParams = initVision(mimSheet, mimConfig.vision, mimGeometry, 3);
    const mimCkpt = path.join(mimDir, "checkpoints", "last.safetensors");
    await saveVisionCheckpoint(mimCkpt, mimSheet, mimConfig.vision, mimGeometry, mimParams, { train_config: JSON.stringify(mimConfig) });
    tree.dispose(mimParams);
    const mimServer = await startView(mimDir);
    await page.goto(`${mimServer.url}#img=2`);
    await page.waitForFunction(() => window.columnformerViewer?.ready === true, null, { timeout: 60_000 });
    const mimInput = Float32Array.from(await page.evaluate(() => window.columnformerViewer.input()));
    const mimMask = Float32Array.from((await page.evaluate(() => window.columnformerViewer.mask()))!);
    assert.equal(mimMask.reduce((a, b) => a + b, 0), Math.round(0.75 * 49), "75 % of the 49 patches masked");
    const mimPage = (await page.evaluate(() => window.columnformerViewer.reconstruction()))!;
    const ck = await loadVisionCheckpoint(mimCkpt);
    const { decoder, head: _mh, positions: _mp, ...mimEnc } = ck.params;
    const enc = visionEncode(mimEnc, np.array(mimInput).reshape([1, 28, 28, 1]), np.array(mimMask).reshape([1, 49]), ck.sheet, ck.vision, ck.layout);
    enc.patches.dispose();
    enc.attn.dispose();
    const pred = (await decodePatches(decoder!, enc.out).data()) as Float32Array;
    const golden = composeReconstruction(mimInput, pred, Array.from(mimMask, (v) => v > 0.5), 28, 28, 1, 4, true);
    assert.ok(maxAbsDiff(mimPage, golden) < 1e-4, `reconstruction: max |diff| ${maxAbsDiff(mimPage, golden)}`);
    assert.equal(await page.locator("figcaption", { hasText: "reconstruction" }).count(), 1);
    mimServer.child.kill("SIGINT");

    // a sweep: its runs in a table; a click opens one
    const sweep = await tmpDir("cf-view-sweep-");
    for (const name of ["lr-1", "lr-2"]) cpSync(runDir, path.join(sweep, name), { recursive: true });
    const sweepServer = await startView(sweep);
    await page.goto(sweepServer.url);
    await page.waitForFunction(() => window.columnformerViewer?.ready === true);
    assert.equal(await page.locator("#sweep-table tr.link").count(), 2);
    await page.locator("#sweep-table tr.link", { hasText: "lr-2" }).click();
    await page.waitForFunction(() => window.columnformerViewer?.ready === true && window.columnformerViewer.forwards > 0, null, { timeout: 60_000 });
    assert.equal(await page.locator("#run-name").textContent(), "lr-2");
    assert.equal(await page.evaluate(() => window.columnformerViewer.state().run), "lr-2");
    sweepServer.child.kill("SIGINT");
  } finally {
    await browser.close();
    server.child.kill("SIGINT");
  }
});

/**
 * The Train panel in Chromium: headless Chromium with --disable-gpu has no WebGPU adapter
 * ("No available adapters"), so the page must say so in one line and train on wasm (jax-js):
 * 25 steps, finite losses that go down, the curve and the device shown. With
 * --enable-unsafe-webgpu Chromium offers its own SwiftShader adapter and the page trains on the
 * project's WGSL sheet kernels; SwiftShader takes ~17 s a step on 2 cores, so that half (5 steps)
 * runs only when COLUMNFORMER_WEBGPU_REQUIRED=1 or COLUMNFORMER_WEBGPU_PAGE=1, and with the
 * former a page that does not train on webgpu fails.
 */
test("in Chromium: the Train panel trains a tiny sheet in the page (wasm without an adapter, webgpu with one)", { timeout: 400_000 }, async (t) => {
  const launch = await chromiumLauncher(t);
  if (!launch) return;
  const server = await startView(runDir);
  const trainIn = async (flags: string[], steps: number) => {
    const browser = await launch(flags);
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(server.url);
      await page.waitForFunction(() => window.columnformerViewer?.ready === true, null, { timeout: 60_000 });
      await page.locator("#train-steps").fill(String(steps));
      await page.locator("#train").click();
      await page.waitForFunction(() => /^(done|stopped|error)/.test(window.columnformerViewer.train.status), null, { timeout: 300_000 });
      const train = await page.evaluate(() => window.columnformerViewer.train);
      const shown = (await page.locator("#train-device").textContent()) ?? "";
      const points = await page.locator("#train-curve path").count();
      const forward = (await page.locator("#timing").textContent()) ?? "";
      assert.deepEqual(errors, []);
      return { train, shown, points, forward };
    } finally {
      await browser.close();
    }
  };
  /** Done after `steps` finite losses whose mean over the last `window` steps is below the first `window`'s. */
  const check = (r: Awaited<ReturnType<typeof trainIn>>, what: string, steps: number, window: number) => {
    assert.equal(r.train.status, "done", `${what}: ${r.train.status}`);
    assert.equal(r.train.losses.length, steps);
    assert.ok(r.train.losses.every(Number.isFinite), `${what}: losses ${r.train.losses}`);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(r.train.losses.slice(0, window));
    const last = mean(r.train.losses.slice(-window));
    assert.ok(last < first, `${what}: the loss went from ${first} (first ${window} steps) to ${last} (last ${window})`);
    assert.equal(r.points, 1, "the loss curve is drawn");
    assert.ok(r.train.stepsPerSecond > 0);
    console.log(`# ${what}: ${r.shown}; loss ${first.toFixed(3)} -> ${last.toFixed(3)}; ${r.train.stepsPerSecond.toFixed(2)} steps/s`);
  };
  try {
    const plain = await trainIn(["--disable-gpu"], 25);
    assert.match(plain.train.device, /^wasm \(jax-js\)/);
    assert.ok(plain.train.note !== null && /no WebGPU adapter|no WebGPU/.test(plain.train.note), `the one line: ${plain.train.note}`);
    assert.ok(plain.shown.includes(plain.train.note!), "the page shows why WebGPU is not training");
    assert.match(plain.forward, /on wasm \(not webgpu: .+\)$/, "the forward's device line says why jax-js is not on WebGPU");
    check(plain, "no adapter", 25, 5);

    if (process.env.COLUMNFORMER_WEBGPU_REQUIRED !== "1" && process.env.COLUMNFORMER_WEBGPU_PAGE !== "1") {
      t.diagnostic("training on webgpu in the page is not checked (Chromium's SwiftShader takes ~17 s a step here): set COLUMNFORMER_WEBGPU_PAGE=1");
      return;
    }
    const gpu = await trainIn(["--enable-unsafe-webgpu"], 5);
    if (!gpu.train.device.startsWith("webgpu")) {
      if (process.env.COLUMNFORMER_WEBGPU_REQUIRED === "1") assert.fail(`COLUMNFORMER_WEBGPU_REQUIRED=1 but the page trained on ${gpu.train.device}: ${gpu.train.note}`);
      t.diagnostic(`Chromium gave no WebGPU adapter with --enable-unsafe-webgpu (${gpu.train.note}); the webgpu half is not checked`);
      return;
    }
    assert.equal(gpu.train.note, null);
    assert.ok(gpu.shown.includes("WGSL sheet kernels"), gpu.shown);
    check(gpu, "webgpu", 5, 2);
  } finally {
    server.child.kill("SIGINT");
  }
});
