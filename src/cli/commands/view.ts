/** `columnformer view`: an interactive viewer of a trained run, the model running in the browser. */
import { spawn } from "node:child_process";
import path from "node:path";
import type { Command } from "commander";
import { viewerAssetsDir } from "../../view/assets.ts";
import { exportSite } from "../../view/export.ts";
import { startViewerServer } from "../../view/server.ts";
import { buildSite } from "../../view/site.ts";

function parsePort(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be an integer in 0..65535, got "${raw}"`);
  return n;
}

function parseCount(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`--samples must be an integer in 1..1000, got "${raw}"`);
  return n;
}

/** Open `url` in the desktop's browser (best effort: xdg-open / open). */
function openBrowser(url: string): void {
  const cmd = process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  const child = spawn(cmd, [url], { stdio: "ignore", detached: true });
  child.on("error", () => console.error(`could not start ${cmd}; open ${url} yourself`));
  child.unref();
}

export function registerView(program: Command): void {
  program
    .command("view")
    .description("interactive viewer: serve a run (or a checkpoint, or a sweep) on 127.0.0.1; the page runs the model in the browser")
    .argument("<run-or-checkpoint-or-sweep>", "a run directory (checkpoints/best, else last), a .safetensors checkpoint or a sweep directory")
    .option("--port <p>", "port (0: a free one)", parsePort, 0)
    .option("--open", "open the page in the default browser")
    .option("--export <dir>", "write a static site (page + model + data) to DIR instead of serving")
    .option("--samples <n>", "held-out images offered in the page", parseCount, 48)
    .option("--threads", "let jax-js run Wasm kernels on several threads in the page (cross-origin isolation; meant for large sheets, slows tiny ones)")
    .action(async (target: string, opts: { port: number; open?: boolean; export?: string; samples: number; threads?: boolean }) => {
      const assets = viewerAssetsDir();
      const { site, manifest } = await buildSite(target, { samples: opts.samples });
      if (manifest.kind === "run" && manifest.problem) console.error(`columnformer view: warning: ${manifest.problem}`);
      if (manifest.kind === "run" && manifest.samplesNote) console.error(`columnformer view: note: ${manifest.samplesNote}`);
      if (opts.export) {
        const count = await exportSite(assets, site, path.resolve(opts.export));
        console.log(`wrote ${count} files to ${opts.export} (serve the folder with any static web server)`);
        return;
      }
      const server = await startViewerServer(assets, site, opts.port, { threads: opts.threads });
      console.log(`columnformer view: ${manifest.kind} ${manifest.name} at ${server.url}  (Ctrl-C stops)`);
      if (opts.open) openBrowser(server.url);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void server.close().then(resolve);
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
}
