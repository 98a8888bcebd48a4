/**
 * The public API: the core entry point stays small, and every sub-path in package.json's
 * "exports" has a source index that loads and exports what its folder is for.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

const root = path.resolve(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { exports: Record<string, { import: string; types: string }> };

/** "./dist/analysis/index.js" -> "src/analysis/index.ts" */
const sourceOf = (built: string): string => path.join(root, built.replace(/^\.\/dist\//, "src/").replace(/\.js$/, ".ts"));

test("every exported sub-path has a source index that loads", async () => {
  const subpaths = Object.keys(pkg.exports);
  assert.ok(subpaths.length >= 10, `expected the core and its sub-paths, got ${subpaths.join(", ")}`);
  for (const [subpath, entry] of Object.entries(pkg.exports)) {
    const src = sourceOf(entry.import);
    assert.ok(existsSync(src), `${subpath}: ${src} does not exist`);
    assert.equal(entry.types, entry.import.replace(/\.js$/, ".d.ts"), `${subpath}: types beside the module`);
    const mod = (await import(pathToFileURL(src).href)) as Record<string, unknown>;
    assert.ok(Object.values(mod).some((v) => typeof v === "function"), `${subpath} exports no function`);
    for (const name of Object.keys(mod)) assert.ok(!/Table$/.test(name), `${subpath} exports a CLI table formatter: ${name}`);
  }
});

test("the core exports the few names a first program needs, and not CLI formatting", async () => {
  const core = (await import(pathToFileURL(path.join(root, "src/index.ts")).href)) as Record<string, unknown>;
  const jax = (await import("@jax-js/jax")) as Record<string, unknown>;
  const own = Object.keys(core).filter((k) => !(k in jax));
  for (const name of ["initEngine", "buildGeometry", "resolveSheetConfig", "initSheet", "sheetApply", "wiringCost", "train", "resume", "linearProbe"]) {
    assert.ok(own.includes(name), `core is missing ${name}`);
  }
  assert.ok(own.length <= 30, `the core exports ${own.length} names of its own (${own.join(", ")}); move the rest to a sub-path`);
  for (const name of own) assert.ok(!/table|format|print/i.test(name), `core exports a formatting helper: ${name}`);
});
