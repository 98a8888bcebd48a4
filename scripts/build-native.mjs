#!/usr/bin/env node
/**
 * Build the native sheet kernels (binding.gyp -> build/Release/columnformer_native.node) with
 * node-gyp. Runs on `npm ci` / `npm install` ("install" script) and `npm run build:native`.
 *
 * The addon is optional: when the build fails (no compiler, no Node headers, an unsupported
 * platform) this prints one line, records the reason in build/native-build-error.txt (which
 * src/engine/native-sheet.ts reports) and exits 0, so installing never fails because of it and
 * training runs on jax-js. Set COLUMNFORMER_NATIVE=0 to skip the build.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const errorFile = path.join(root, "build", "native-build-error.txt");

function giveUp(reason) {
  const line = reason.replace(/\s+/g, " ").trim().slice(0, 300);
  mkdirSync(path.dirname(errorFile), { recursive: true });
  writeFileSync(errorFile, `${line}\n`);
  process.stderr.write(`columnformer: native addon not built (${line}); training runs on jax-js\n`);
  process.exit(0);
}

if (process.env.COLUMNFORMER_NATIVE === "0") giveUp("COLUMNFORMER_NATIVE=0");

const local = path.join(root, "node_modules", "node-gyp", "bin", "node-gyp.js");
const gyp = process.env.npm_config_node_gyp || (existsSync(local) ? local : null);
if (!gyp) giveUp("node-gyp is not installed");

// Headers: npm passes its nodedir setting (npm_config_nodedir) to node-gyp itself; run by hand,
// use the headers installed next to this node (e.g. /usr/include/node) rather than downloading them.
const args = [gyp, "rebuild"];
const prefix = path.join(path.dirname(process.execPath), "..");
if (!process.env.npm_config_nodedir && existsSync(path.join(prefix, "include", "node", "node_api.h"))) args.push(`--nodedir=${prefix}`);

const result = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
if (result.error) giveUp(`node-gyp could not run: ${result.error.message}`);
if (result.status !== 0) {
  const out = `${result.stderr ?? ""}\n${result.stdout ?? ""}`;
  const lines = out.split("\n").map((l) => l.trim());
  const compiler = lines.find((l) => /\berror\b/i.test(l) && !/^gyp /.test(l));
  const stack = lines.find((l) => /^gyp ERR! stack Error: /.test(l))?.replace(/^gyp ERR! stack Error: /, "node-gyp: ");
  const other = lines.find((l) => /^gyp ERR! (find|configure|build)/.test(l) && l.length > 24);
  const first = compiler ?? stack ?? other ?? `node-gyp exited with status ${result.status}`;
  if (process.env.COLUMNFORMER_NATIVE_VERBOSE) process.stderr.write(out);
  giveUp(first);
}
if (!existsSync(path.join(root, "build", "Release", "columnformer_native.node"))) giveUp("node-gyp finished but build/Release/columnformer_native.node is missing");
rmSync(errorFile, { force: true });
