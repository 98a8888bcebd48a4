#!/usr/bin/env node
/**
 * Bundle the browser viewer (src/viewer/page/main.ts) with esbuild into dist/viewer-app/
 * (or the directory given as the first argument): app.js, index.html, style.css.
 *
 * The page runs the model's OWN code (src/model/*.ts, src/checkpoint/*.ts) in the browser:
 * - every import of src/engine/jax.ts (which installs Node globals before jax-js) is
 *   redirected to src/viewer/page/jax-browser.ts (plain "@jax-js/jax");
 * - src/data/index.ts (reached through the training config's schema) is replaced by the data
 *   spec alone (src/data/spec.ts), leaving the Node-only image readers out;
 * - src/viz/png.ts (the PNG writer, on sharp) becomes a stub with the same export names;
 * - Node built-ins reached through shared modules (node:fs in the safetensors reader, ...)
 *   become stubs whose exports throw when called: the page never calls them.
 * Nothing is fetched: esbuild and every input come from node_modules and the source tree.
 */
import { build } from "esbuild";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { builtinModules, createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = path.resolve(process.argv[2] ?? path.join(root, "dist", "viewer-app"));
const page = path.join(root, "src", "viewer", "page");
const require = createRequire(import.meta.url);
/** Project modules that need Node.js and are never called in the page. */
const NODE_ONLY = [path.join(root, "src", "viz", "png.ts")];

/** src/engine/jax.ts -> the browser's jax-js entry; node:* -> throwing stubs. */
const browserSeams = {
  name: "columnformer-browser-seams",
  setup(b) {
    const jaxEntry = path.join(root, "src", "engine", "jax.ts");
    b.onResolve({ filter: /jax\.ts$/ }, (args) => (path.resolve(args.resolveDir, args.path) === jaxEntry ? { path: path.join(page, "jax-browser.ts") } : undefined));
    // project modules that only write files (the PNG encoder, on sharp): stubs with the same export names
    b.onResolve({ filter: /png\.ts$/ }, (args) => {
      const file = path.resolve(args.resolveDir, args.path);
      return NODE_ONLY.includes(file) ? { path: file, namespace: "module-stub" } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: "module-stub" }, async (args) => {
      const text = await readFile(args.path, "utf8");
      const names = [...text.matchAll(/^export (?:async )?(?:function|const|class) (\w+)/gm)].map((m) => m[1]);
      const stub = `function unavailable() { throw new Error(${JSON.stringify(`${path.relative(root, args.path)} is not available in the browser`)}); }`;
      return { contents: `${stub}\n${names.map((k) => `export const ${k} = unavailable;`).join("\n")}\n`, loader: "js" };
    });
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: "node-stub" }));
    b.onResolve({ filter: /^[a-z_]+(\/[a-z_]+)?$/ }, (args) => (builtinModules.includes(args.path) ? { path: `node:${args.path}`, namespace: "node-stub" } : undefined));
    // the training config's schema needs the data SPEC only, not the data readers (sharp, parquet, tar)
    b.onResolve({ filter: /data[\\/]index\.ts$/ }, () => ({ path: path.join(root, "src", "data", "spec.ts") }));
    b.onLoad({ filter: /.*/, namespace: "node-stub" }, (args) => {
      const names = Object.keys(require(args.path.slice(5))).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== "default");
      const stub = `function unavailable() { throw new Error(${JSON.stringify(`${args.path} is not available in the browser`)}); }`;
      const lines = names.map((k) => `export const ${k} = unavailable;`);
      return { contents: `${stub}\n${lines.join("\n")}\nexport default { ${names.map((k) => `${k}: unavailable`).join(", ")} };\n`, loader: "js" };
    });
  },
};

await mkdir(out, { recursive: true });
const result = await build({
  entryPoints: [path.join(page, "main.ts")],
  outfile: path.join(out, "app.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: process.env.VIEWER_NO_MINIFY !== "1",
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
  plugins: [browserSeams],
  metafile: true,
});
await copyFile(path.join(page, "index.html"), path.join(out, "index.html"));
await copyFile(path.join(page, "style.css"), path.join(out, "style.css"));
if (process.env.VIEWER_METAFILE) await (await import("node:fs/promises")).writeFile(process.env.VIEWER_METAFILE, JSON.stringify(result.metafile));
const bytes = Object.values(result.metafile.outputs).reduce((s, o) => s + o.bytes, 0);
console.log(`viewer bundle: ${path.relative(process.cwd(), out) || "."} (${(bytes / 1024).toFixed(0)} KiB with source map)`);
