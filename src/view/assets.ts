/** Where the built page (dist/viewer-app: index.html, app.js, style.css) is found. */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The bundle folder: env COLUMNFORMER_VIEWER_ASSETS, else dist/viewer-app of this package
 * (the same folder from src/view/ under tsx and from dist/view/ when built).
 * @throws When the bundle has not been built.
 */
export function viewerAssetsDir(): string {
  const env = process.env.COLUMNFORMER_VIEWER_ASSETS;
  const dir = env && env !== "" ? path.resolve(env) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "viewer-app");
  if (!existsSync(path.join(dir, "index.html")) || !existsSync(path.join(dir, "app.js"))) {
    throw new Error(`the viewer page is not built (${dir} has no index.html / app.js): run npm run build`);
  }
  return dir;
}
