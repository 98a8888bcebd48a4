/**
 * The jax-js backend of the compiled model: the whole objective (src/train/loss.ts) under
 * jit(valueAndGrad). It is the reference the native backend is tested against, and the path
 * for browsers and machines without a compiler.
 */
import { jit, numpy as np, tree, valueAndGrad } from "../engine/jax.ts";
import { distanceMatrix } from "../geometry/metric.ts";
import { connectivityArray } from "../model/sheet-connectivity.ts";
import { type VisionParams, visionEncode } from "../model/vision.ts";
import type { CompiledModel, EncodeOptions, StepMetrics } from "./compiled.ts";
import { type DeviceBatch, type LossParts, needsDistances, objective, predictPatches, type SheetInputs, type StepInputs } from "./loss.ts";
import type { Model } from "./model.ts";
import { type DeviceGradStep, jaxTrainState, METRICS, unstackMetrics } from "./train-state.ts";

type GradStep = (params: VisionParams, batch: DeviceBatch, inputs: StepInputs) => [[np.Array, np.Array], VisionParams];
type EvalStep = (params: VisionParams, batch: DeviceBatch, inputs: StepInputs) => np.Array;
type Disposable = { dispose(): void };

/** The loss and its parts as one vector [10] in METRICS order, so that a step reads its metrics in one transfer. Consumes both. */
function stackMetrics(total: np.Array, parts: LossParts): np.Array {
  return np.stack([total, ...METRICS.slice(1).map((key) => parts[key as keyof LossParts])]);
}

/** Read a stacked metrics vector to the host (one transfer). Consumes it. */
async function readMetrics(stacked: np.Array): Promise<StepMetrics> {
  return unstackMetrics(await stacked.data());
}

export function compileJax(model: Model): CompiledModel {
  const { sheet, vision, layout, spec, geometry, connectivity } = model;
  const n = sheet.num_columns;
  // the objective with its parts stacked (the aux output of the gradient)
  const fn = (params: VisionParams, batch: DeviceBatch, inputs: StepInputs): [np.Array, np.Array] => {
    const [total, parts] = objective(params, batch, inputs, spec);
    return [total.ref, stackMetrics(total, parts)];
  };
  // Jitted although jax-js 0.1.25's fusion makes the attention backward slower than eager execution:
  // the eager gradient grows memory by ~0.25 MiB per step, the jitted one stays flat.
  const gradJit = jit(valueAndGrad(fn, { hasAux: true })) as unknown as GradStep & Disposable;
  const evalJit = jit((params: VisionParams, batch: DeviceBatch, inputs: StepInputs) => {
    const [total, stacked] = fn(params, batch, inputs);
    total.dispose();
    return stacked;
  }) as unknown as EvalStep & Disposable;
  const encodeJit = new Map<string, ((p: VisionParams, images: np.Array, sparse: SheetInputs) => [np.Array, np.Array]) & Disposable>();
  const idx = connectivity ? connectivityArray(connectivity) : null;
  /** The sheet's own inputs of an encode: a sparse sheet's connections (borrowed), none for a dense one. */
  const sheetInputs = (): SheetInputs => (idx ? { connectivity: idx.ref } : {});
  // the objective's fixed inputs on the device (kept; each step passes references)
  const distances = needsDistances(spec, connectivity !== null) ? np.array(distanceMatrix(geometry)).reshape([n, n]) : null;
  const sparse = idx && model.wiringWeights ? { connectivity: idx, wiringWeights: np.array(model.wiringWeights).reshape([n, connectivity!.k]) } : null;
  const neighbours = model.neighbours ? np.array(model.neighbours).reshape([n, n]) : null;
  const blur = model.blur ? np.array(model.blur).reshape([n, n]) : null;
  const spatialShape = [model.config.spatial_correlation.neighbourhoods, model.config.spatial_correlation.size];
  const stepInputs = (step: number): StepInputs => {
    const c = model.coefficients(step);
    const selection = model.neighbourhoods(step);
    return {
      ...(distances ? { distances: distances.ref } : {}),
      ...(sparse ? { sparse: tree.ref(sparse) } : {}),
      ...(neighbours ? { neighbours: neighbours.ref } : {}),
      ...(selection ? { neighbourhoods: np.array(selection).reshape([n, ...spatialShape]) } : {}),
      ...(blur ? { blur: blur.ref } : {}),
      wiring: np.array(c.wiring),
      consistency: np.array(c.consistency),
      repulsion: np.array(c.repulsion),
      activation: np.array(c.activation),
      spatial: np.array(c.spatial),
      topo: np.array(c.topo),
    };
  };
  const encoder = (columns: "output" | "all") => {
    let f = encodeJit.get(columns);
    if (!f) {
      const area = columns === "all" ? { ...layout, outputArea: { name: "sheet", start: 0, end: n } } : layout;
      f = jit((p: VisionParams, images: np.Array, inputs: SheetInputs) => {
        const { decoder, head, positions, ...enc } = p;
        tree.dispose([decoder, head, positions]);
        const { out, attn, patches } = visionEncode(enc, images, null, sheet, vision, area, false, inputs.connectivity);
        patches.dispose();
        return [out, attn.sum(0)] as [np.Array, np.Array]; // states, attention summed over the batch [depth, N, N | K]
      });
      encodeJit.set(columns, f);
    }
    return f;
  };
  /** The gradient with its metrics left on the device. Borrows `params`, consumes `batch`. */
  const gradDevice: DeviceGradStep = (params, batch, step) => {
    const [[total, metrics], grads] = gradJit(tree.ref(params), batch, stepInputs(step));
    total.dispose();
    return { metrics, grads };
  };
  return {
    backend: "jax",
    async gradStep(params, batch, step) {
      const { metrics, grads } = gradDevice(params, batch, step);
      return { metrics: await readMetrics(metrics), grads };
    },
    trainState: async (params, opt, spec) => jaxTrainState(gradDevice, params, opt, spec),
    async evalStep(params, batch, step) {
      return readMetrics(evalJit(tree.ref(params), batch, stepInputs(step)));
    },
    async encode(params, images, options: EncodeOptions = {}) {
      const [states, attn] = encoder(options.columns ?? "output")(tree.ref(params), images, sheetInputs());
      let attention: Float32Array | null = null;
      if (options.attention) attention = (await attn.data()) as Float32Array;
      else attn.dispose();
      return { states: (await states.data()) as Float32Array, attention };
    },
    async predictPatches(params, images, mask) {
      return (await predictPatches(tree.ref(params), images, mask, spec, sheetInputs().connectivity).data()) as Float32Array;
    },
    dispose() {
      gradJit.dispose();
      evalJit.dispose();
      for (const f of encodeJit.values()) f.dispose();
      tree.dispose([distances, sparse ?? idx, neighbours, blur]);
    },
  };
}
