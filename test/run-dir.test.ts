import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { test } from "node:test";
import { formatDuration, Progress } from "../src/train/progress.ts";
import {
  appendLog,
  checkpointPath,
  createRunDir,
  listStepCheckpoints,
  openRunDir,
  optimizerPath,
  readLog,
  truncateLogAfter,
  writeJsonAtomic,
} from "../src/train/run-dir.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "cf-rundir-"));

test("createRunDir writes config.json, accepts the same config, refuses a different run", async () => {
  const root = path.join(tmp, "a", "run");
  const config = { model: { dim: 8, depth: 2 }, lr: 0.001, seed: 1 };
  const dir = await createRunDir(root, config);
  assert.equal(dir.root, path.resolve(root));
  assert.equal(dir.configPath, path.join(dir.root, "config.json"));
  assert.equal(dir.logPath, path.join(dir.root, "log.jsonl"));
  assert.equal(dir.checkpointsDir, path.join(dir.root, "checkpoints"));
  const text = readFileSync(dir.configPath, "utf8");
  assert.equal(text, `${JSON.stringify(config, null, 2)}\n`);

  // Same config, other key order: fine, and the file is unchanged.
  await createRunDir(root, { seed: 1, lr: 0.001, model: { depth: 2, dim: 8 } });
  assert.equal(readFileSync(dir.configPath, "utf8"), text);

  // once a step is logged, another config is refused and the old one kept
  await appendLog(dir, { step: 1, loss: 1 });
  await assert.rejects(createRunDir(root, { ...config, lr: 0.01 }), /different run/);
  assert.equal(readFileSync(dir.configPath, "utf8"), text, "old config untouched");

  const opened = await openRunDir(root);
  assert.deepEqual(opened.config, config);
  assert.deepEqual(opened.dir, dir);
});

test("openRunDir names the missing config.json", async () => {
  const root = mkdtempSync(path.join(tmp, "empty-"));
  await assert.rejects(openRunDir(root), (err: Error) => {
    assert.match(err.message, /not a run directory/);
    assert.ok(err.message.includes(path.join(root, "config.json")));
    return true;
  });
  writeFileSync(path.join(root, "config.json"), "{oops");
  await assert.rejects(openRunDir(root), /invalid JSON/);
});

test("log: append, read past a torn last line, append after it, truncate", async () => {
  const dir = await createRunDir(path.join(tmp, "log-run"), { x: 1 });
  assert.deepEqual(await readLog(dir), []);
  await Promise.all([1, 2, 3].map((step) => appendLog(dir, { step, loss: 1 / step, split: "train" })));
  assert.deepEqual(
    (await readLog(dir)).map((r) => r.step),
    [1, 2, 3],
  );
  // Simulate a crash mid-append.
  appendFileSync(dir.logPath, '{"step": 4, "lo');
  assert.deepEqual(
    (await readLog(dir)).map((r) => r.step),
    [1, 2, 3],
  );
  // The next append cuts the torn fragment rather than gluing onto it.
  await appendLog(dir, { step: 5, loss: Number.NaN });
  const recs = await readLog(dir);
  assert.deepEqual(
    recs.map((r) => r.step),
    [1, 2, 3, 5],
  );
  assert.equal(recs[3].loss, null);
  assert.ok(readFileSync(dir.logPath, "utf8").endsWith('{"step":5,"loss":null}\n'));

  // An unterminated but complete last line is still read.
  appendFileSync(dir.logPath, '{"step":6}');
  assert.deepEqual(
    (await readLog(dir)).map((r) => r.step),
    [1, 2, 3, 5, 6],
  );

  await truncateLogAfter(dir, 3);
  assert.deepEqual(await readLog(dir), [
    { step: 1, loss: 1, split: "train" },
    { step: 2, loss: 0.5, split: "train" },
    { step: 3, loss: 1 / 3, split: "train" },
  ]);
  assert.ok(readFileSync(dir.logPath, "utf8").endsWith("\n"));

  // A corrupt line in the middle is an error, not silently skipped.
  appendFileSync(dir.logPath, "garbage\n{\"step\":9}\n");
  await assert.rejects(readLog(dir), /log\.jsonl:4: invalid JSON/);
});

test("checkpoint names, optimizer siblings and step listing", async () => {
  const dir = await createRunDir(path.join(tmp, "ckpt-run"), { y: 2 });
  assert.deepEqual(listStepCheckpoints(dir), []);
  const rel = (p: string): string => path.relative(dir.root, p);
  assert.equal(rel(checkpointPath(dir, "last")), path.join("checkpoints", "last.safetensors"));
  assert.equal(rel(checkpointPath(dir, "best")), path.join("checkpoints", "best.safetensors"));
  assert.equal(rel(checkpointPath(dir, 100)), path.join("checkpoints", "step-000100.safetensors"));
  assert.equal(rel(checkpointPath(dir, 0)), path.join("checkpoints", "step-000000.safetensors"));
  assert.equal(rel(checkpointPath(dir, 1234567)), path.join("checkpoints", "step-1234567.safetensors"));
  assert.equal(rel(optimizerPath(dir, "last")), path.join("checkpoints", "last.opt.safetensors"));
  assert.equal(rel(optimizerPath(dir, 100)), path.join("checkpoints", "step-000100.opt.safetensors"));
  assert.throws(() => checkpointPath(dir, -1), RangeError);
  assert.throws(() => checkpointPath(dir, 1.5), RangeError);

  for (const p of [
    checkpointPath(dir, 200),
    checkpointPath(dir, 100),
    optimizerPath(dir, 100),
    checkpointPath(dir, "last"),
    optimizerPath(dir, 300), // optimizer state alone is not a checkpoint
    checkpointPath(dir, 1000),
  ]) {
    writeFileSync(p, "x");
  }
  assert.deepEqual(listStepCheckpoints(dir), [100, 200, 1000]);
});

test("writeJsonAtomic writes pretty JSON", async () => {
  const file = path.join(tmp, "sub", "summary.json");
  await writeJsonAtomic(file, { best: { step: 3, loss: 0.25 }, inf: Infinity });
  assert.equal(readFileSync(file, "utf8"), '{\n  "best": {\n    "step": 3,\n    "loss": 0.25\n  },\n  "inf": null\n}\n');
});

class Collect extends Writable {
  text = "";
  isTTY?: boolean;
  columns?: number;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.text += chunk.toString();
    cb();
  }
}

test("formatDuration", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(12.4), "12s");
  assert.equal(formatDuration(59.6), "1m00s");
  assert.equal(formatDuration(185), "3m05s");
  assert.equal(formatDuration(3720), "1h02m");
  assert.equal(formatDuration(3600 * 30 + 59), "30h00m");
  assert.equal(formatDuration(-5), "0s");
  assert.equal(formatDuration(Number.NaN), "?");
});

test("Progress on a non-TTY stream prints short plain lines with step/total and ETA", () => {
  const out = new Collect();
  let now = 0;
  const p = new Progress(100, { stream: out, label: "train", now: () => now });
  for (let step = 1; step <= 100; step++) {
    now += 1000; // 1 s per step
    p.update(step, { loss: 1 / step, "img/s": 64 });
  }
  p.done("finished");
  p.update(5, { loss: 1 }); // ignored after done
  const lines = out.text.split("\n").filter((l) => l !== "");
  // Every 10 s: steps 1, 11, ..., 91; then the final line and the message.
  assert.equal(lines.length, 12, out.text);
  assert.ok(!out.text.includes("\r"));
  assert.match(lines[0], /^train 1\/100 \[/);
  assert.match(lines[0], /ETA \?$/);
  assert.match(lines[1], /^train 11\/100 \[.*\] {2}11% \| loss 0\.09091 \| img\/s 64 \| ETA 1m29s$/);
  assert.match(lines[9], /^train 91\/100 .* ETA 9s$/);
  assert.match(lines[10], /^train 100\/100 \[█{20}\] 100% \| loss 0\.01 \| img\/s 64 \| took 1m40s$/);
  assert.equal(lines[11], "finished");
});

test("Progress on a TTY redraws one line with \\r, throttled", () => {
  const out = new Collect();
  out.isTTY = true;
  out.columns = 60;
  let now = 0;
  const p = new Progress(10, { stream: out, now: () => now });
  for (let step = 1; step <= 10; step++) {
    now += 50; // 4 steps per 200 ms interval
    p.update(step, { loss: 0.5 });
  }
  assert.ok(!out.text.includes("\n"));
  const draws = out.text.split("\r").filter((s) => s !== "");
  assert.equal(draws.length, 3); // steps 1, 5, 9
  assert.ok(draws.every((d) => d.length - "\x1b[K".length <= 59));
  assert.match(draws[1], /^5\/10 /);
  p.done();
  assert.ok(out.text.endsWith("\x1b[K\n"));
  assert.match(out.text, /\r10\/10 /);
});
