/**
 * Named starting points for `columnformer train --preset NAME`. A config file
 * and `--set key=value` overrides are merged on top.
 */
import type { TrainConfigInput } from "./config.ts";

/**
 * MNIST-size images (28 px, 4 px patches -> 7x7 patch grid) on three stacked
 * 7x7 areas: input enters area0, the readout leaves area2. Sized to train on
 * 2 CPU cores in minutes.
 */
const TINY = {
  sheet: { geometry: { kind: "stacked", widths: [7, 7, 7], offset: 2 }, dim: 64, qk_dim: 16, mlp_dim: 64, depth: 4 },
  // a LayerNorm on the output area before the readout (ViT's final norm)
  vision: { image_size: 28, patch_size: 4, channels: 1, task: "mim", final_norm: true },
  data: { kind: "mnist" },
  optim: { lr: 2e-3 },
  batch_size: 32,
  steps: 300,
  eval_every: 100,
  eval_images: 1000,
  checkpoint_every: 100,
} satisfies TrainConfigInput;

export const PRESETS = {
  tiny: TINY,
  /**
   * The transformer baseline on the tiny preset's task and geometry: every
   * column (token) shares the weights, `depth` separate blocks, 4 heads with
   * value and output projections, a learned position embedding, and no
   * attention bias. Flip one switch at a time to walk to the Columnformer.
   */
  "tiny-transformer": {
    ...TINY,
    sheet: {
      ...TINY.sheet,
      heads: 4,
      recurrent: false,
      untie_norm: false,
      untie_attn: false,
      untie_mlp: false,
      value_proj: true,
      attn_bias: false,
    },
    vision: { ...TINY.vision, learned_init_state: true, init_state_std: 0.02 },
  },
  /**
   * Natural images (64 px RGB, 8 px patches -> 8x8 grid) on stacked areas
   * [8, 12, 16] as in the earlier Python work (N = 464).
   */
  small: {
    sheet: { geometry: { kind: "stacked", widths: [8, 12, 16], offset: 2 }, dim: 128, qk_dim: 32, mlp_dim: 128, depth: 6 },
    vision: { image_size: 64, patch_size: 8, channels: 3, task: "mim", output_area: "area0" },
    data: { kind: "folder", path: "data/images" },
    augment: true,
    optim: { lr: 1e-3 },
    // jax-js 0.1.25 runs out of its 4 GiB Wasm heap at batch 16+ on this sheet: accumulate 4 x 8.
    batch_size: 8,
    accum_steps: 4,
    steps: 5000,
    eval_every: 500,
    eval_images: 500,
    checkpoint_every: 1000,
  },
} satisfies Record<string, TrainConfigInput>;

export type PresetName = keyof typeof PRESETS;
