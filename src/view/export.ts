/** `columnformer view --export DIR`: the page and the site as a folder any static host serves. */
import { copyFile, mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Site } from "./site.ts";

/** Copy the built page and every site file into `out` (created); returns the number of files. */
export async function exportSite(assets: string, site: Site, out: string): Promise<number> {
  await mkdir(out, { recursive: true });
  let count = 0;
  for (const name of await readdir(assets)) {
    await copyFile(path.join(assets, name), path.join(out, name));
    count++;
  }
  for (const [rel, entry] of site) {
    const dest = path.join(out, ...rel.split("/").map(decodeURIComponent));
    await mkdir(path.dirname(dest), { recursive: true });
    if ("data" in entry) await writeFile(dest, entry.data);
    else await copyFile(entry.file, dest);
    count++;
  }
  return count;
}
