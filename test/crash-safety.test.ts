/**
 * Crash safety of training runs (issue 15): checkpoints as one consistent unit with fallback
 * to the newest complete one, bit-identical resume from kills at several points, temporary
 * files cleaned on signals and after kill -9, checkpoints that never read other files, no
 * non-finite checkpoint or best, locked run directories and sweep children that die with
 * their parent, and the smaller command-line failures.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import * as nodePath from "node:path";
import { promisify } from "node:util";
import { before, describe, test } from "node:test";
import { checkpointConfig } from "../src/checkpoint/checkpoint.ts";
import { readSafetensors, writeSafetensors } from "../src/io/safetensors.ts";
import { loadOptimizerState, loadVisionCheckpoint, saveOptimizerState } from "../src/checkpoint/vision-checkpoint.ts";
import type { Backend } from "../src/engine/backend.ts";
import { initEngine } from "../src/engine/engine.ts";
import { tree } from "../src/engine/jax.ts";
import { connectivityFromFile } from "../src/geometry/connectivity.ts";
import { readUserFileSync, removeStaleTempFiles } from "../src/io/atomic.ts";
import { parseTrainConfig, type TrainConfig } from "../src/train/config.ts";
import { createRunDir, lockRunDir, runDirLockOwner } from "../src/train/run-dir.ts";
import { loadTrainedModel } from "../src/train/trained-model.ts";
import { resume, train } from "../src/train/trainer.ts";
import { easyImage, tmpDir, writeIdxFolder } from "./data-fixtures.ts";

const ROOT = nodePath.join(import.meta.dirname, "..");
const CLI = nodePath.join(ROOT, "src", "cli", "main.ts");
const execFileP = promisify(execFile);

let dataDir = "";

before(async () => {
  await initEngine();
  dataDir = await tmpDir("cf-crash-data-");
  const split = (n: number, offset: number) => {
    const labels = Array.from({ length: n }, (_, i) => i % 2);
    return { images: labels.map((l, i) => easyImage(l, offset + i)), labels };
  };
  await writeIdxFolder(dataDir, split(64, 0), split(32, 500), false);
});

function rawConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sheet: { geometry: { kind: "stacked", widths: [2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2 },
    vision: { image_size: 8, patch_size: 4, channels: 1, task: "mim", num_classes: 2 },
    data: { kind: "idx", path: dataDir },
    batch_size: 16,
    steps: 12,
    eval_every: 4,
    eval_images: 32,
    checkpoint_every: 2,
    optim: { lr: 1e-2 },
    ...overrides,
  };
}

const config = (overrides: Record<string, unknown> = {}): TrainConfig => parseTrainConfig(rawConfig(overrides));

/** Run the CLI; resolves with exit code, stdout and stderr. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, ["--import", "tsx", CLI, ...args], { cwd: ROOT, env: { ...process.env, COLUMNFORMER_DEBUG: "" } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Every tensor of two safetensors files has the same dtype, shape and bytes. */
async function assertSameBytes(a: string, b: string): Promise<void> {
  const fa = await readSafetensors(a);
  const fb = await readSafetensors(b);
  assert.deepEqual(Object.keys(fa.tensors).sort(), Object.keys(fb.tensors).sort(), `${a} vs ${b}: tensor names`);
  for (const [name, ta] of Object.entries(fa.tensors)) {
    const tb = fb.tensors[name];
    assert.deepEqual(ta.shape, tb.shape, name);
    const ba = Buffer.from(ta.data.buffer, ta.data.byteOffset, ta.data.byteLength);
    const bb = Buffer.from(tb.data.buffer, tb.data.byteOffset, tb.data.byteLength);
    let differing = 0;
    const xa = new Float32Array(ba.buffer, ba.byteOffset, ba.byteLength / 4);
    const xb = new Float32Array(bb.buffer, bb.byteOffset, bb.byteLength / 4);
    if (ta.dtype === "F32") for (let i = 0; i < xa.length; i++) if (!Object.is(xa[i], xb[i])) differing++;
    assert.ok(ba.equals(bb), `${nodePath.basename(a)}: tensor ${name} differs (${differing} of ${xa.length} elements)`);
  }
}

const ckptFile = (root: string, name: string) => nodePath.join(root, "checkpoints", `${name}.safetensors`);

function logSteps(root: string): number[] {
  return readFileSync(nodePath.join(root, "log.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => (JSON.parse(l) as { step: number }).step);
}

/** Temporary files (`.NAME.<pid>.<hex>.tmp`) left in a run directory. */
function tempFiles(root: string): string[] {
  const list = (d: string) => (existsSync(d) ? readdirSync(d).filter((n) => n.endsWith(".tmp")) : []);
  return [...list(root), ...list(nodePath.join(root, "checkpoints"))];
}

/** Capture what `fn` writes to stderr. */
async function captureStderr<T>(fn: () => Promise<T>): Promise<{ value: T; text: string }> {
  const original = process.stderr.write.bind(process.stderr);
  let text = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), text };
  } finally {
    process.stderr.write = original;
  }
}

/** The pid of a process that has exited (for stale temp files and locks). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

const references = new Map<string, string>();
/** An uninterrupted run of `config()` on `backend` (default: the default engine; trained once, shared by the resume tests). */
async function referenceRun(backend?: Backend): Promise<string> {
  const key = backend ?? "default";
  if (!references.has(key)) {
    const root = await tmpDir(`cf-crash-ref-${key}-`);
    await train(config(), root, { verbose: false, backend });
    references.set(key, root);
  }
  return references.get(key)!;
}

describe("1, 2: checkpoints are one consistent unit; resume is bit-identical from any kill point", () => {
  test("resume from kills at several points (at and between checkpoints) ends with the bytes of an uninterrupted run", async () => {
    // stopAfter k writes `last` at k (a clean stop); deleting it afterwards leaves what a kill
    // after step k, before any save, leaves: the log runs past the newest checkpoint. On the
    // jax-js engine a loaded parameter tree used to flatten in another key order than a fresh
    // one, so the clipping norm summed in another order: 1-ulp differences from step 11 on.
    for (const [backend, k, killedBeforeSave] of [
      ["jax", 3, false],
      ["jax", 5, true],
      [undefined, 1, false],
      [undefined, 8, true],
    ] as const) {
      const ref = await referenceRun(backend);
      const root = await tmpDir(`cf-crash-k${k}-`);
      await train(config(), root, { verbose: false, stopAfter: k, backend });
      if (killedBeforeSave) {
        rmSync(ckptFile(root, "last"));
        rmSync(ckptFile(root, "last.opt"));
      }
      await resume(root, { verbose: false, backend });
      await assertSameBytes(ckptFile(ref, "last.opt"), ckptFile(root, "last.opt"));
      await assertSameBytes(ckptFile(ref, "last"), ckptFile(root, "last"));
      await assertSameBytes(ckptFile(ref, "best"), ckptFile(root, "best"));
      assert.deepEqual(logSteps(root), Array.from({ length: 12 }, (_, i) => i + 1), `k ${k}: log steps`);
      assert.deepEqual(JSON.parse(readFileSync(nodePath.join(root, "best.json"), "utf8")), JSON.parse(readFileSync(nodePath.join(ref, "best.json"), "utf8")));
    }
  });

  test("the training state is one file holding the parameters and both moments of one step", async () => {
    const ref = await referenceRun();
    const state = await readSafetensors(ckptFile(ref, "step-000004.opt"));
    const model = await readSafetensors(ckptFile(ref, "step-000004"));
    assert.equal(state.metadata.step, "4");
    assert.equal(state.metadata.optimizer_step, "4");
    for (const [name, t] of Object.entries(model.tensors)) {
      assert.ok(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(state.tensors[name].data.buffer, state.tensors[name].data.byteOffset, state.tensors[name].data.byteLength)), name);
      if (name !== "dist") {
        assert.ok(state.tensors[`mu.${name}`] && state.tensors[`nu.${name}`], `moments of ${name}`);
      }
    }
  });

  test("a kill between a training state and its model file: resume uses the newer complete state", async () => {
    const ref = await referenceRun();
    const root = await tmpDir("cf-crash-between-");
    await train(config(), root, { verbose: false, stopAfter: 4 });
    // at step 4: step-000004.opt was renamed, then the process died before step-000004 and
    // before both `last` files: last is still step 2
    rmSync(ckptFile(root, "step-000004"));
    copyFileSync(ckptFile(root, "step-000002"), ckptFile(root, "last"));
    copyFileSync(ckptFile(root, "step-000002.opt"), ckptFile(root, "last.opt"));
    const { text } = await captureStderr(() => resume(root));
    assert.match(text, /resuming .* at step 4 \(from step-000004\.safetensors\)/);
    await assertSameBytes(ckptFile(ref, "last.opt"), ckptFile(root, "last.opt"));
  });

  test("a mismatched pair of an earlier version (model of step 4, optimiser of step 2) is refused and the run falls back with a message", async () => {
    const ref = await referenceRun();
    const root = await tmpDir("cf-crash-legacy-");
    await train(config(), root, { verbose: false, stopAfter: 4 });
    // the old two-file format, torn by a kill: last.safetensors of step 4, last.opt (moments only) of step 2
    const two = await loadVisionCheckpoint(ckptFile(root, "step-000002"));
    const opt2 = await loadOptimizerState(ckptFile(root, "step-000002.opt"), two.params);
    await saveOptimizerState(ckptFile(root, "last.opt"), opt2);
    tree.dispose([two.params, opt2.mu, opt2.nu]);
    rmSync(ckptFile(root, "step-000004.opt"));
    rmSync(ckptFile(root, "step-000004"));
    const { text } = await captureStderr(() => resume(root));
    assert.match(text, /last\.safetensors is of step 4 but .*last\.opt\.safetensors of step 2/);
    assert.match(text, /resuming from step-000002\.safetensors \(step 2\)/);
    await assertSameBytes(ckptFile(ref, "last.opt"), ckptFile(root, "last.opt"));
  });

  test("a damaged last state falls back to the newest complete step checkpoint", async () => {
    const ref = await referenceRun();
    const root = await tmpDir("cf-crash-corrupt-");
    await train(config(), root, { verbose: false, stopAfter: 6 });
    const bytes = readFileSync(ckptFile(root, "last.opt"));
    writeFileSync(ckptFile(root, "last.opt"), bytes.subarray(0, Math.floor(bytes.length / 2)));
    const { text } = await captureStderr(() => resume(root));
    assert.match(text, /skipped last\.opt\.safetensors: invalid safetensors file: /);
    assert.match(text, /resuming from step-000006\.safetensors \(step 6\)/);
    await assertSameBytes(ckptFile(ref, "last.opt"), ckptFile(root, "last.opt"));
  });

  test("killed during its first checkpoint: the run neither blocks a restart nor a resume", async () => {
    const root = await tmpDir("cf-crash-first-");
    const cfg = config({ steps: 2 });
    await createRunDir(root, cfg);
    // what kill -9 during the first save leaves: one logged step and a half-written temp state
    writeFileSync(nodePath.join(root, "log.jsonl"), `${JSON.stringify({ step: 1, loss: 1 })}\n`);
    const tmp = nodePath.join(root, "checkpoints", `.last.opt.safetensors.${deadPid()}.0123456789ab.tmp`);
    writeFileSync(tmp, "partial");
    const { text } = await captureStderr(() => resume(root));
    assert.doesNotMatch(text, /resuming/);
    assert.ok(!existsSync(tmp), "the dead writer's temp file is removed");
    assert.deepEqual(logSteps(root), [1, 2]);
    // and a restart of a run whose checkpoints are all unusable is not refused
    const other = await tmpDir("cf-crash-first2-");
    await createRunDir(other, cfg);
    writeFileSync(ckptFile(other, "last"), "garbage");
    await train(cfg, other, { verbose: false });
    assert.deepEqual(logSteps(other), [1, 2]);
  });

  test("kill -9 of a real `columnformer train` mid-run, then resume: the bytes of an uninterrupted run, no temp file left", async () => {
    const dir = await tmpDir("cf-crash-kill-");
    const cfgFile = nodePath.join(dir, "train.json");
    writeFileSync(cfgFile, JSON.stringify(rawConfig({ steps: 40, checkpoint_every: 4, eval_every: 8 })));
    const root = nodePath.join(dir, "run");
    const child = spawn(process.execPath, ["--import", "tsx", CLI, "train", "--config", cfgFile, "--out", root, "--quiet"], {
      cwd: ROOT,
      env: { ...process.env, COLUMNFORMER_THREADS: "0" },
      stdio: "ignore",
    });
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    const deadline = Date.now() + 120_000;
    while (!existsSync(ckptFile(root, "step-000004.opt")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 40 + Math.floor(Math.random() * 200)));
    child.kill("SIGKILL");
    await exited;
    assert.ok(!existsSync(nodePath.join(root, "summary.json")), "killed before it finished (else this test proves nothing)");
    await resume(root, { verbose: false });
    assert.deepEqual(tempFiles(root), [], "no temp file is left after the resume");
    assert.equal(runDirLockOwner(root), null, "the dead process's lock is gone");
    const refRoot = nodePath.join(dir, "ref");
    await train(parseTrainConfig(JSON.parse(readFileSync(nodePath.join(root, "config.json"), "utf8"))), refRoot, { verbose: false });
    await assertSameBytes(ckptFile(refRoot, "last.opt"), ckptFile(root, "last.opt"));
    assert.deepEqual(logSteps(root), Array.from({ length: 40 }, (_, i) => i + 1));
  });
});

describe("3: temporary files", () => {
  test("SIGINT and SIGTERM during an atomic write remove its temp file (exit 130 / 143)", async () => {
    const atomic = nodePath.join(ROOT, "src", "io", "atomic.ts");
    for (const [signal, code] of [
      ["SIGINT", 130],
      ["SIGTERM", 143],
    ] as const) {
      const dir = await tmpDir("cf-crash-sig-");
      const script = `
        import { readdirSync } from "node:fs";
        import { installSignalCleanup, writeFileAtomic } from ${JSON.stringify(atomic)};
        installSignalCleanup();
        void writeFileAtomic(${JSON.stringify(nodePath.join(dir, "big.bin"))}, new Uint8Array(400 * 2 ** 20));
        const t = setInterval(() => {
          if (readdirSync(${JSON.stringify(dir)}).some((n) => n.endsWith(".tmp"))) { clearInterval(t); process.kill(process.pid, ${JSON.stringify(signal)}); }
        }, 1);`;
      const file = nodePath.join(dir, "child.mts");
      writeFileSync(file, script);
      const r = spawnSync(process.execPath, ["--import", "tsx", file], { cwd: ROOT, encoding: "utf8" });
      assert.equal(r.status, code, `${signal}: ${r.stderr}`);
      assert.deepEqual(readdirSync(dir).filter((n) => n !== "child.mts"), [], `${signal}: nothing but the script is left`);
    }
  });

  test("opening a run directory removes temp files of dead writers, never those of live ones", async () => {
    const dir = await tmpDir("cf-crash-stale-");
    const dead = `.last.safetensors.${deadPid()}.aaaaaaaaaaaa.tmp`;
    const sleeper = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    try {
      const live = `.last.safetensors.${sleeper.pid}.bbbbbbbbbbbb.tmp`;
      writeFileSync(nodePath.join(dir, dead), "x");
      writeFileSync(nodePath.join(dir, live), "x");
      writeFileSync(nodePath.join(dir, "keep.tmp"), "not ours");
      assert.deepEqual(removeStaleTempFiles(dir), [dead]);
      assert.deepEqual(readdirSync(dir).sort(), [live, "keep.tmp"].sort());
    } finally {
      sleeper.kill("SIGKILL");
    }
  });
});

describe("4: a checkpoint never makes the loader read another file", () => {
  test("a file connectivity without k in checkpoint metadata is refused without opening the path", async () => {
    const dir = await tmpDir("cf-crash-conn-");
    const secret = nodePath.join(dir, "secret.csv");
    writeFileSync(secret, "0,1\n1,0\n2,3\n3,2\n"); // a valid connectivity: reading it would succeed
    const file = nodePath.join(dir, "hostile.safetensors");
    const config = { geometry: { kind: "stacked", widths: [2, 2] }, dim: 8, qk_dim: 4, mlp_dim: 8, depth: 2, connectivity: { kind: "file", path: secret } };
    await writeSafetensors(file, { dist: { dtype: "F32", shape: [4, 4], data: new Float32Array(16) } }, { format: "columnformer", config: JSON.stringify(config) });
    const decoded = await readSafetensors(file);
    assert.throws(() => checkpointConfig(decoded, file), /connectivity is a file spec without k .*no file it names is read/);
    for (const p of ["/etc/passwd", "../../etc/passwd", "/dev/zero"]) {
      const hostile = { ...config, connectivity: { kind: "file", path: p } };
      assert.throws(() => checkpointConfig({ ...decoded, metadata: { ...decoded.metadata, config: JSON.stringify(hostile) } }, file), /no file it names is read/);
    }
    const info = await cli("info", file);
    assert.notEqual(info.code, 0);
    assert.doesNotMatch(info.stdout + info.stderr, /root:/);
    assert.match(info.stderr.trim(), /^columnformer: error: .*no file it names is read$/);
  });

  test("a trained model's train_config paths are not read: its sheet comes from the checkpoint", async () => {
    const root = await tmpDir("cf-crash-tc-");
    await train(config({ steps: 2 }), root, { verbose: false });
    const file = await readSafetensors(ckptFile(root, "last"));
    const tc = JSON.parse(file.metadata.train_config) as Record<string, Record<string, unknown>>;
    tc.sheet.connectivity = { kind: "file", path: "/dev/zero" };
    const hostile = nodePath.join(root, "hostile.safetensors");
    await writeSafetensors(hostile, file.tensors, { ...file.metadata, train_config: JSON.stringify(tc) });
    const model = await loadTrainedModel(hostile);
    assert.equal(model.session.connectivity, null, "dense, as the checkpoint's own config says");
    tree.dispose(model.checkpoint.params);
  });

  test("a file a user names must be a regular file under the size limit", async () => {
    assert.throws(() => connectivityFromFile("/dev/zero", 4), /connectivity file \/dev\/zero: not a regular file/);
    const dir = await tmpDir("cf-crash-big-");
    const big = nodePath.join(dir, "big.csv");
    writeFileSync(big, "0,1\n".repeat(100));
    assert.throws(() => readUserFileSync(big, 10, "connectivity file"), /400 bytes is over the limit of 10 bytes/);
    assert.throws(() => readUserFileSync(dir, 10, "config file"), /not a regular file \(a directory\)/);
  });
});

describe("5: non-finite values are never saved or best", () => {
  test("a huge learning rate stops at the step that diverged, with a useful hint, and saves nothing non-finite", async () => {
    const root = await tmpDir("cf-crash-nan-");
    const cfg = config({ steps: 3, checkpoint_every: 1, eval_every: 1, optim: { lr: 1e39 } });
    await assert.rejects(train(cfg, root, { verbose: false }), (e: Error) => {
      assert.match(e.message, /^training diverged at step 1: the parameters after step 1 are not finite/);
      assert.match(e.message, /no checkpoint was written/);
      assert.match(e.message, /lower optim\.lr \(now 1e\+39/);
      assert.match(e.message, /already clipped to norm 1/);
      assert.doesNotMatch(e.message, /enable optim\.clip_norm/);
      return true;
    });
    assert.deepEqual(readdirSync(nodePath.join(root, "checkpoints")), []);
    assert.ok(!existsSync(nodePath.join(root, "best.json")));
    // finite but huge parameters: the held-out loss is NaN, and it never becomes best
    const root2 = await tmpDir("cf-crash-nan2-");
    await assert.rejects(train(config({ steps: 3, checkpoint_every: 1, eval_every: 1, optim: { lr: 1e6 } }), root2, { verbose: false }), /^Error: training diverged at step 1: the held-out MIM loss is not finite/);
    assert.ok(!existsSync(nodePath.join(root2, "best.json")), "no best.json with mim_loss null");
    assert.ok(!existsSync(ckptFile(root2, "best")));
  });

  for (const backend of ["native", "jax"] as const) {
    test(`with a log interval (${backend}), divergence is caught at the interval's read, naming its steps, before any checkpoint`, async () => {
      const root = await tmpDir("cf-crash-nan3-");
      const cfg = config({ steps: 6, log_every: 3, checkpoint_every: 3, eval_every: 100, optim: { lr: 1e39 } });
      await assert.rejects(train(cfg, root, { verbose: false, backend }), /^Error: training diverged in steps 1-3: the parameters after step 3 are not finite; no checkpoint was written/);
      assert.deepEqual(readdirSync(nodePath.join(root, "checkpoints")), []);
    });
  }

  test("`eval` of a checkpoint with NaN parameters fails with one line and a non-zero exit", async () => {
    const root = await tmpDir("cf-crash-naneval-");
    await train(config({ steps: 1, checkpoint_every: 1, eval_every: 1 }), root, { verbose: false });
    const file = await readSafetensors(ckptFile(root, "last"));
    const w = file.tensors["patch_embed.weight"].data as Float32Array;
    w[3] = NaN;
    const bad = nodePath.join(root, "nan.safetensors");
    await writeSafetensors(bad, file.tensors, file.metadata);
    const r = await cli("eval", bad, "--images", "8");
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, "");
    assert.match(r.stderr.trim(), /^columnformer: error: .*nan\.safetensors: tensor "patch_embed\.weight" has 1 non-finite value .*use an earlier checkpoint/);
  });
});

describe("6: locked run directories; sweep children die with their parent", () => {
  test("a second process cannot train into a locked run directory; the lock of a killed one is taken over", async () => {
    const root = await tmpDir("cf-crash-lock-");
    const runDir = nodePath.join(ROOT, "src", "train", "run-dir.ts");
    const holder = spawn(
      process.execPath,
      ["--import", "tsx", "-e", `import(${JSON.stringify(runDir)}).then((m) => { m.lockRunDir(${JSON.stringify(root)}); console.log("locked"); setInterval(() => {}, 1000); });`],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await new Promise<void>((resolve) => holder.stdout!.on("data", () => resolve()));
      assert.equal(runDirLockOwner(root)?.pid, holder.pid);
      await assert.rejects(train(config({ steps: 1 }), root, { verbose: false }), new RegExp(`is in use by process ${holder.pid} .*kill ${holder.pid}`));
      assert.throws(() => lockRunDir(root), /is in use by process/);
      assert.ok(!existsSync(nodePath.join(root, "config.json")), "nothing was written by the refused run");
    } finally {
      holder.kill("SIGKILL");
      await new Promise((r) => holder.on("exit", r));
    }
    const release = lockRunDir(root); // stale now: taken over
    assert.equal(runDirLockOwner(root)?.pid, process.pid);
    release();
    assert.ok(!existsSync(nodePath.join(root, ".lock")));
  });

  test("a lock from another host: held while its heartbeat is fresh, stale after 10 minutes or when this Slurm job was requeued", async () => {
    const root = await tmpDir("cf-crash-lockhost-");
    const lockPath = nodePath.join(root, ".lock");
    const write = (extra: Record<string, unknown> = {}) =>
      writeFileSync(lockPath, JSON.stringify({ pid: 1, host: "some-other-node", started: "2020-01-01T00:00:00Z", nonce: "abc", command: "train", ...extra }));
    write();
    assert.throws(() => lockRunDir(root), /in use by process 1 on some-other-node/);
    const old = new Date(Date.now() - 11 * 60 * 1000);
    utimesSync(lockPath, old, old);
    lockRunDir(root)(); // stale: taken over and released
    assert.ok(!existsSync(lockPath));
    write({ slurm_job: "77_3" });
    const saved = { id: process.env.SLURM_JOB_ID, task: process.env.SLURM_ARRAY_TASK_ID };
    process.env.SLURM_JOB_ID = "77";
    process.env.SLURM_ARRAY_TASK_ID = "3";
    try {
      lockRunDir(root)();
    } finally {
      if (saved.id === undefined) delete process.env.SLURM_JOB_ID;
      else process.env.SLURM_JOB_ID = saved.id;
      if (saved.task === undefined) delete process.env.SLURM_ARRAY_TASK_ID;
      else process.env.SLURM_ARRAY_TASK_ID = saved.task;
    }
    assert.ok(!existsSync(lockPath), "the requeued job took its own lock over");
  });

  test("kill -9 of a `--jobs 2` sweep parent: its children stop at once; children get --quiet", async () => {
    const dir = await tmpDir("cf-crash-sweep-");
    const sweepFile = nodePath.join(dir, "s.yaml");
    writeFileSync(sweepFile, "name: s\npreset: tiny\ngrid: { seed: [0, 1] }\n");
    const pidsDir = nodePath.join(dir, "pids");
    mkdirSync(pidsDir);
    // a stand-in for the CLI: records its argv, then lives until its parent is gone
    const fakeChild = nodePath.join(dir, "fake-child.mts");
    writeFileSync(
      fakeChild,
      `import { writeFileSync } from "node:fs";
       import { exitWithParent } from ${JSON.stringify(nodePath.join(ROOT, "src", "workflows", "sweep", "local.ts"))};
       writeFileSync(${JSON.stringify(pidsDir)} + "/" + process.pid, JSON.stringify(process.argv.slice(2)));
       exitWithParent(() => undefined);
       setInterval(() => {}, 1000);`,
    );
    const parentScript = nodePath.join(dir, "parent.mts");
    writeFileSync(
      parentScript,
      `import { loadSweep } from ${JSON.stringify(nodePath.join(ROOT, "src", "workflows", "sweep", "spec.ts"))};
       import { runSweepLocal } from ${JSON.stringify(nodePath.join(ROOT, "src", "workflows", "sweep", "local.ts"))};
       const plan = await loadSweep(${JSON.stringify(sweepFile)});
       await runSweepLocal(plan, ${JSON.stringify(nodePath.join(dir, "out"))}, { jobs: 2, verbose: false, log: () => undefined,
         child: { script: ${JSON.stringify(fakeChild)}, sweepFile: ${JSON.stringify(sweepFile)}, execArgv: ["--import", "tsx"] } });`,
    );
    const parent: ChildProcess = spawn(process.execPath, ["--import", "tsx", parentScript], { cwd: ROOT, stdio: "ignore" });
    const deadline = Date.now() + 60_000;
    while (readdirSync(pidsDir).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const children = readdirSync(pidsDir).map(Number);
    assert.equal(children.length, 2, "both children started");
    for (const pid of children) assert.ok(JSON.parse(readFileSync(nodePath.join(pidsDir, String(pid)), "utf8")).includes("--quiet"), "sweep --quiet quiets its children");
    const tKill = Date.now();
    parent.kill("SIGKILL");
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const stopBy = Date.now() + 10_000;
    while (children.some(alive) && Date.now() < stopBy) await new Promise((r) => setTimeout(r, 20));
    if (process.env.CF_TIMING) console.log(`children gone ${Date.now() - tKill} ms after the kill`);
    const orphans = children.filter(alive);
    for (const pid of orphans) process.kill(pid, "SIGKILL");
    assert.deepEqual(orphans, [], "no child outlives its killed parent");
  });
});

describe("7: smaller failures", () => {
  test("--steps 0 is an error, not 300 steps; eval --images 0 names the option; --resume refuses --set and says so", async () => {
    const out = await tmpDir("cf-crash-cli-");
    const [r0, r1, r2] = await Promise.all([
      cli("train", "--steps", "0", "--out", nodePath.join(out, "zero"), "--quiet"),
      cli("eval", nodePath.join(out, "none.safetensors"), "--images", "0"),
      cli("train", "--resume", nodePath.join(out, "zero"), "--set", "optim.lr=1"),
    ]);
    assert.notEqual(r0.code, 0);
    assert.match(r0.stderr.trim(), /^columnformer: error: invalid training config: config\.steps: /);
    assert.ok(!existsSync(nodePath.join(out, "zero", "log.jsonl")));
    assert.match(r1.stderr.trim(), /^columnformer: error: --images must be at least 1, got 0$/);
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr.trim(), /^columnformer: error: --resume continues .* so --set cannot be used with it; only --steps N/);
  });

  test("a start that failed (missing data path) does not block the corrected rerun", async () => {
    const root = await tmpDir("cf-crash-failed-");
    await assert.rejects(train(config({ steps: 1, data: { kind: "idx", path: nodePath.join(root, "no-such-data") } }), root, { verbose: false }));
    assert.ok(existsSync(nodePath.join(root, "config.json")));
    await train(config({ steps: 1, checkpoint_every: 1, eval_every: 1 }), root, { verbose: false });
    assert.deepEqual(logSteps(root), [1]);
  });

  test("resume --steps N trains a run on to N steps", async () => {
    const root = await tmpDir("cf-crash-more-");
    await train(config({ steps: 4 }), root, { verbose: false });
    const { text } = await captureStderr(() => resume(root, { steps: 6 }));
    assert.match(text, /extending .* from 4 to 6 steps/);
    assert.deepEqual(logSteps(root), [1, 2, 3, 4, 5, 6]);
    assert.equal(JSON.parse(readFileSync(nodePath.join(root, "config.json"), "utf8")).steps, 6);
    assert.equal(JSON.parse(readFileSync(nodePath.join(root, "summary.json"), "utf8")).steps, 6);
    await assert.rejects(resume(root, { steps: 5, verbose: false }), /--steps 5 is fewer than the 6 steps its checkpoint has done/);
  });

  test("vision metadata with broken JSON names the file and the field", async () => {
    const root = await tmpDir("cf-crash-vis-");
    await train(config({ steps: 1, checkpoint_every: 1, eval_every: 1 }), root, { verbose: false });
    const file = await readSafetensors(ckptFile(root, "last"));
    const broken = nodePath.join(root, "broken.safetensors");
    await writeSafetensors(broken, file.tensors, { ...file.metadata, vision: "{oops" });
    await assert.rejects(loadVisionCheckpoint(broken), new RegExp(`^Error: ${broken.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: metadata "vision" is not valid JSON`));
    const vision = JSON.parse(file.metadata.vision) as Record<string, unknown>;
    await writeSafetensors(broken, file.tensors, { ...file.metadata, vision: JSON.stringify({ ...vision, patch_size: "four" }) });
    await assert.rejects(loadVisionCheckpoint(broken), /metadata "vision" is invalid: vision\.patch_size: /);
  });

  test("a read-only file system is reported as such, not as ENOENT", { skip: readOnlySkip() }, async () => {
    const dir = await tmpDir("cf-crash-ro-");
    const atomic = nodePath.join(ROOT, "src", "io", "atomic.ts");
    const script = nodePath.join(dir, "w.mts");
    writeFileSync(
      script,
      `import { writeFileAtomic } from ${JSON.stringify(atomic)};
       try { await writeFileAtomic(process.argv[2] + "/run/checkpoints/x.json", "{}"); } catch (e) { console.log((e as Error).message); }`,
    );
    const mnt = nodePath.join(dir, "mnt");
    mkdirSync(mnt);
    const r = spawnSync("unshare", ["-rm", "sh", "-c", `mount -t tmpfs -o ro none "${mnt}" && "${process.execPath}" --import tsx "${script}" "${mnt}"`], { cwd: ROOT, encoding: "utf8" });
    assert.equal(r.stdout.trim(), `cannot create directory ${mnt}/run/checkpoints: read-only file system; choose a writable location`, r.stderr);
  });

  test("a skipped training image is named by its file", async () => {
    const dir = await tmpDir("cf-crash-folder-");
    for (const [cls, n] of [
      ["a", 9],
      ["b", 8],
    ] as const) {
      mkdirSync(nodePath.join(dir, "train", cls), { recursive: true });
      mkdirSync(nodePath.join(dir, "test", cls), { recursive: true });
      for (let i = 0; i < n; i++) {
        const { pngBytes } = await import("./data-fixtures.ts");
        const png = await pngBytes(easyImage(cls === "a" ? 0 : 1, i));
        writeFileSync(nodePath.join(dir, "train", cls, `${i}.png`), png);
        writeFileSync(nodePath.join(dir, "test", cls, `${i}.png`), png);
      }
    }
    const corrupt = nodePath.join(dir, "train", "a", "broken.png");
    writeFileSync(corrupt, "not an image");
    const root = await tmpDir("cf-crash-folder-run-");
    const { text } = await captureStderr(() =>
      train(config({ steps: 1, batch_size: 16, eval_images: 4, data: { kind: "folder", path: dir }, vision: { image_size: 8, patch_size: 4, channels: 1, task: "mim" } }), root, {
        verbose: false,
      }),
    );
    assert.ok(text.includes(`warning: skipped unreadable training image ${corrupt} (`), text);
  });
});

function readOnlySkip(): string | false {
  const r = spawnSync("unshare", ["-rm", "sh", "-c", "mount -t tmpfs -o ro none /mnt 2>/dev/null || mount -t tmpfs -o ro none /tmp"], { encoding: "utf8" });
  return r.status === 0 ? false : "needs `unshare -rm` and a tmpfs mount (user namespaces) to make a read-only file system";
}
