/**
 * The single entry point to @jax-js/jax for this project: it installs the
 * Node.js globals first (see node-globals.ts), then re-exports jax-js.
 */
import "./node-globals.ts";
export * from "@jax-js/jax";
