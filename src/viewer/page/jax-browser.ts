/**
 * The browser's entry to @jax-js/jax. The bundler (scripts/build-viewer.mjs) redirects every
 * import of src/engine/jax.ts here, so the model's own modules run in the page without the
 * Node.js globals that src/engine/node-globals.ts installs.
 */
export * from "@jax-js/jax";
