/**
 * The viewer page: reads manifest.json (a run or a sweep), starts jax-js and shows the run
 * (run-view.ts) or the sweep's table (sweep-view.ts). Errors end in the page's error box.
 */
import type { Manifest, RunManifest } from "../compute/manifest.ts";
import { setStatus, showError } from "./dom.ts";
import { initBrowserEngine } from "./engine.ts";
import { runView, type ViewerHook } from "./run-view.ts";
import { sweepView } from "./sweep-view.ts";
import { readViewState, writeViewState } from "./url-state.ts";

declare global {
  interface Window {
    columnformerViewer: ViewerHook;
  }
}

async function loadJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not load ${url} (HTTP ${res.status})`);
  return (await res.json()) as T;
}

async function main(): Promise<void> {
  const hook = { ready: false, forwards: 0, device: "" } as ViewerHook;
  window.columnformerViewer = hook;
  const app = document.getElementById("app")!;
  const manifest = await loadJson<Manifest>("manifest.json");
  const state = readViewState();
  if (manifest.kind === "sweep" && state.run === null) {
    document.getElementById("run-name")!.textContent = manifest.name;
    app.append(
      sweepView(manifest, (run) => {
        writeViewState({ ...state, run });
        location.reload();
      }),
    );
    setStatus(`sweep: ${manifest.runs.length} runs — click one to open it`);
    hook.ready = true;
    return;
  }
  let run: RunManifest;
  let base = "";
  if (manifest.kind === "sweep") {
    const ref = manifest.runs.find((r) => r.name === state.run);
    if (!ref) throw new Error(`the sweep has no run named ${JSON.stringify(state.run)}`);
    base = ref.manifest.replace(/manifest\.json$/, "");
    run = await loadJson<RunManifest>(ref.manifest);
  } else run = manifest;
  setStatus("starting jax-js…");
  const device = await initBrowserEngine(new URLSearchParams(location.search).get("backend"));
  hook.device = device;
  await runView(app, run, base, device, hook);
}

main().catch((e: unknown) => {
  showError((e as Error).message ?? String(e));
  setStatus("error");
});
