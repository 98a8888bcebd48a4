import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { before, describe, test } from "node:test";
import { loadSheetCheckpoint } from "../src/checkpoint/checkpoint.ts";
import { readSafetensors, writeSafetensors } from "../src/io/safetensors.ts";
import { initEngine } from "../src/engine/engine.ts";
import { numpy as np } from "../src/engine/jax.ts";
import { sheetApply } from "../src/model/sheet.ts";
import { assertClose } from "./assertions.ts";

const run = promisify(execFile);
const CLI = path.join(import.meta.dirname, "..", "src", "cli", "main.ts");
const dir = mkdtempSync(path.join(os.tmpdir(), "cf-cli-"));

/** Run the CLI; resolves with exit code, stdout and stderr. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliWithEnv({}, ...args);
}

/** Run the CLI with extra environment variables (undefined removes one). */
async function cliWithEnv(extra: Record<string, string | undefined>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string | undefined> = { ...process.env, COLUMNFORMER_DEBUG: "", ...extra };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", CLI, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const configPath = path.join(dir, "sheet.json");
writeFileSync(configPath, JSON.stringify({ geometry: { kind: "torus", height: 3, width: 3 }, dim: 4, qk_dim: 2, mlp_dim: 6, depth: 2 }));
const ckpt = path.join(dir, "model.safetensors");

before(async () => {
  await initEngine();
  const r = await cli("init", "--config", configPath, "--seed", "7", "--out", ckpt);
  assert.equal(r.code, 0, r.stderr);
});

describe("columnformer init / forward / info", () => {
  test("init: the same seed gives a byte-identical file, another seed does not", async () => {
    const again = path.join(dir, "again.safetensors");
    const other = path.join(dir, "other.safetensors");
    assert.equal((await cli("init", "--config", configPath, "--seed", "7", "--out", again)).code, 0);
    assert.equal((await cli("init", "--config", configPath, "--seed", "8", "--out", other)).code, 0);
    assert.ok(readFileSync(ckpt).equals(readFileSync(again)));
    assert.ok(!readFileSync(ckpt).equals(readFileSync(other)));
  });

  test("forward: writes final states and every step's attention, equal to the library", async () => {
    const input = path.join(dir, "in.safetensors");
    const output = path.join(dir, "out.safetensors");
    const values = new Float32Array(2 * 9 * 4).map((_, i) => Math.cos(i));
    await writeSafetensors(input, { x: { dtype: "F32", shape: [2, 9, 4], data: values } });
    const { params, config } = await loadSheetCheckpoint(ckpt);
    const ref = sheetApply(params, np.array(values).reshape([2, 9, 4]), config);
    const expected = { x: (await ref.x.data()) as Float32Array, attn: (await ref.attn.data()) as Float32Array };
    // --backend jax runs the library's own code (bit-identical); the default (native where built)
    // computes the same to rounding
    for (const backend of ["jax", "default"]) {
      const r = await cli(...(backend === "jax" ? ["--backend", "jax"] : []), "forward", "--checkpoint", ckpt, "--input", input, "--output", output);
      assert.equal(r.code, 0, r.stderr);
      const out = await readSafetensors(output);
      assert.deepEqual(out.tensors.x.shape, [2, 9, 4]);
      assert.deepEqual(out.tensors.attn.shape, [2, 2, 9, 9]);
      if (backend === "jax") {
        assert.deepEqual(out.tensors.x.data, expected.x);
        assert.deepEqual(out.tensors.attn.data, expected.attn);
      } else {
        assertClose(out.tensors.x.data as Float32Array, expected.x, 1e-5, "x");
        assertClose(out.tensors.attn.data as Float32Array, expected.attn, 1e-5, "attn");
      }
    }
  });

  test("without the native addon, one line says why and the command runs on jax-js; --backend native then fails clearly", async () => {
    const input = path.join(dir, "in-fallback.safetensors");
    const output = path.join(dir, "out-fallback.safetensors");
    await writeSafetensors(input, { x: { dtype: "F32", shape: [1, 9, 4], data: new Float32Array(36).fill(0.5) } });
    const env = { COLUMNFORMER_NATIVE_ADDON: path.join(dir, "no-such-addon.node"), COLUMNFORMER_BACKEND: undefined };
    const args = ["forward", "--checkpoint", ckpt, "--input", input, "--output", output];
    const ok = await cliWithEnv(env, ...args);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /^columnformer: the native addon is not available: .*; running on jax-js$/m);
    const bad = await cliWithEnv(env, "--backend", "native", ...args);
    assert.notEqual(bad.code, 0, "--backend native without the addon must fail");
    assert.match(bad.stderr.trim(), /^columnformer: error: backend native was requested but the native addon is not available: .*use --backend jax$/);
  });

  test("info: config, parameter count and geometry", async () => {
    const r = await cli("info", ckpt);
    assert.equal(r.code, 0, r.stderr);
    // by hand: N=9, D=4, qk=2, mlp=6: norms 4*9*4=144, q 9*2*4+9*2=90, k 72, bias 81, fc1 9*6*4+9*6=270, fc2 216
    assert.match(r.stdout, /parameters\s+873\b/);
    assert.match(r.stdout, /torus 3x3/);
    assert.match(r.stdout, /depth 2/);
    const json = JSON.parse((await cli("info", ckpt, "--json")).stdout);
    assert.equal(json.parameters, 873);
  });

  test("--help exists for every command", async () => {
    for (const cmd of ["init", "forward", "info"]) {
      const r = await cli(cmd, "--help");
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Usage: columnformer/);
    }
  });
});

describe("bad input: one clear line, non-zero exit, no partial output", () => {
  const cases: [string, () => Promise<string[]>, RegExp][] = [
    ["missing checkpoint", async () => ["info", path.join(dir, "nope.safetensors")], /nope\.safetensors.*no such file/],
    [
      "unknown config field",
      async () => {
        const p = path.join(dir, "unknown.json");
        writeFileSync(p, JSON.stringify({ geometry: { kind: "grid", height: 2, width: 2 }, dim: 4, depht: 3 }));
        return ["init", "--config", p, "--out", path.join(dir, "unknown.safetensors")];
      },
      /depht/,
    ],
    [
      "invalid geometry",
      async () => {
        const p = path.join(dir, "badgeom.json");
        writeFileSync(p, JSON.stringify({ geometry: { kind: "grid", height: 0, width: 2 } }));
        return ["init", "--config", p, "--out", path.join(dir, "badgeom.safetensors")];
      },
      /height/,
    ],
    [
      "wrong input shape",
      async () => {
        const p = path.join(dir, "shape.safetensors");
        await writeSafetensors(p, { x: { dtype: "F32", shape: [1, 8, 4], data: new Float32Array(32) } });
        return ["forward", "--checkpoint", ckpt, "--input", p, "--output", path.join(dir, "shape-out.safetensors")];
      },
      /\[1, 8, 4\].*expected \[batch, 9, 4\]/,
    ],
    [
      "NaN in input",
      async () => {
        const p = path.join(dir, "nan.safetensors");
        const data = new Float32Array(36);
        data[5] = NaN;
        await writeSafetensors(p, { x: { dtype: "F32", shape: [1, 9, 4], data } });
        return ["forward", "--checkpoint", ckpt, "--input", p, "--output", path.join(dir, "nan-out.safetensors")];
      },
      /non-finite value \(NaN\) at flat index 5/,
    ],
  ];
  for (const [name, args, pattern] of cases) {
    test(name, async () => {
      const argv = await args();
      const r = await cli(...argv);
      assert.notEqual(r.code, 0);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
      assert.match(lines[0], pattern);
      const out = argv[argv.indexOf(argv.includes("--out") ? "--out" : "--output") + 1];
      if (argv.includes("--out") || argv.includes("--output")) assert.ok(!existsSync(out), `no output file ${out}`);
    });
  }
});
