/**
 * The native backend of the compiled model: one training step chains three pieces, each with
 * its own backward,
 *
 *   images --front (jax-js)--> x0, drive [B, N, D]            vjp: jax-js grad of <x0, dx0> + <drive, ddrive>
 *          --sheet (native)--> final states [B, N, D]          backward: hand-written C++ (src/engine/native-sheet.ts),
 *                                                              with the wiring cost and activation L1 folded in
 *          --readout (jax-js)--> task loss                     jax-js valueAndGrad in (readout params, output states)
 *
 * and adds the penalties that live outside the sheet in jax-js: the feature-consistency penalty
 * (a function of the sheet's weights) and, for learned positions, the wiring weights' and the
 * repulsion's gradients with respect to the positions. The maths is the jax objective's
 * (src/train/loss.ts); tests compare the two backends.
 */
import { grad, jit, numpy as np, tree, valueAndGrad } from "../engine/jax.ts";
import { type NativeAddon, type NativeSheet, sheetLeaves } from "../engine/native-sheet.ts";
import { positionDistances, repulsion } from "../geometry/learned.ts";
import type { SheetParams } from "../model/params.ts";
import { hostSheetLeaves, nativeSheetConfig, sheetLeaf } from "../model/sheet-native.ts";
import { patchify } from "../model/patches.ts";
import { decodePatches, type VisionFrontParams, type VisionParams, visionFront } from "../model/vision.ts";
import { featureConsistency, untiedWeights } from "../objectives/feature-consistency.ts";
import { wiringWeights } from "../objectives/wiring-cost.ts";
import { canonicalParamOrder } from "../checkpoint/param-tree.ts";
import { type AdamWState, adamwUpdate, decayMaskFor, mapParamLeaves } from "./adamw.ts";
import type { CompiledModel, EncodeOptions, StepMetrics } from "./compiled.ts";
import { addTrees, allFinite, type OptimizerSpec, scaleTree, sumOfSquares, type TrainState } from "./train-state.ts";
import type { SessionBase } from "./compiled-jax.ts";
import { type DeviceBatch, taskLoss } from "./loss.ts";

type Fn<A extends unknown[], R> = ((...args: A) => R) & { dispose(): void };
type Readout = Pick<VisionParams, "decoder" | "head">;
/** The parameters outside the sheet (front end, readout, positions), jax-js arrays. */
type Outside = Omit<VisionParams, "sheet">;

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export function compileNative(session: SessionBase, addon: NativeAddon): CompiledModel {
  const { sheet, vision, layout, spec, connectivity } = session;
  const n = sheet.num_columns;
  const d = sheet.dim;
  const width = connectivity?.k ?? n;
  const names = sheetLeaves({ value_proj: sheet.value_proj, attn_bias: sheet.attn_bias });
  const isMim = vision.task === "mim";
  const every = vision.inject === "every";
  const { start, end } = layout.outputArea;
  const idx = connectivity ? connectivity.indices : null;

  // activation buffers for the config's batch; a larger batch (e.g. in evaluation) re-plans them
  let kernelBatch = session.config.batch_size;
  let kernel: NativeSheet = addon.createSheet(nativeSheetConfig(sheet, vision, kernelBatch));
  const kernelFor = (batch: number): NativeSheet => {
    if (batch > kernelBatch) {
      kernel.dispose();
      kernel = addon.createSheet(nativeSheetConfig(sheet, vision, batch));
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

  // x0 and drive [B, N, D] of images [B, H, W, C] (mask [B, P] for MIM, a dummy otherwise)
  const front: Fn<[VisionFrontParams, np.Array, np.Array], [np.Array, np.Array]> = jit((fp: VisionFrontParams, images: np.Array, mask: np.Array) => {
    if (!isMim) mask.dispose();
    const { x0, drive, patches } = visionFront(fp, images, isMim ? mask : null, sheet, vision, layout);
    patches.dispose();
    return [x0, drive] as [np.Array, np.Array];
  });
  // vjp of the front end: the gradient of <x0, dx0> (+ <drive, ddrive> with inject "every") in its parameters
  const frontVjp: Fn<[VisionFrontParams, np.Array, np.Array, np.Array, ...np.Array[]], VisionFrontParams> = jit(
    grad((fp: VisionFrontParams, images: np.Array, mask: np.Array, dx0: np.Array, ...ddrive: np.Array[]) => {
      if (!isMim) mask.dispose();
      const { x0, drive, patches } = visionFront(fp, images, isMim ? mask : null, sheet, vision, layout);
      patches.dispose();
      const dot = x0.mul(dx0).sum();
      return every ? dot.add(drive.mul(ddrive[0]).sum()) : (drive.dispose(), dot);
    }),
  );
  // the readout's task loss from the output-area states [B, P_out, D]
  const readoutLoss = (r: Readout, out: np.Array, images: np.Array, mask: np.Array, labels: np.Array): [np.Array, np.Array] => {
    const patches = isMim ? patchify(images, vision.patch_size) : (images.dispose(), np.zeros([]));
    const { task, correct } = taskLoss(r, out, patches, mask, labels, vision);
    return [task, correct];
  };
  const readoutGrad: Fn<[Readout, np.Array, np.Array, np.Array, np.Array], [[np.Array, np.Array], [Readout, np.Array]]> = jit(
    valueAndGrad(readoutLoss, { argnums: [0, 1], hasAux: true }),
  );
  const readoutEval: Fn<[Readout, np.Array, np.Array, np.Array, np.Array], [np.Array, np.Array]> = jit(readoutLoss);
  const decode: Fn<[{ weight: np.Array; bias: np.Array }, np.Array], np.Array> = jit(decodePatches);

  // feature consistency (a function of the sheet's untied weights): value and gradient
  const neighbours = session.neighbours ? np.array(session.neighbours).reshape([n, n]) : null;
  const consistencyOf = (p: SheetParams, a: np.Array) => {
    const weights = untiedWeights(p, sheet).map((w) => w.ref);
    tree.dispose(p);
    return featureConsistency(weights, a);
  };
  const consistencyGrad: Fn<[SheetParams, np.Array], [np.Array, SheetParams]> | null = neighbours ? jit(valueAndGrad(consistencyOf)) : null;
  const consistencyValue: Fn<[SheetParams, np.Array], np.Array> | null = neighbours ? jit(consistencyOf) : null;
  // learned positions: the wiring weights [N, N] they give, and the gradient in them of
  // cw * (sum attnMean * W) / N + cr * repulsion (the wiring term's attention side is native)
  const positions = spec.positions;
  const wiringOf = (pos: np.Array) => wiringWeights(positionDistances(pos, positions!.space), spec.wiring);
  const positionWeights: Fn<[np.Array], np.Array> | null = positions ? jit(wiringOf) : null;
  const positionGrad: Fn<[np.Array, np.Array, np.Array, np.Array], [[np.Array, np.Array], np.Array]> | null = positions
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
   * positions) and `sheetHost` (the sheet's leaves on the host, in addon order); consumes images
   * and mask, except with `train` (the readout and the front end's vjp read them again).
   */
  const forward = async (params: Outside, sheetHost: Float32Array[], images: np.Array, mask: np.Array, train: boolean, attn: Float32Array | null) => {
    const b = images.shape[0];
    const [x0, drive] = front(tree.ref(frontOf(params)), train ? images.ref : images, train ? mask.ref : mask);
    const x0Host = (await x0.data()) as Float32Array;
    const driveHost = every ? ((await drive.data()) as Float32Array) : (drive.dispose(), null);
    const weights = positionWeights ? ((await positionWeights(params.positions!.ref).data()) as Float32Array) : session.wiringWeights;
    const result = kernelFor(b).forward({
      params: sheetHost,
      x0: x0Host,
      drive: driveHost,
      connectivity: idx,
      wiringWeights: weights,
      batch: b,
      train,
      attn,
    });
    return { b, result };
  };

  /** Output-area states [B, P_out, D] of final states [B, N, D]. */
  const outputStates = (x: Float32Array, b: number): np.Array => {
    const out = new Float32Array(b * (end - start) * d);
    for (let i = 0; i < b; i++) out.set(x.subarray((i * n + start) * d, (i * n + end) * d), i * (end - start) * d);
    return np.array(out).reshape([b, end - start, d]);
  };

  const metricsOf = (step: number, task: number, correct: number, r: { wiring: number; l1: number; hoyer: number }, consistency: number, spread: number): StepMetrics => {
    const c = session.coefficients(step);
    const loss = sum([task, c.wiring * r.wiring, c.consistency * consistency, c.repulsion * spread, c.activation * r.l1]);
    return { loss, task, wiring: r.wiring, consistency, repulsion: spread, activation_l1: r.l1, activation_hoyer: r.hoyer, correct };
  };

  /**
   * Loss, metrics and gradients of one batch, the sheet's on the host. Borrows `params` and
   * `sheetHost`; `sheetTree` gives the sheet as jax-js arrays (borrowed; only the consistency
   * penalty needs it). Consumes `batch`. Returns the sheet's gradients in addon order and the
   * other leaves' by path (owned).
   */
  const gradients = async (params: Outside, sheetHost: Float32Array[], sheetTree: () => SheetParams, batch: DeviceBatch, step: number) => {
    const c = session.coefficients(step);
    const { b, result } = await forward(params, sheetHost, batch.images, batch.mask, true, null);
    // readout: task loss and its gradient in the readout parameters and the output states
    const [[task, correct], [readoutGrads, dOut]] = readoutGrad(tree.ref(readoutOf(params)), outputStates(result.x, b), batch.images.ref, batch.mask.ref, batch.labels);
    const dOutHost = (await dOut.data()) as Float32Array;
    const dx = new Float32Array(b * n * d);
    const p = end - start;
    for (let i = 0; i < b; i++) dx.set(dOutHost.subarray(i * p * d, (i + 1) * p * d), (i * n + start) * d);
    // the sheet's backward, with the wiring cost and the activation penalty folded in
    const sheetGrads = sheetHost.map((leaf) => new Float32Array(leaf.length));
    const dx0 = new Float32Array(b * n * d);
    const ddrive = every ? new Float32Array(b * n * d) : null;
    kernel.backward({ dx, wiringCoef: c.wiring, activationCoef: c.activation, grads: sheetGrads, dx0, ddrive });
    // the front end's vjp
    const frontGrads = frontVjp(tree.ref(frontOf(params)), batch.images, batch.mask, np.array(dx0).reshape([b, n, d]), ...(ddrive ? [np.array(ddrive).reshape([b, n, d])] : []));
    const other = new Map<string, np.Array>();
    const collect = (prefix: string, node: unknown) => {
      if (node instanceof np.Array) other.set(prefix, node);
      else for (const [key, child] of Object.entries(node as Record<string, unknown>)) collect(prefix ? `${prefix}.${key}` : key, child);
    };
    collect("", frontGrads);
    collect("", readoutGrads);
    // penalties outside the sheet
    let consistency = 0;
    if (consistencyGrad && neighbours) {
      const [value, g] = consistencyGrad(tree.ref(sheetTree()), neighbours.ref);
      consistency = (await value.data())[0];
      for (const [i, name] of names.entries()) {
        const extra = (await sheetLeaf(g, name).ref.data()) as Float32Array;
        const into = sheetGrads[i];
        for (let t = 0; t < into.length; t++) into[t] += c.consistency * extra[t];
      }
      tree.dispose(g);
    }
    let spread = 0;
    if (positionGrad) {
      const [[total, s], g] = positionGrad(params.positions!.ref, np.array(result.attnMean).reshape([n, width]), np.array(c.wiring), np.array(c.repulsion));
      total.dispose();
      spread = (await s.data())[0];
      other.set("positions", g);
    }
    const metrics = metricsOf(step, (await task.data())[0], (await correct.data())[0], result, consistency, spread);
    return { metrics, sheetGrads, other };
  };

  /**
   * The optimiser state of the native backend: the sheet's parameters and AdamW moments live on
   * the host between steps (updated in place by the addon's AdamW), the few other leaves stay
   * jax-js arrays with jax-js AdamW; clipping uses the global norm over both. Takes ownership of
   * `params0` and `opt0`.
   */
  const nativeTrainState = async (params0: VisionParams, opt0: AdamWState<VisionParams>, spec: OptimizerSpec): Promise<TrainState> => {
    const shapes = names.map((name) => sheetLeaf(params0.sheet, name).shape);
    const [hostP, hostM, hostV] = await Promise.all([params0.sheet, opt0.mu.sheet, opt0.nu.sheet].map((t) => hostSheetLeaves(t, names)));
    const weightDecay = names.map((name, i) => (spec.noDecay(`sheet.${name}`, shapes[i]) ? 0 : spec.adamw.weight_decay));
    const badScale = names.find((name) => spec.lrScale(`sheet.${name}`) !== 1);
    if (badScale) throw new Error(`native train state: sheet.${badScale} has a learning-rate scale; only parameters outside the sheet may`);
    tree.dispose([params0.sheet, opt0.mu.sheet, opt0.nu.sheet]);
    const without = <T extends { sheet?: unknown }>(t: T): Omit<T, "sheet"> => Object.fromEntries(Object.entries(t).filter(([key]) => key !== "sheet")) as Omit<T, "sheet">;
    let rest: Outside = without(params0);
    let restOpt: AdamWState<Outside> = { step: opt0.step, mu: without(opt0.mu), nu: without(opt0.nu) };
    const restDecay = decayMaskFor(rest, (path, shape) => spec.noDecay(path, shape));
    const restLr = mapParamLeaves(rest, (path) => spec.lrScale(path), "lrScale");
    let sheetAcc: Float32Array[] | null = null;
    let restAcc: Outside | null = null;
    let micro = 0;
    // jax-js views of the whole state, built when asked for and kept until the next update
    let view: { params: VisionParams; opt: AdamWState<VisionParams> } | null = null;
    const sheetTreeOf = (host: Float32Array[]): SheetParams => {
      const root: Record<string, unknown> = {};
      names.forEach((name, i) => {
        const keys = name.split(".");
        let node = root;
        for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
        node[keys[keys.length - 1]] = np.array(host[i].slice()).reshape(shapes[i]);
      });
      return root as unknown as SheetParams;
    };
    const current = () => {
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
        const { metrics, sheetGrads, other } = await gradients(rest, hostP, () => current().params.sheet, batch, step);
        const grads = mapParamLeaves(rest, (path) => other.get(path)!, "native accumulate") as unknown as Outside;
        if (sheetAcc === null) sheetAcc = sheetGrads;
        else sheetAcc.forEach((acc, i) => sheetGrads[i].forEach((g, t) => (acc[t] += g)));
        restAcc = restAcc === null ? grads : addTrees(restAcc, grads);
        micro++;
        return metrics;
      },
      async update(lr) {
        if (sheetAcc === null || restAcc === null) throw new Error("update: no gradient was accumulated");
        dropView();
        const mean = 1 / micro;
        let scale = mean;
        let norm = NaN;
        if (spec.clipNorm !== null) {
          // the global norm of the averaged gradient, over the host leaves and the jax-js ones (as clipByGlobalNorm)
          norm = Math.sqrt(addon.sumSquares(sheetAcc) * mean * mean + (await sumOfSquares(restAcc)) * mean * mean);
          scale = mean * Math.min(1, spec.clipNorm / (norm + 1e-6));
        }
        const t = restOpt.step + 1;
        const { beta1, beta2, eps } = spec.adamw;
        addon.adamw({ params: hostP, grads: sheetAcc, m: hostM, v: hostV, lr, beta1, beta2, eps, weightDecay, step: t, gradScale: scale });
        const updated = adamwUpdate(rest, scaleTree(restAcc, scale), restOpt, lr, spec.adamw, restDecay, restLr);
        rest = updated.params;
        restOpt = updated.state;
        sheetAcc = null;
        restAcc = null;
        micro = 0;
        return norm;
      },
      finite: async () => Number.isFinite(addon.sumSquares(hostP)) && (await allFinite(rest)),
      current,
      dispose() {
        dropView();
        tree.dispose([rest, restOpt.mu, restOpt.nu, restAcc]);
      },
    };
  };

  return {
    backend: "native",
    async gradStep(params: VisionParams, batch: DeviceBatch, step: number) {
      const { metrics, sheetGrads, other } = await gradients(params, await hostSheetLeaves(params.sheet, names), () => params.sheet, batch, step);
      const bySheetLeaf = new Map<string, Float32Array>(names.map((name, i) => [name, sheetGrads[i]]));
      const pick = (path: string, shape: number[]): np.Array => (path.startsWith("sheet.") ? np.array(bySheetLeaf.get(path.slice(6))!).reshape(shape) : other.get(path)!);
      return { metrics, grads: mapParamLeaves(params, pick, "native gradStep") as unknown as VisionParams };
    },
    trainState: (params: VisionParams, opt: AdamWState<VisionParams>, spec: OptimizerSpec) => nativeTrainState(params, opt, spec),
    async evalStep(params: VisionParams, batch: DeviceBatch, step: number) {
      const { b, result } = await forward(params, await hostSheetLeaves(params.sheet, names), batch.images.ref, batch.mask.ref, false, null);
      const [task, correct] = readoutEval(tree.ref(readoutOf(params)), outputStates(result.x, b), batch.images, batch.mask, batch.labels);
      let consistency = 0;
      if (consistencyValue && neighbours) consistency = (await consistencyValue(tree.ref(params.sheet), neighbours.ref).data())[0];
      let spread = 0;
      if (positions && params.positions) {
        const s = repulsion(positionDistances(params.positions.ref, positions.space), positions.spacing);
        spread = (await s.data())[0];
      }
      return metricsOf(step, (await task.data())[0], (await correct.data())[0], result, consistency, spread);
    },
    async encode(params: VisionParams, images: np.Array, options: EncodeOptions = {}) {
      const b = images.shape[0];
      const maps = options.attention ? new Float32Array(b * sheet.depth * n * width) : null;
      const { result } = await forward(params, await hostSheetLeaves(params.sheet, names), images, np.zeros([b, 1]), false, maps);
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
      const { b, result } = await forward(params, await hostSheetLeaves(params.sheet, names), images, mask, false, null);
      return (await decode(tree.ref(params.decoder!), outputStates(result.x, b)).data()) as Float32Array;
    },
    dispose() {
      kernel.dispose();
      for (const f of [front, frontVjp, readoutGrad, readoutEval, decode, consistencyGrad, consistencyValue, positionWeights, positionGrad]) f?.dispose();
      neighbours?.dispose();
    },
  };
}
