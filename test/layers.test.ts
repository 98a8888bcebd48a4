/**
 * The folders of src/ are layers, and no import runs back up a layer: a file imports only from
 * its own folder or from a folder in a LOWER layer. Folders that share a layer do not import
 * each other. The check reads every relative import (static, `export ... from` and dynamic)
 * of every .ts file under src/.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as nodePath from "node:path";
import { describe, test } from "node:test";

/** Bottom to top. `index` is src/index.ts and the sub-path entry points beside it. */
const LAYERS: string[][] = [
  ["io"], // atomic files, user files, config files, the safetensors format
  ["engine"], // jax-js set-up, the native and WebGPU sheet engines, PRNGs, parameter trees
  ["geometry"], // column positions, areas, distances, connectivity samplers
  ["model", "viz"], // the Columnformer as pure functions; figures from plain arrays
  ["objectives", "optim"], // losses and penalties; AdamW, clipping, schedules
  ["checkpoint", "data"], // safetensors checkpoints; data sets, augmentation, batching
  ["train"], // the session, the compiled step, the training loop and run directory
  ["analysis"], // connectivity, topography and selectivity measurements of trained models
  ["workflows"], // prune, grow, progressive training, sweeps: many training runs
  ["viewer"], // the browser app: its page and the in-page compute (manifest format, forward passes)
  ["view"], // the `view` command's site builder and server, which ship the viewer and its manifests
  ["cli"], // the command line
  ["index"], // the public API
];

const SRC = nodePath.join(import.meta.dirname, "..", "src");

function layerOf(folder: string): number {
  const i = LAYERS.findIndex((names) => names.includes(folder));
  if (i < 0) throw new Error(`src/${folder}/ is in no layer: add it to LAYERS in test/layers.test.ts`);
  return i;
}

/** The top folder of a path under src/ ("index" for files directly in src/). */
function folderOf(file: string): string {
  const rel = nodePath.relative(SRC, file).split(nodePath.sep);
  return rel.length === 1 ? "index" : rel[0];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = nodePath.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

/** Relative import specifiers of a TypeScript source. */
export function relativeImports(source: string): string[] {
  const found: string[] = [];
  const patterns = [/\b(?:import|export)\s[^;]*?\sfrom\s*["'](\.[^"']*)["']/g, /\bimport\s*["'](\.[^"']*)["']/g, /\bimport\(\s*["'](\.[^"']*)["']\s*\)/g];
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]);
  return found;
}

/** Imports that run up a layer or sideways between folders of one layer, as "from -> to" lines. */
export function layerViolations(files: { path: string; source: string }[]): string[] {
  const bad: string[] = [];
  for (const { path, source } of files) {
    const from = folderOf(path);
    for (const spec of relativeImports(source)) {
      const target = nodePath.resolve(nodePath.dirname(path), spec);
      const to = folderOf(target);
      if (to === from) continue;
      if (layerOf(to) >= layerOf(from)) bad.push(`${nodePath.relative(SRC, path)} -> ${nodePath.relative(SRC, target)} (${from} may not import ${to})`);
    }
  }
  return bad;
}

describe("layers", () => {
  test("no import in src/ runs back up a layer", () => {
    const files = sourceFiles(SRC).map((p) => ({ path: p, source: readFileSync(p, "utf8") }));
    assert.ok(files.length > 50);
    const bad = layerViolations(files);
    assert.deepEqual(bad, [], `imports against the layers (bottom to top: ${LAYERS.map((l) => l.join("+")).join(" < ")}):\n${bad.join("\n")}`);
  });

  test("the check finds an import up a layer, sideways in a layer and a dynamic one", () => {
    const at = (p: string) => nodePath.join(SRC, p);
    const files = [
      { path: at("model/sheet.ts"), source: `import { x } from "./attention.ts";\nimport type { Y } from "../geometry/index.ts";` },
      { path: at("model/vision.ts"), source: `import { train } from "../train/trainer.ts";` },
      { path: at("checkpoint/a.ts"), source: `export { b } from "../data/b.ts";` },
      { path: at("geometry/c.ts"), source: `const m = await import("../cli/main.ts");` },
    ];
    assert.deepEqual(layerViolations(files), [
      "model/vision.ts -> train/trainer.ts (model may not import train)",
      "checkpoint/a.ts -> data/b.ts (checkpoint may not import data)",
      "geometry/c.ts -> cli/main.ts (geometry may not import cli)",
    ]);
  });
});
