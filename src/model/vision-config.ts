/**
 * Configuration of the image front end and readouts (src/model/vision.ts): one zod schema, the
 * type inferred from it (unknown or mistyped fields are errors naming the field).
 */
import { z } from "zod";

const positiveInt = z.number().int().positive();

export const visionConfigSchema = z
  .object({
    image_size: positiveInt.default(28),
    patch_size: positiveInt.default(4),
    channels: z.union([z.literal(1), z.literal(3)]).default(1),
    /** Area that receives the patch embeddings (null: the first area). */
    input_area: z.string().nullable().default(null),
    /** Area read out after `depth` steps (null: the last area). */
    output_area: z.string().nullable().default(null),
    /** Inject the input at the first step only, or add it again at every step. */
    inject: z.enum(["first", "every"]).default("first"),
    /** A learned initial state for every column, added to the input at the first step: a transformer's learned position embedding. */
    learned_init_state: z.boolean().default(false),
    /** Standard deviation of the learned initial state at init (0: zeros; 0.02 as ViT's position embedding). */
    init_state_std: z.number().nonnegative().default(0),
    task: z.enum(["mim", "classify"]).default("mim"),
    /** Classes (classification only). */
    num_classes: positiveInt.default(10),
    /** Classification pooling over output columns: average, or learned per-class softmax weights. */
    pool: z.enum(["avg", "spatial"]).default("avg"),
    /**
     * A LayerNorm over each output column's D features before the readout (as a ViT's final
     * norm), with its own weight and bias [D] in the readout (`decoder.norm`, `head.norm`).
     */
    final_norm: z.boolean().default(false),
  })
  .strict();

/** Configuration of the image front end and readouts (defaults filled in). */
export type VisionConfig = z.output<typeof visionConfigSchema>;
