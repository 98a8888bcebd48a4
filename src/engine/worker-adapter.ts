/**
 * Node.js adapter for jax-js's Wasm worker pool.
 *
 * jax-js parallelises Wasm kernels over Web Workers created from Blob URLs
 * (`new Worker(URL.createObjectURL(blob))`). Node has `worker_threads` but no
 * Web `Worker`, so this installs a minimal `globalThis.Worker` that boots a
 * `worker_threads` worker, sends it the Blob's source, and maps the
 * `onmessage` / `postMessage` protocol both ways. Shared `WebAssembly.Memory`
 * and compiled `WebAssembly.Module`s cross the boundary unchanged.
 */
import { resolveObjectURL } from "node:buffer";
import { Worker as NodeWorker } from "node:worker_threads";

// Runs inside the worker thread: emulate the Web Worker global scope, wait for
// the script source as the first message, evaluate it, then forward messages.
const BOOTSTRAP = `
const { parentPort } = require("node:worker_threads");
globalThis.self = globalThis;
globalThis.postMessage = (message) => parentPort.postMessage(message);
let booted = false;
parentPort.on("message", (message) => {
  if (!booted) {
    booted = true;
    (0, eval)(message.source);
    return;
  }
  self.onmessage({ data: message });
});
`;

interface WebMessageEvent {
  data: unknown;
}

interface WebErrorEvent {
  message: string;
}

/** The subset of the Web Worker API that jax-js uses. */
export class NodeWebWorker {
  onmessage: ((event: WebMessageEvent) => void) | null = null;
  onerror: ((event: WebErrorEvent) => void) | null = null;
  readonly #thread: NodeWorker;
  /** Messages posted before the script source reached the thread. */
  #backlog: unknown[] | null = [];
  /** Messages awaiting their reply; the thread keeps the process alive only while this is > 0. */
  #inFlight = 0;

  constructor(url: string | URL) {
    const blob = resolveObjectURL(String(url));
    if (!blob) throw new Error(`NodeWebWorker: only Blob URLs are supported, got ${String(url)}`);
    this.#thread = new NodeWorker(BOOTSTRAP, { eval: true });
    this.#thread.on("message", (data: unknown) => {
      // jax-js answers every message with exactly one reply; idle workers must not keep the process alive.
      if (--this.#inFlight === 0) this.#thread.unref();
      this.onmessage?.({ data });
    });
    this.#thread.on("error", (err: Error) => this.onerror?.({ message: err.message }));
    this.#thread.unref();
    void blob.text().then((source) => {
      this.#thread.postMessage({ source });
      for (const message of this.#backlog ?? []) this.#thread.postMessage(message);
      this.#backlog = null;
    });
  }

  postMessage(message: unknown): void {
    if (this.#inFlight++ === 0) this.#thread.ref();
    if (this.#backlog) this.#backlog.push(message);
    else this.#thread.postMessage(message);
  }

  terminate(): void {
    void this.#thread.terminate();
  }
}
