/**
 * The local web server of `columnformer view`: the page's static files plus the run's site
 * (see site.ts), bound to 127.0.0.1 only. With `threads`, responses are cross-origin isolated
 * (COOP/COEP), so jax-js can run its Wasm kernels on several threads in the page (meant for
 * large sheets, not measured; for the tiny preset one thread is 3-4x faster: the worker hand-offs dominate).
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import type { Site } from "./site.ts";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".png": "image/png",
  ".json": "application/json; charset=utf-8",
};

/** A running viewer server. */
export interface ViewerServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serve `assets` (the built page) and `site` on 127.0.0.1:`port` (0 = a free port). */
export function startViewerServer(assets: string, site: Site, port = 0, options: { threads?: boolean } = {}): Promise<ViewerServer> {
  const common: Record<string, string> = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...(options.threads
      ? { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp", "Cross-Origin-Resource-Policy": "same-origin" }
      : {}),
  };
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, common).end();
      return;
    }
    let rel: string;
    try {
      rel = decodeURIComponent(new URL(req.url ?? "/", "http://127.0.0.1").pathname).replace(/^\/+/, "");
    } catch {
      res.writeHead(400, common).end();
      return;
    }
    if (rel === "") rel = "index.html";
    const entry = site.get(rel) ?? site.get(rel.split("/").map(encodeURIComponent).join("/"));
    if (entry) {
      if ("data" in entry) {
        res.writeHead(200, { ...common, "Content-Type": entry.type, "Content-Length": entry.data.byteLength }).end(req.method === "HEAD" ? undefined : entry.data);
        return;
      }
      if (!existsSync(entry.file)) {
        res.writeHead(404, { ...common, "Content-Type": "text/plain" }).end(`${entry.file} is gone`);
        return;
      }
      res.writeHead(200, { ...common, "Content-Type": entry.type, "Content-Length": statSync(entry.file).size });
      if (req.method === "HEAD") res.end();
      else createReadStream(entry.file).pipe(res);
      return;
    }
    const file = path.join(assets, path.normalize(rel));
    if (!file.startsWith(assets + path.sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { ...common, "Content-Type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { ...common, "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream" });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      const actual = typeof address === "object" && address ? address.port : port;
      resolve({
        url: `http://127.0.0.1:${actual}/`,
        port: actual,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
