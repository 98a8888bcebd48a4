/**
 * The native and webgpu backends of the compiled model: the sheet runs on a SheetEngine
 * (src/engine/sheet-engine.ts: the native C++ addon or the WebGPU kernels, the same config,
 * leaves and calls; every call is awaited), and one training step chains three pieces, each
 * with its own backward,
 *
 *   images --front (jax-js)--> x0, drive [B, N, D]            vjp: jax-js grad of <x0, dx0> + <drive, ddrive>
 *          --sheet (engine)--> final states [B, N, D]          backward: hand-written (native/ C++ or src/engine/webgpu/ WGSL),
 *                                                              with the wiring cost and activation L1 folded in
 *          --readout (jax-js)--> task loss                     jax-js valueAndGrad in (readout params, output states)
 *
 * and adds the penalties that live outside the sheet in jax-js: the feature-consistency and
 * topo-blur penalties (functions of the sheet's weights: their gradients are added to the
 * sheet's), the spatial-correlation loss (a function of the final states: its gradient is added
 * to the final states' cotangent before the native backward) and, for learned positions, the
 * wiring weights' and the repulsion's gradients with respect to the positions. The
 * communicability wiring cost is a function of the batch- and step-mean attention Ā: a first
 * native forward (no tape) gives Ā, jax-js the cost and dcost/dĀ, and the training forward gets
 * N * lambda * dcost/dĀ as its per-connection wiring weights (with coefficient 1), which the
 * kernels fold into the softmax backward: one extra forward per step. The maths is the jax
 * objective's (src/train/loss.ts); tests compare the two backends.
 */
import { grad, jit, numpy as np, tree, valueAndGrad } from "../engine/jax.ts";
import { sheetLeaves } from "../engine/native-sheet.ts";
import type { ResidentState, SheetEngine, SheetKernel } from "../engine/sheet-engine.ts";
import { positionDistances, repulsion } from "../geometry/learned.ts";
import { distanceMatrix } from "../geometry/metric.ts";
import { treeFromLeaves } from "../model/param-spec.ts";
import type { SheetParams } from "../model/params.ts";
import { hostSheetLeaves, nativeSheetConfig, sheetLeaf } from "../model/sheet-native.ts";
import { patchify } from "../model/patches.ts";
import { decodePatches, type VisionFrontParams, type VisionParams, visionFront } from "../model/vision.ts";
import { communicabilityWiringCost } from "../objectives/communicability.ts";
import { featureConsistency, untiedWeights } from "../objectives/feature-consistency.ts";
import { spatialCorrelation } from "../objectives/spatial-correlation.ts";
import { topoBlur } from "../objectives/topo-blur.ts";
import { wiringWeights } from "../objectives/wiring-cost.ts";
import { canonicalParamOrder } from "../engine/param-tree.ts";
import { type AdamWState, adamwUpdate, decayMaskFor, mapParamLeaves } from "../optim/adamw.ts";
import type { CompiledModel, EncodeOptions, StepMetrics } from "./compiled.ts";
import { addTrees, allFinite, METRICS, type OptimizerSpec, ReadingSums, scaleTree, sumOfSquares, type TrainState, unstackMetrics } from "./train-state.ts";
import type { Model } from "./model.ts";
import { type DeviceBatch, type ModelInput, taskLoss, type TaskTarget } from "./loss.ts";

type Fn<A extends unknown[], R> = ((...args: A) => R) & { dispose(): void };
type Readout = Pick<VisionParams, "decoder" | "head">;
/** The parameters outside the sheet (front end, readout, positions), jax-js arrays. */
type Outside = Omit<VisionParams, "sheet">;
/** The sheet's parameters for a forward: host leaves (addon order), or an engine's resident state. */
type SheetSource = Float32Array[] | ResidentState;

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** The compiled model on `engine` (the native addon for backend native, the WebGPU engine for webgpu). */
export function compileNative(model: Model, engine: SheetEngine, backend: "native" | "webgpu"): CompiledModel {
  const { sheet, vision, layout, spec, connectivity } = model;
  const n = sheet.num_columns;
  const d = sheet.dim;
  const width = connectivity?.k ?? n;
  const names = sheetLeaves({ value_proj: sheet.value_proj, attn_bias: sheet.attn_bias });
  const isMim = vision.task === "mim";
  const every = vision.inject === "every";
  const { start, end } = layout.outputArea;
  const idx = connectivity ? connectivity.indices : null;

  // activation buffers for the config's batch; a larger batch (e.g. in evaluation) re-plans them
  let kernelBatch = model.config.batch_size;
  let kernel: SheetKernel = engine.createSheet(nativeSheetConfig(sheet, vision, kernelBatch));
  const kernelFor = (batch: number): SheetKernel => {
    if (batch > kernelBatch) {
      kernel.dispose();
      kernel = engine.createSheet(nativeSheetConfig(sheet, vision, batch));
      kernelBatch = batch;
    }
    return kernel;
  };

  const frontOf = (p: Outside): VisionFrontParams => ({
    patch_embed: p.patch_embed,
    mask_token: p.mask_token,
    ...(p.init_state ? { init_state: p.init_state } : {}),
  });
  const readoutOf = (p: Outside): Readout => (isMim ? { decoder: p.decoder } : { head: p.head });

  // x0 and drive [B, N, D] of a batch's images [B, H, W, C] (masked for MIM)
  const frontOfInput = (fp: VisionFrontParams, input: ModelInput) => {
    input.labels?.dispose();
    const { x0, drive, patches } = visionFront(fp, input.images, input.mask ?? null, sheet, vision, layout);
    patches.dispose();
    return { x0, drive };
  };
  const front: Fn<[VisionFrontParams, ModelInput], [np.Array, np.Array]> = jit((fp: VisionFrontParams, input: ModelInput) => {
    const { x0, drive } = frontOfInput(fp, input);
    return [x0, drive] as [np.Array, np.Array];
  });
  // vjp of the front end: the gradient of <x0, dx0> (+ <drive, ddrive> with inject "every") in its parameters
  type FrontCotangents = { dx0: np.Array; ddrive?: np.Array };
  const frontVjp: Fn<[VisionFrontParams, ModelInput, FrontCotangents], VisionFrontParams> = jit(
    grad((fp: VisionFrontParams, input: ModelInput, ct: FrontCotangents) => {
      const { x0, drive } = frontOfInput(fp, input);
      const dot = x0.mul(ct.dx0).sum();
      if (ct.ddrive) return dot.add(drive.mul(ct.ddrive).sum());
      drive.dispose();
      return dot;
    }),
  );
  // the readout's task loss from the output-area states [B, P_out, D]
  const readoutLoss = (r: Readout, out: np.Array, batch: DeviceBatch): [np.Array, np.Array] => {
    let target: TaskTarget;
    if (batch.mask) target = { patches: patchify(batch.images, vision.patch_size), mask: batch.mask };
    else {
      batch.images.dispose();
      target = { labels: batch.labels! };
    }
    const { task, correct } = taskLoss(r, out, target);
    return [task, correct];
  };
  const readoutGrad: Fn<[Readout, np.Array, DeviceBatch], [[np.Array, np.Array], [Readout, np.Array]]> = jit(valueAndGrad(readoutLoss, { argnums: [0, 1], hasAux: true }));
  const readoutEval: Fn<[Readout, np.Array, DeviceBatch], [np.Array, np.Array]> = jit(readoutLoss);
  const decode: Fn<[{ weight: np.Array; bias: np.Array }, np.Array], np.Array> = jit(decodePatches);

  // penalties of the sheet's untied weights (feature consistency, topo blur): value and gradient
  const weightPenalty = (penalty: (weights: np.Array[], a: np.Array) => np.Array) => (p: SheetParams, a: np.Array) => {
    const weights = untiedWeights(p, sheet).map((w) => w.ref);
    tree.dispose(p);
    return penalty(weights, a);
  };
  const neighbours = model.neighbours ? np.array(model.neighbours).reshape([n, n]) : null;
  const consistencyOf = weightPenalty(featureConsistency);
  const consistencyGrad: Fn<[SheetParams, np.Array], [np.Array, SheetParams]> | null = neighbours ? jit(valueAndGrad(consistencyOf)) : null;
  const consistencyValue: Fn<[SheetParams, np.Array], np.Array> | null = neighbours ? jit(consistencyOf) : null;
  const blur = model.blur ? np.array(model.blur).reshape([n, n]) : null;
  const topoOf = weightPenalty(topoBlur);
  const topoGrad: Fn<[SheetParams, np.Array], [np.Array, SheetParams]> | null = blur ? jit(valueAndGrad(topoOf)) : null;
  const topoValue: Fn<[SheetParams, np.Array], np.Array> | null = blur ? jit(topoOf) : null;
  /** Add coef * g (a gradient tree of the sheet, consumed) to the sheet's host gradients (null: zeros of g's sizes); returns them. */
  const addSheetGradient = async (g: SheetParams, coef: number, into: Float32Array[] | null): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    for (const [i, name] of names.entries()) {
      const extra = (await sheetLeaf(g, name).ref.data()) as Float32Array;
      const leaf = into ? into[i] : new Float32Array(extra.length);
      for (let t = 0; t < leaf.length; t++) leaf[t] += coef * extra[t];
      out.push(leaf);
    }
    tree.dispose(g);
    return out;
  };
  const positions = spec.positions;
  // the spatial-correlation loss of the final states [B, N, D]: value and gradient in the states
  const spatialShape = [model.config.spatial_correlation.neighbourhoods, model.config.spatial_correlation.size];
  const spatialGrad: Fn<[np.Array, np.Array, np.Array], [np.Array, np.Array]> | null = spec.spatialCorrelation ? jit(valueAndGrad(spatialCorrelation)) : null;
  const spatialValue: Fn<[np.Array, np.Array, np.Array], np.Array> | null = spec.spatialCorrelation ? jit(spatialCorrelation) : null;
  const fixedDistances = spec.spatialCorrelation && !positions ? np.array(distanceMatrix(model.geometry)).reshape([n, n]) : null;
  const positionDistancesOf: Fn<[np.Array], np.Array> | null = spec.spatialCorrelation && positions ? jit((pos: np.Array) => positionDistances(pos, positions.space)) : null;
  /** The spatial loss's inputs of a step: states [B, N, D], neighbourhoods [N, M, K], distances [N, N]. Borrows `params`. */
  const spatialInputs = (params: Outside, x: Float32Array, b: number, step: number): [np.Array, np.Array, np.Array] => [
    np.array(x).reshape([b, n, d]),
    np.array(model.neighbourhoods(step)!).reshape([n, ...spatialShape]),
    positionDistancesOf ? positionDistancesOf(params.positions!.ref) : fixedDistances!.ref,
  ];
  // learned positions: the wiring weights [N, N] they give, and the gradient in them of
  // cw * (sum attnMean * W) / N + cr * repulsion (the wiring term's attention side is native)
  const wiringOf = (pos: np.Array) => wiringWeights(positionDistances(pos, positions!.space), spec.wiring);
  const positionWeights: Fn<[np.Array], np.Array> | null = positions ? jit(wiringOf) : null;
  // the communicability wiring cost of the mean attention Ā [N, N] (fixed weights): value and dcost/dĀ
  const fixedWeights = spec.communicability && !positions ? np.array(model.wiringWeights!).reshape([n, n]) : null;
  const commGrad: Fn<[np.Array, np.Array], [np.Array, np.Array]> | null = fixedWeights ? jit(valueAndGrad(communicabilityWiringCost)) : null;
  const commValue: Fn<[np.Array, np.Array], np.Array> | null = spec.communicability ? jit(communicabilityWiringCost) : null;
  // ... with learned positions: cw * cost(Ā, W(pos)) + cr * repulsion, its gradient in the positions and in Ā
  const positionCommGrad: Fn<[np.Array, np.Array, np.Array, np.Array], [[np.Array, [np.Array, np.Array]], [np.Array, np.Array]]> | null =
    positions && spec.communicability
      ? jit(
          valueAndGrad(
            (pos: np.Array, attnMean: np.Array, cw: np.Array, cr: np.Array) => {
              const spread = repulsion(positionDistances(pos.ref, positions.space), positions.spacing);
              const cost = communicabilityWiringCost(attnMean, wiringOf(pos));
              const total = cost.ref.mul(cw).add(spread.ref.mul(cr));
              return [total, [spread, cost]] as [np.Array, [np.Array, np.Array]];
            },
            { argnums: [0, 1], hasAux: true },
          ),
        )
      : null;
  const positionGrad: Fn<[np.Array, np.Array, np.Array, np.Array], [[np.Array, np.Array], np.Array]> | null = positions && !spec.communicability
    ? jit(
        valueAndGrad(
          (pos: np.Array, attnMean: np.Array, cw: np.Array, cr: np.Array) => {
            const spread = repulsion(positionDistances(pos.ref, positions.space), positions.spacing);
            const total = wiringOf(pos).mul(attnMean).sum().div(n).mul(cw).add(spread.ref.mul(cr));
            return [total, spread] as [np.Array, np.Array];
          },
          { hasAux: true },
        ),
      )
    : null;

  /**
   * Front end and native forward of one batch. Borrows `params` (its front-end leaves and
   * positions) and `sheet` (the sheet's leaves on the host, in addon order, or a resident
   * state); consumes `input`, except with `train` (the readout and the front end's vjp read it
   * again). `weights` replaces the wiring weights (null: none) when given.
   */
  const forward = async (params: Outside, sheet: SheetSource, input: ModelInput, train: boolean, attn: Float32Array | null, weights?: Float32Array | null) => {
    const b = input.images.shape[0];
    const [x0, drive] = front(tree.ref(frontOf(params)), train ? tree.ref(input) : input);
    const x0Host = (await x0.data()) as Float32Array;
    let driveHost: Float32Array | null = null;
    if (every) driveHost = (await drive.data()) as Float32Array;
    else drive.dispose();
    if (weights === undefined) weights = positionWeights ? ((await positionWeights(params.positions!.ref).data()) as Float32Array) : model.wiringWeights;
    const args = { x0: x0Host, drive: driveHost, connectivity: idx, wiringWeights: weights, batch: b, train, attn };
    const result = Array.isArray(sheet) ? await kernelFor(b).forward({ ...args, params: sheet }) : await sheet.forward(kernelFor(b), args);
    return { b, result };
  };

  /** Output-area states [B, P_out, D] of final states [B, N, D]. */
  const outputStates = (x: Float32Array, b: number): np.Array => {
    const out = new Float32Array(b * (end - start) * d);
    for (let i = 0; i < b; i++) out.set(x.subarray((i * n + start) * d, (i * n + end) * d), i * (end - start) * d);
    return np.array(out).reshape([b, end - start, d]);
  };

  /** The penalties computed in jax-js (0 when off). */
  type Outer = { wiring: number | null; consistency: number; spread: number; spatial: number; topo: number };
  const metricsOf = (step: number, task: number, correct: number, r: { wiring: number; l1: number; hoyer: number }, o: Outer): StepMetrics => {
    const c = model.coefficients(step);
    const wiring = o.wiring ?? r.wiring; // the communicability cost is jax-js's, the other forms the kernels'
    const loss = sum([task, c.wiring * wiring, c.consistency * o.consistency, c.repulsion * o.spread, c.activation * r.l1, c.spatial * o.spatial, c.topo * o.topo]);
    return {
      loss,
      task,
      wiring,
      consistency: o.consistency,
      repulsion: o.spread,
      activation_l1: r.l1,
      activation_hoyer: r.hoyer,
      spatial_correlation: o.spatial,
      topo_blur: o.topo,
      correct,
    };
  };

  /** The communicability wiring cost of a batch's mean attention Ā [N * N] (host). Borrows `params`. */
  const communicabilityValue = async (params: Outside, attnMeanHost: Float32Array): Promise<number> => {
    const weights = fixedWeights ? fixedWeights.ref : positionWeights!(params.positions!.ref);
    return (await commValue!(np.array(attnMeanHost).reshape([n, n]), weights).data())[0];
  };

  /**
   * The communicability wiring cost of a batch and what the training step needs of it: a forward
   * without tape gives the mean attention Ā, jax-js the cost, the native wiring weights
   * N * lambda * dcost/dĀ of the training forward and, with learned positions, the positions'
   * gradient and the repulsion. Borrows `params`, `sheet` and `batch`.
   */
  const communicabilityGrad = async (params: Outside, sheet: SheetSource, batch: DeviceBatch, step: number) => {
    const c = model.coefficients(step);
    const { result } = await forward(params, sheet, tree.ref(batch), false, null, null);
    const attnMean = np.array(result.attnMean).reshape([n, n]);
    let value: number;
    let dA: np.Array; // lambda * dcost/dĀ [N, N]
    let positionsGrad: np.Array | null = null;
    let spread: number | null = null;
    if (positionCommGrad) {
      const [[total, [s, v]], [gPos, g]] = positionCommGrad(params.positions!.ref, attnMean, np.array(c.wiring), np.array(c.repulsion));
      total.dispose();
      spread = (await s.data())[0];
      value = (await v.data())[0];
      positionsGrad = gPos;
      dA = g;
    } else {
      const [v, g] = commGrad!(attnMean, fixedWeights!.ref);
      value = (await v.data())[0];
      dA = scaleTree([g], c.wiring)[0]; // c.wiring follows its schedule: an argument, not a baked constant
    }
    const weights = ((await dA.data()) as Float32Array).map((x) => x * n);
    // the kernels refuse non-finite weights: report a non-finite cost instead (the loss becomes
    // NaN, as on the jax backend, and the trainer stops there naming the last intact checkpoint)
    if (!weights.every(Number.isFinite)) return { value: NaN, weights: null, positionsGrad, spread };
    return { value, weights, positionsGrad, spread };
  };

  /**
   * Loss, metrics and gradients of one batch. Borrows `params` and `sheet`; `sheetTree` gives
   * the sheet as jax-js arrays (borrowed; only the consistency and topo penalties need it).
   * Consumes `batch`. Returns the sheet's gradients in addon order on the host (null with a
   * resident state: they were added to its accumulator) and the other leaves' by path (owned).
   */
  const gradients = async (params: Outside, sheet: SheetSource, sheetTree: () => Promise<SheetParams>, batch: DeviceBatch, step: number) => {
    const c = model.coefficients(step);
    const comm = spec.communicability ? await communicabilityGrad(params, sheet, batch, step) : null;
    const { b, result } = await forward(params, sheet, batch, true, null, comm ? comm.weights : undefined);
    // readout: task loss and its gradient in the readout parameters and the output states
    const [[task, correct], [readoutGrads, dOut]] = readoutGrad(tree.ref(readoutOf(params)), outputStates(result.x, b), tree.ref(batch));
    const dOutHost = (await dOut.data()) as Float32Array;
    const dx = new Float32Array(b * n * d);
    const p = end - start;
    for (let i = 0; i < b; i++) dx.set(dOutHost.subarray(i * p * d, (i + 1) * p * d), (i * n + start) * d);
    // the spatial loss: its gradient in the final states joins the readout's
    let spatial = 0;
    if (spatialGrad) {
      const [value, g] = spatialGrad(...spatialInputs(params, result.x, b, step));
      spatial = (await value.data())[0];
      const extra = (await g.data()) as Float32Array;
      for (let t = 0; t < dx.length; t++) dx[t] += c.spatial * extra[t];
    }
    // the sheet's backward, with the wiring cost and the activation penalty folded in
    // (communicability: the weights already carry lambda)
    const dx0 = new Float32Array(b * n * d);
    const ddrive = every ? new Float32Array(b * n * d) : null;
    const back = { dx, wiringCoef: comm ? 1 : c.wiring, activationCoef: c.activation, dx0, ddrive };
    let sheetGrads: Float32Array[] | null = null;
    if (Array.isArray(sheet)) {
      sheetGrads = sheet.map((leaf) => new Float32Array(leaf.length));
      await kernel.backward({ ...back, grads: sheetGrads });
    } else await sheet.backward(kernel, back);
    // the front end's vjp
    const frontGrads = frontVjp(tree.ref(frontOf(params)), batch, {
      dx0: np.array(dx0).reshape([b, n, d]),
      ...(ddrive ? { ddrive: np.array(ddrive).reshape([b, n, d]) } : {}),
    });
    const other = new Map<string, np.Array>();
    const collect = (prefix: string, node: unknown) => {
      if (node instanceof np.Array) other.set(prefix, node);
      else for (const [key, child] of Object.entries(node as Record<string, unknown>)) collect(prefix ? `${prefix}.${key}` : key, child);
    };
    collect("", frontGrads);
    collect("", readoutGrads);
    // penalties outside the sheet
    // (resident: summed on the host, then added to the accumulator)
    let extra = sheetGrads;
    let consistency = 0;
    if (consistencyGrad && neighbours) {
      const [value, g] = consistencyGrad(tree.ref(await sheetTree()), neighbours.ref);
      consistency = (await value.data())[0];
      extra = await addSheetGradient(g, c.consistency, extra);
    }
    let topo = 0;
    if (topoGrad && blur) {
      const [value, g] = topoGrad(tree.ref(await sheetTree()), blur.ref);
      topo = (await value.data())[0];
      extra = await addSheetGradient(g, c.topo, extra);
    }
    if (!Array.isArray(sheet) && extra) await sheet.accumulate(extra);
    let spread = comm?.spread ?? 0;
    if (comm?.positionsGrad) other.set("positions", comm.positionsGrad);
    if (positionGrad) {
      const [[total, s], g] = positionGrad(params.positions!.ref, np.array(result.attnMean).reshape([n, width]), np.array(c.wiring), np.array(c.repulsion));
      total.dispose();
      spread = (await s.data())[0];
      other.set("positions", g);
    }
    const metrics = metricsOf(step, (await task.data())[0], (await correct.data())[0], result, { wiring: comm ? comm.value : null, consistency, spread, spatial, topo });
    return { metrics, sheetGrads, other };
  };

  /**
   * The optimiser state of the native and webgpu backends: the sheet's parameters and AdamW
   * moments live on the host between steps (updated in place by the engine's AdamW) or, where
   * the engine keeps a resident state (webgpu), on its device: loaded once, the gradient
   * accumulated, its norm and AdamW computed there, and the host leaves refreshed only when a
   * host view is asked for (`current`). The few other leaves stay jax-js arrays with jax-js
   * AdamW; clipping uses the global norm over both. Takes ownership of `params0` and `opt0`.
   */
  const nativeTrainState = async (params0: VisionParams, opt0: AdamWState<VisionParams>, spec: OptimizerSpec): Promise<TrainState> => {
    const shapes = names.map((name) => sheetLeaf(params0.sheet, name).shape);
    const [hostP, hostM, hostV] = await Promise.all([params0.sheet, opt0.mu.sheet, opt0.nu.sheet].map((t) => hostSheetLeaves(t, names)));
    const weightDecay = names.map((name, i) => (spec.noDecay(`sheet.${name}`, shapes[i]) ? 0 : spec.adamw.weight_decay));
    const badScale = names.find((name) => spec.lrScale(`sheet.${name}`) !== 1);
    if (badScale) throw new Error(`native train state: sheet.${badScale} has a learning-rate scale; only parameters outside the sheet may`);
    tree.dispose([params0.sheet, opt0.mu.sheet, opt0.nu.sheet]);
    const resident = engine.resident ? engine.resident({ params: hostP, m: hostM, v: hostV }) : null;
    let hostStale = false; // resident: hostP, hostM, hostV are behind the device's since the last update
    const without = <T extends { sheet?: unknown }>(t: T): Omit<T, "sheet"> => Object.fromEntries(Object.entries(t).filter(([key]) => key !== "sheet")) as Omit<T, "sheet">;
    let rest: Outside = without(params0);
    let restOpt: AdamWState<Outside> = { step: opt0.step, mu: without(opt0.mu), nu: without(opt0.nu) };
    const restDecay = decayMaskFor(rest, (path, shape) => spec.noDecay(path, shape));
    const restLr = mapParamLeaves(rest, (path) => spec.lrScale(path), "lrScale");
    let sheetAcc: Float32Array[] | null = null;
    let restAcc: Outside | null = null;
    let micro = 0;
    const sums = new ReadingSums(); // metrics and norms are host numbers here
    // the host path's parameters went non-finite (checked after each update, a pass the kernels'
    // own check repeats): the kernels refuse them, so the steps up to the next read are skipped,
    // their metrics NaN, and that read reports the divergence
    let diverged = false;
    // jax-js views of the whole state, built when asked for and kept until the next update
    let view: { params: VisionParams; opt: AdamWState<VisionParams> } | null = null;
    const sheetTreeOf = (host: Float32Array[]): SheetParams =>
      treeFromLeaves(names.map((name, i) => [name, np.array(host[i].slice()).reshape(shapes[i])] as const)) as unknown as SheetParams;
    const current = async () => {
      if (resident && hostStale) {
        await resident.read({ params: hostP, m: hostM, v: hostV });
        hostStale = false;
      }
      view ??= {
        params: canonicalParamOrder({ ...tree.ref(rest), sheet: sheetTreeOf(hostP) } as VisionParams),
        opt: { step: restOpt.step, mu: canonicalParamOrder({ ...tree.ref(restOpt.mu), sheet: sheetTreeOf(hostM) } as VisionParams), nu: canonicalParamOrder({ ...tree.ref(restOpt.nu), sheet: sheetTreeOf(hostV) } as VisionParams) },
      };
      return view;
    };
    const dropView = () => {
      if (view) tree.dispose([view.params, view.opt.mu, view.opt.nu]);
      view = null;
    };
    return {
      async accumulate(batch, step) {
        if (diverged) {
          tree.dispose(batch);
          sums.addMicro(unstackMetrics(METRICS.map(() => NaN)));
          return;
        }
        const { metrics, sheetGrads, other } = await gradients(rest, resident ?? hostP, async () => (await current()).params.sheet, batch, step);
        const grads = mapParamLeaves(rest, (path) => other.get(path)!, "native accumulate") as unknown as Outside;
        if (sheetAcc === null) sheetAcc = sheetGrads;
        else if (sheetGrads) {
          sheetAcc.forEach((acc, i) => {
            sheetGrads[i].forEach((g, t) => {
              acc[t] += g;
            });
          });
        }
        restAcc = restAcc === null ? grads : addTrees(restAcc, grads);
        micro++;
        sums.addMicro(metrics);
      },
      async update(lr) {
        if (diverged) {
          sums.addStep(NaN);
          return;
        }
        if (micro === 0 || restAcc === null) throw new Error("update: no gradient was accumulated");
        dropView();
        const mean = 1 / micro;
        let scale = mean;
        let norm = NaN;
        if (spec.clipNorm !== null) {
          // the global norm of the averaged gradient, over the host leaves and the jax-js ones (as clipByGlobalNorm)
          const sheetSquares = resident ? await resident.gradSquares() : engine.sumSquares(sheetAcc!);
          norm = Math.sqrt(sheetSquares * mean * mean + (await sumOfSquares(restAcc)) * mean * mean);
          scale = mean * Math.min(1, spec.clipNorm / (norm + 1e-6));
        }
        const t = restOpt.step + 1;
        const { beta1, beta2, eps } = spec.adamw;
        const args = { lr, beta1, beta2, eps, weightDecay, step: t, gradScale: scale };
        if (resident) {
          await resident.adamw(args);
          hostStale = true;
        } else {
          engine.adamw({ ...args, params: hostP, grads: sheetAcc!, m: hostM, v: hostV });
          diverged = !Number.isFinite(engine.sumSquares(hostP));
        }
        const updated = adamwUpdate(rest, scaleTree(restAcc, scale), restOpt, lr, spec.adamw, restDecay, restLr);
        rest = updated.params;
        restOpt = updated.state;
        sheetAcc = null;
        restAcc = null;
        micro = 0;
        sums.addStep(norm);
      },
      read: async () => sums.take(!diverged && (resident ? await resident.finite() : true) && (await allFinite(rest))),
      current,
      dispose() {
        dropView();
        resident?.dispose();
        tree.dispose([rest, restOpt.mu, restOpt.nu, restAcc]);
      },
    };
  };

  return {
    backend,
    async gradStep(params: VisionParams, batch: DeviceBatch, step: number) {
      const { metrics, sheetGrads, other } = await gradients(params, await hostSheetLeaves(params.sheet, names), async () => params.sheet, batch, step);
      const bySheetLeaf = new Map<string, Float32Array>(names.map((name, i) => [name, sheetGrads![i]]));
      const pick = (path: string, shape: number[]): np.Array => (path.startsWith("sheet.") ? np.array(bySheetLeaf.get(path.slice(6))!).reshape(shape) : other.get(path)!);
      return { metrics, grads: mapParamLeaves(params, pick, "native gradStep") as unknown as VisionParams };
    },
    trainState: (params: VisionParams, opt: AdamWState<VisionParams>, spec: OptimizerSpec) => nativeTrainState(params, opt, spec),
    async evalStep(params: VisionParams, batch: DeviceBatch, step: number) {
      const { b, result } = await forward(params, await hostSheetLeaves(params.sheet, names), tree.ref(batch), false, null);
      const wiring = spec.communicability ? await communicabilityValue(params, result.attnMean) : null;
      const [task, correct] = readoutEval(tree.ref(readoutOf(params)), outputStates(result.x, b), batch);
      let consistency = 0;
      if (consistencyValue && neighbours) consistency = (await consistencyValue(tree.ref(params.sheet), neighbours.ref).data())[0];
      let topo = 0;
      if (topoValue && blur) topo = (await topoValue(tree.ref(params.sheet), blur.ref).data())[0];
      const spatial = spatialValue ? (await spatialValue(...spatialInputs(params, result.x, b, step)).data())[0] : 0;
      let spread = 0;
      if (positions && params.positions) {
        const s = repulsion(positionDistances(params.positions.ref, positions.space), positions.spacing);
        spread = (await s.data())[0];
      }
      return metricsOf(step, (await task.data())[0], (await correct.data())[0], result, { wiring, consistency, spread, spatial, topo });
    },
    async encode(params: VisionParams, images: np.Array, options: EncodeOptions = {}) {
      const b = images.shape[0];
      const maps = options.attention ? new Float32Array(b * sheet.depth * n * width) : null;
      const { result } = await forward(params, await hostSheetLeaves(params.sheet, names), { images }, false, maps);
      let attention: Float32Array | null = null;
      if (maps) {
        const per = sheet.depth * n * width;
        attention = new Float32Array(per);
        for (let i = 0; i < b; i++) for (let t = 0; t < per; t++) attention[t] += maps[i * per + t];
      }
      if (options.columns === "all") return { states: result.x, attention };
      return { states: (await outputStates(result.x, b).data()) as Float32Array, attention };
    },
    async predictPatches(params: VisionParams, images: np.Array, mask: np.Array) {
      const { b, result } = await forward(params, await hostSheetLeaves(params.sheet, names), { images, mask }, false, null);
      return (await decode(tree.ref(params.decoder!), outputStates(result.x, b)).data()) as Float32Array;
    },
    dispose() {
      kernel.dispose();
      for (const f of [front, frontVjp, readoutGrad, readoutEval, decode, consistencyGrad, consistencyValue, topoGrad, topoValue, spatialGrad, spatialValue, positionDistancesOf]) f?.dispose();
      for (const f of [positionWeights, positionGrad, commGrad, commValue, positionCommGrad]) f?.dispose();
      tree.dispose([neighbours, blur, fixedDistances, fixedWeights]);
    },
  };
}
