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
import { mapParamLeaves } from "./adamw.ts";
import type { CompiledModel, EncodeOptions, StepMetrics } from "./compiled.ts";
import type { SessionBase } from "./compiled-jax.ts";
import { type DeviceBatch, taskLoss } from "./loss.ts";

type Fn<A extends unknown[], R> = ((...args: A) => R) & { dispose(): void };
type Readout = Pick<VisionParams, "decoder" | "head">;

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export function compileNative(session: SessionBase, addon: NativeAddon, maxBatch: number): CompiledModel {
  const { sheet, vision, layout, spec, connectivity } = session;
  const n = sheet.num_columns;
  const d = sheet.dim;
  const width = connectivity?.k ?? n;
  const names = sheetLeaves({ value_proj: sheet.value_proj, attn_bias: sheet.attn_bias });
  const isMim = vision.task === "mim";
  const every = vision.inject === "every";
  const { start, end } = layout.outputArea;
  const idx = connectivity ? connectivity.indices : null;

  let kernel: NativeSheet = addon.createSheet(nativeSheetConfig(sheet, vision, maxBatch));
  let kernelBatch = maxBatch;
  const kernelFor = (batch: number): NativeSheet => {
    if (batch > kernelBatch) {
      kernel.dispose();
      kernel = addon.createSheet(nativeSheetConfig(sheet, vision, batch));
      kernelBatch = batch;
    }
    return kernel;
  };

  const frontOf = (p: VisionParams): VisionFrontParams => ({
    patch_embed: p.patch_embed,
    mask_token: p.mask_token,
    ...(p.init_state ? { init_state: p.init_state } : {}),
  });
  const readoutOf = (p: VisionParams): Readout => (isMim ? { decoder: p.decoder } : { head: p.head });

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
  const consistencyGrad: Fn<[SheetParams, np.Array], [np.Array, SheetParams]> | null = neighbours
    ? jit(
        valueAndGrad((p: SheetParams, a: np.Array) => {
          const weights = untiedWeights(p, sheet).map((w) => w.ref);
          tree.dispose(p);
          return featureConsistency(weights, a);
        }),
      )
    : null;
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

  /** Front end and native forward of one batch. Borrows `params`; consumes images and mask. */
  const forward = async (params: VisionParams, images: np.Array, mask: np.Array, train: boolean, attn: Float32Array | null) => {
    const b = images.shape[0];
    const [x0, drive] = front(tree.ref(frontOf(params)), train ? images.ref : images, train ? mask.ref : mask);
    const x0Host = (await x0.data()) as Float32Array;
    const driveHost = every ? ((await drive.data()) as Float32Array) : (drive.dispose(), null);
    const weights = positionWeights ? ((await positionWeights(params.positions!.ref).data()) as Float32Array) : session.wiringWeights;
    const result = kernelFor(b).forward({
      params: await hostSheetLeaves(params.sheet, names),
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

  return {
    backend: "native",
    async gradStep(params: VisionParams, batch: DeviceBatch, step: number) {
      const c = session.coefficients(step);
      const { b, result } = await forward(params, batch.images, batch.mask, true, null);
      // readout: task loss and its gradient in the readout parameters and the output states
      const [[task, correct], [readoutGrads, dOut]] = readoutGrad(
        tree.ref(readoutOf(params)),
        outputStates(result.x, b),
        batch.images.ref,
        batch.mask.ref,
        batch.labels,
      );
      const dOutHost = (await dOut.data()) as Float32Array;
      const dx = new Float32Array(b * n * d);
      const p = end - start;
      for (let i = 0; i < b; i++) dx.set(dOutHost.subarray(i * p * d, (i + 1) * p * d), (i * n + start) * d);
      // the sheet's backward, with the wiring cost and the activation penalty folded in
      const sheetGrads = names.map((name) => new Float32Array(sheetLeaf(params.sheet, name).size));
      const dx0 = new Float32Array(b * n * d);
      const ddrive = every ? new Float32Array(b * n * d) : null;
      kernel.backward({ dx, wiringCoef: c.wiring, activationCoef: c.activation, grads: sheetGrads, dx0, ddrive });
      // the front end's vjp
      const frontGrads = frontVjp(
        tree.ref(frontOf(params)),
        batch.images,
        batch.mask,
        np.array(dx0).reshape([b, n, d]),
        ...(ddrive ? [np.array(ddrive).reshape([b, n, d])] : []),
      );
      // penalties outside the sheet
      let consistency = 0;
      let consistencyGrads: SheetParams | null = null;
      if (consistencyGrad && neighbours) {
        const [value, g] = consistencyGrad(tree.ref(params.sheet), neighbours.ref);
        consistency = (await value.data())[0];
        consistencyGrads = g;
      }
      let spread = 0;
      let positionGrads: np.Array | null = null;
      if (positionGrad) {
        const [[total, s], g] = positionGrad(params.positions!.ref, np.array(result.attnMean).reshape([n, width]), np.array(c.wiring), np.array(c.repulsion));
        total.dispose();
        spread = (await s.data())[0];
        positionGrads = g;
      }
      const metrics = metricsOf(step, (await task.data())[0], (await correct.data())[0], result, consistency, spread);
      // assemble the gradient tree in the parameters' structure
      const bySheetLeaf = new Map<string, Float32Array>(names.map((name, i) => [name, sheetGrads[i]]));
      const consistencyLeaf = (name: string) => (consistencyGrads ? sheetLeaf(consistencyGrads, name) : null);
      const pick = (path: string, shape: number[]): np.Array => {
        const [head, ...rest] = path.split(".");
        const sub = rest.join(".");
        if (head === "sheet") {
          const g = np.array(bySheetLeaf.get(sub)!).reshape(shape);
          const extra = consistencyLeaf(sub);
          return extra ? g.add(extra.ref.mul(c.consistency)) : g;
        }
        if (head === "positions") return positionGrads!;
        if (head === "decoder" || head === "head") return (readoutGrads as Record<string, Record<string, np.Array>>)[head][sub].ref;
        const fg = frontGrads as unknown as Record<string, np.Array | Record<string, np.Array>>;
        const node = fg[head];
        return (node instanceof np.Array ? node : node[sub]).ref;
      };
      const grads = mapParamLeaves(params, pick, "native gradStep") as unknown as VisionParams;
      tree.dispose([frontGrads, readoutGrads, consistencyGrads]);
      return { metrics, grads };
    },
    async evalStep(params: VisionParams, batch: DeviceBatch, step: number) {
      const { b, result } = await forward(params, batch.images.ref, batch.mask.ref, false, null);
      const [task, correct] = readoutEval(tree.ref(readoutOf(params)), outputStates(result.x, b), batch.images, batch.mask, batch.labels);
      let consistency = 0;
      if (consistencyGrad && neighbours) {
        const [value, g] = consistencyGrad(tree.ref(params.sheet), neighbours.ref);
        consistency = (await value.data())[0];
        tree.dispose(g);
      }
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
      const { result } = await forward(params, images, np.zeros([b, 1]), false, maps);
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
      const { b, result } = await forward(params, images, mask, false, null);
      return (await decode(tree.ref(params.decoder!), outputStates(result.x, b)).data()) as Float32Array;
    },
    dispose() {
      kernel.dispose();
      for (const f of [front, frontVjp, readoutGrad, readoutEval, decode, consistencyGrad, positionWeights, positionGrad]) f?.dispose();
      neighbours?.dispose();
    },
  };
}
