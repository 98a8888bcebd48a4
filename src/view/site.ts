/**
 * The files `columnformer view` serves (and `--export` writes) for a run directory, a
 * checkpoint file or a sweep directory: manifest.json plus the checkpoint, held-out images and
 * analysis figures it points to, each under a URL path relative to the site root.
 * Problems (a missing checkpoint, a damaged log, unreadable data) are kept in the manifest, so
 * the page can show them; only a missing target is an error.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { buildRows, readSweepDir } from "../workflows/sweep/compare.ts";
import { readSafetensors } from "../io/safetensors.ts";
import { analysisDirOf, preferredCheckpoint, runDirPaths, runRootOfCheckpoint } from "../train/run-dir.ts";
import type { Manifest, RunManifest, SweepManifest } from "../viewer/compute/manifest.ts";
import { readSamples } from "./samples.ts";

/** One served file: bytes in memory or a file on disk. */
export type SiteFile = { data: Uint8Array; type: string } | { file: string; type: string };

/** The served tree: URL path (no leading slash) -> file. */
export type Site = Map<string, SiteFile>;

const JSON_TYPE = "application/json; charset=utf-8";

function json(value: unknown): SiteFile {
  return { data: new TextEncoder().encode(JSON.stringify(value)), type: JSON_TYPE };
}

function readJson(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function readLogLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === "object" && !Array.isArray(v)) out.push(v as Record<string, unknown>);
    } catch {
      // a torn last line (a run being written): skipped, as readLog does
    }
  }
  return out;
}

/** Scalars of a nested object as dotted keys (arrays skipped), at most `limit` of them. */
export function flattenScalars(value: unknown, prefix = "", out: Record<string, number> = {}, limit = 400): Record<string, number> {
  if (Object.keys(out).length >= limit || value === null || typeof value !== "object" || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === "number" && Number.isFinite(v)) out[key] = v;
    else if (v && typeof v === "object" && !Array.isArray(v)) flattenScalars(v, key, out, limit);
    if (Object.keys(out).length >= limit) break;
  }
  return out;
}

/** Add one run's files under `prefix` ("" or "runs/NAME/"); returns its manifest. */
async function addRun(site: Site, target: string, prefix: string, samplesCount: number): Promise<RunManifest> {
  const isDir = statSync(target).isDirectory();
  const runRoot = isDir ? target : runRootOfCheckpoint(target);
  const run = runRoot === null ? null : runDirPaths(runRoot);
  const checkpoint = isDir ? preferredCheckpoint(runDirPaths(target)) : target;
  const manifest: RunManifest = {
    kind: "run",
    name: isDir ? path.basename(path.resolve(target)) : `${runRoot ? `${path.basename(path.resolve(runRoot))}/` : ""}${path.basename(target, ".safetensors")}`,
    checkpoint: null,
    checkpointPath: checkpoint,
    samples: null,
    samplesNote: null,
    log: run ? readLogLines(run.logPath) : [],
    summary: run ? readJson(run.summaryPath) : null,
    analysis: null,
    figures: [],
    problem: null,
  };
  if (!checkpoint) {
    manifest.problem = `${target} has no checkpoint yet (checkpoints/best, last or step-*.safetensors)`;
    return manifest;
  }
  // read the checkpoint here too: a damaged file is reported in the terminal and in the page
  let file: Awaited<ReturnType<typeof readSafetensors>>;
  try {
    file = await readSafetensors(checkpoint);
    if (file.metadata.vision === undefined) throw new Error(`${checkpoint}: a bare sheet checkpoint (no "vision" metadata); view a checkpoint written by columnformer train`);
  } catch (e) {
    manifest.problem = (e as Error).message;
    return manifest;
  }
  site.set(`${prefix}checkpoint.safetensors`, { file: checkpoint, type: "application/octet-stream" });
  manifest.checkpoint = "checkpoint.safetensors";
  // held-out images of the run's own data (the page validates the tensors itself)
  try {
    const vision = JSON.parse(file.metadata.vision ?? "null") as { image_size: number; channels: 1 | 3 } | null;
    if (!vision) throw new Error(`${checkpoint} has no "vision" metadata`);
    const trainConfig = JSON.parse(file.metadata.train_config ?? "null") as unknown;
    site.set(`${prefix}samples.json`, json(await readSamples(trainConfig, vision.image_size, vision.channels, samplesCount)));
    manifest.samples = "samples.json";
  } catch (e) {
    manifest.samplesNote = `held-out images unavailable: ${(e as Error).message}`;
  }
  const analysisDir = analysisDirOf(checkpoint);
  const analysis = readJson(path.join(analysisDir, "analysis.json"));
  if (analysis) {
    const { options: _options, definitions: _definitions, ...results } = analysis; // the settings and the glossary are not results
    manifest.analysis = flattenScalars(results);
  }
  const figDir = path.join(analysisDir, "figures");
  if (existsSync(figDir)) {
    for (const name of readdirSync(figDir).filter((n) => n.endsWith(".png")).sort()) {
      site.set(`${prefix}figures/${name}`, { file: path.join(figDir, name), type: "image/png" });
      manifest.figures.push({ name: name.replace(/\.png$/, ""), url: `figures/${name}` });
    }
  }
  return manifest;
}

function isSweepDir(dir: string): boolean {
  if (existsSync(path.join(dir, "sweep.json"))) return true;
  const run = runDirPaths(dir);
  if (existsSync(run.configPath) || existsSync(run.checkpointsDir)) return false;
  return readdirSync(dir, { withFileTypes: true }).some((d) => d.isDirectory() && existsSync(runDirPaths(path.join(dir, d.name)).configPath));
}

/** Build the site for a run directory, a checkpoint file or a sweep directory. */
export async function buildSite(target: string, options: { samples?: number } = {}): Promise<{ site: Site; manifest: Manifest }> {
  if (!existsSync(target)) throw new Error(`${target} does not exist (give a run directory, a .safetensors checkpoint or a sweep directory)`);
  const site: Site = new Map();
  const samples = options.samples ?? 48;
  let manifest: Manifest;
  if (statSync(target).isDirectory() && isSweepDir(target)) {
    const listing = readSweepDir(target);
    const rows = buildRows(listing.runs);
    const columns = ["finished", "steps", "parameters", "accuracy", "mim_loss", "eval_loss", "probe_accuracy", "wiring_cost", "mean_attention_distance", "train_seconds"];
    const sweep: SweepManifest = { kind: "sweep", name: listing.name, columns, runs: [] };
    for (const row of rows) {
      const prefix = `runs/${encodeURIComponent(row.name)}/`;
      const run = await addRun(site, path.join(listing.dir, row.name), prefix, samples);
      site.set(`${prefix}manifest.json`, json(run));
      const r = row as unknown as Record<string, unknown>;
      const values = Object.fromEntries(columns.map((c) => [c, typeof r[c] === "number" || typeof r[c] === "string" ? (r[c] as number | string) : typeof r[c] === "boolean" ? String(r[c]) : null]));
      sweep.runs.push({ name: row.name, manifest: `${prefix}manifest.json`, finished: row.finished, values });
    }
    manifest = sweep;
  } else {
    manifest = await addRun(site, target, "", samples);
  }
  site.set("manifest.json", json(manifest));
  return { site, manifest };
}
