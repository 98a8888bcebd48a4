/**
 * Linear probe: multinomial logistic regression on frozen features.
 *
 * The standard read-out of what a self-supervised (e.g. masked image
 * modelling) representation has learned: train only a linear classifier
 * `logits = x W + b` on fixed features and report its accuracy. A raw-pixel
 * baseline uses the same code with pixels as the features.
 *
 * Training: features are z-scored with TRAIN statistics (see
 * {@link standardize}), W and b start at zero (the problem is convex, so no
 * random init is needed), and mini-batches drawn by a seeded shuffle are fed
 * to one jitted `valueAndGrad` of the mean cross-entropy followed by the
 * project's AdamW ({@link adamwUpdate}) with a cosine learning-rate decay.
 * Weight decay applies to W only, not to b.
 */
import { blockUntilReady, jit, nn, numpy as np, tree, valueAndGrad, type OwnedFunction } from "../engine/jax.ts";
import { initEngine } from "../engine/engine.ts";
import { Rng, mixSeed } from "../engine/rng.ts";
import { adamwConfig, adamwInit, adamwUpdate, type AdamWState } from "../optim/adamw.ts";
import { cosineSchedule } from "../optim/schedule.ts";

/** Options of {@link linearProbe}. */
export interface ProbeOptions {
  /** Passes over the training set (default 30). */
  epochs?: number;
  /** Mini-batch size (default 256; capped at the training-set size). The last batch of an epoch may be smaller. */
  batchSize?: number;
  /** Peak AdamW learning rate, decayed by a cosine to 1% of it over training (default 3e-3). */
  lr?: number;
  /** Decoupled AdamW weight decay on W (not b) (default 1e-4). */
  weightDecay?: number;
  /** Seed of the mini-batch shuffle (default 0). The same seed and data give the same result. */
  seed?: number;
  /** Z-score every feature with the train mean/std, std floored at 1e-6 (default true). */
  standardize?: boolean;
  /** Called after every epoch with the 1-based epoch number and that epoch's mean training loss. */
  onEpoch?: (epoch: number, loss: number) => void;
}

/** Outcome of {@link linearProbe}. */
export interface ProbeResult {
  /** Fraction of training rows whose argmax logit equals the label (final model). */
  trainAccuracy: number;
  /** Fraction of test rows whose argmax logit equals the label (final model). */
  testAccuracy: number;
  /** Mean cross-entropy (nats, no weight-decay term) of the final model on the whole training set. */
  trainLoss: number;
  /** Epochs trained. */
  epochs: number;
  /** Feature dimension d. */
  numFeatures: number;
  /** Number of classes. */
  numClasses: number;
}

/** A labelled split: `features` row-major [n, numFeatures], `labels` [n] in [0, numClasses). */
export interface ProbeSplit {
  features: Float32Array;
  labels: Int32Array;
}

/** Floor on the per-feature standard deviation used by {@link standardize}. */
export const STD_FLOOR = 1e-6;

/**
 * Z-score features with statistics of the TRAIN rows only: per feature j,
 * `mean_j` and population `std_j = max(sqrt(mean((x - mean_j)^2)), stdFloor)`
 * over `trainFeatures`, then `(x - mean_j) / std_j` applied to both splits
 * (statistics accumulated in float64). Inputs are row-major [n, d]; they are
 * not modified.
 */
export function standardize(
  trainFeatures: Float32Array,
  testFeatures: Float32Array,
  d: number,
  stdFloor: number = STD_FLOOR,
): { train: Float32Array; test: Float32Array; mean: Float64Array; std: Float64Array } {
  checkPositiveInt(d, "standardize: d");
  if (trainFeatures.length % d !== 0 || testFeatures.length % d !== 0) {
    throw new Error(`standardize: feature lengths (${trainFeatures.length}, ${testFeatures.length}) are not multiples of d = ${d}`);
  }
  const n = trainFeatures.length / d;
  if (n === 0) throw new Error("standardize: the training set is empty");
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) mean[j] += trainFeatures[o + j];
  }
  for (let j = 0; j < d; j++) mean[j] /= n;
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) {
      const c = trainFeatures[o + j] - mean[j];
      std[j] += c * c;
    }
  }
  for (let j = 0; j < d; j++) std[j] = Math.max(Math.sqrt(std[j] / n), stdFloor);
  const apply = (x: Float32Array): Float32Array => {
    const out = new Float32Array(x.length);
    for (let o = 0; o < x.length; o += d) {
      for (let j = 0; j < d; j++) out[o + j] = (x[o + j] - mean[j]) / std[j];
    }
    return out;
  };
  return { train: apply(trainFeatures), test: apply(testFeatures), mean, std };
}

/**
 * Train a linear classifier on frozen features and report train/test accuracy.
 *
 * @param train training split, features row-major [nTrain, numFeatures]
 * @param test held-out split, features row-major [nTest, numFeatures]
 * @param numFeatures feature dimension d
 * @param numClasses number of classes (>= 2); every label must lie in [0, numClasses)
 * @throws Error on mismatched lengths, empty splits, non-finite features, or
 *   labels outside [0, numClasses) (including -1, the "unlabelled" marker)
 */
export async function linearProbe(
  train: ProbeSplit,
  test: ProbeSplit,
  numFeatures: number,
  numClasses: number,
  options: ProbeOptions = {},
): Promise<ProbeResult> {
  const d = numFeatures;
  const c = numClasses;
  checkPositiveInt(d, "linearProbe: numFeatures");
  if (!Number.isInteger(c) || c < 2) throw new Error(`linearProbe: numClasses must be an integer >= 2, got ${c}`);
  const epochs = options.epochs ?? 30;
  checkPositiveInt(epochs, "linearProbe: epochs");
  const batchOpt = options.batchSize ?? 256;
  checkPositiveInt(batchOpt, "linearProbe: batchSize");
  const lr = options.lr ?? 3e-3;
  if (!(Number.isFinite(lr) && lr > 0)) throw new Error(`linearProbe: lr must be > 0, got ${lr}`);
  const weightDecay = options.weightDecay ?? 1e-4;
  if (!(Number.isFinite(weightDecay) && weightDecay >= 0)) {
    throw new Error(`linearProbe: weightDecay must be >= 0, got ${weightDecay}`);
  }
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new Error(`linearProbe: seed must be an integer, got ${seed}`);
  const nTrain = checkSplit(train, "train", d, c);
  const nTest = checkSplit(test, "test", d, c);

  let xTrain = train.features;
  let xTest = test.features;
  if (options.standardize ?? true) ({ train: xTrain, test: xTest } = standardize(xTrain, xTest, d));

  await initEngine();
  const batchSize = Math.min(batchOpt, nTrain);
  const stepsPerEpoch = Math.ceil(nTrain / batchSize);
  const totalSteps = epochs * stepsPerEpoch;
  const schedule = cosineSchedule({ peak_lr: lr, warmup_steps: 0, total_steps: totalSteps, final_lr_fraction: 0.01 });
  const cfg = adamwConfig({ lr, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: weightDecay });
  const decayMask = { w: true, b: false };
  const step = trainStep();

  let params: ProbeParams = { w: np.zeros([d, c]), b: np.zeros([c]) };
  let state: AdamWState<ProbeParams> = adamwInit(params);
  const order = Array.from({ length: nTrain }, (_, i) => i);
  const xBuf = new Float32Array(batchSize * d);
  const yBuf = new Float32Array(batchSize * c);
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      new Rng(mixSeed(seed, epoch)).shuffle(order);
      let lossSum: np.Array | null = null;
      for (let s = 0; s < stepsPerEpoch; s++) {
        const start = s * batchSize;
        const bs = Math.min(batchSize, nTrain - start);
        yBuf.fill(0, 0, bs * c);
        for (let k = 0; k < bs; k++) {
          const row = order[start + k];
          xBuf.set(xTrain.subarray(row * d, row * d + d), k * d);
          yBuf[k * c + train.labels[row]] = 1;
        }
        const x = np.array(xBuf.slice(0, bs * d)).reshape([bs, d]);
        const y = np.array(yBuf.slice(0, bs * c)).reshape([bs, c]);
        const [loss, grads] = step(tree.ref(params), x, y);
        const weighted = loss.mul(bs);
        lossSum = lossSum === null ? weighted : lossSum.add(weighted);
        ({ params, state } = adamwUpdate(params, grads, state, schedule(state.step), cfg, decayMask));
        if (s % 16 === 15) await blockUntilReady(params);
      }
      const epochLoss = (await lossSum!.data())[0] / nTrain;
      options.onEpoch?.(epoch + 1, epochLoss);
    }
    const trainEval = await evaluate(params, xTrain, train.labels, nTrain, d, c);
    const testEval = await evaluate(params, xTest, test.labels, nTest, d, c);
    return {
      trainAccuracy: trainEval.accuracy,
      testAccuracy: testEval.accuracy,
      trainLoss: trainEval.loss,
      epochs,
      numFeatures: d,
      numClasses: c,
    };
  } finally {
    tree.dispose([params, state.mu, state.nu]);
  }
}

// ---------------------------------------------------------------------------

interface ProbeParams {
  w: np.Array;
  b: np.Array;
}

type TrainStep = OwnedFunction<(params: ProbeParams, x: np.Array, y: np.Array) => [np.Array, ProbeParams]>;

let cachedStep: TrainStep | null = null;

/** The jitted loss-and-gradient step, shared by every probe (jit caches one compilation per shape). */
function trainStep(): TrainStep {
  cachedStep ??= jit(
    valueAndGrad((params: ProbeParams, x: np.Array, y: np.Array): np.Array => {
      const logits = np.matmul(x, params.w).add(params.b);
      return nn.logSoftmax(logits, -1).mul(y).sum(-1).mean().mul(-1);
    }),
  ) as unknown as TrainStep;
  return cachedStep;
}

/** Accuracy and mean cross-entropy of the linear model on all rows (logits on device, the rest on host). Borrows `params`. */
async function evaluate(
  params: ProbeParams,
  features: Float32Array,
  labels: Int32Array,
  n: number,
  d: number,
  c: number,
): Promise<{ accuracy: number; loss: number }> {
  const chunk = 4096;
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < n; start += chunk) {
    const rows = Math.min(chunk, n - start);
    const x = np.array(features.slice(start * d, (start + rows) * d)).reshape([rows, d]);
    const logits = await np.matmul(x, params.w.ref).add(params.b.ref).data();
    for (let i = 0; i < rows; i++) {
      const o = i * c;
      let best = 0;
      let max = logits[o];
      for (let k = 1; k < c; k++) {
        if (logits[o + k] > max) {
          max = logits[o + k];
          best = k;
        }
      }
      let z = 0;
      for (let k = 0; k < c; k++) z += Math.exp(logits[o + k] - max);
      const label = labels[start + i];
      if (best === label) correct++;
      lossSum += Math.log(z) + max - logits[o + label];
    }
  }
  return { accuracy: correct / n, loss: lossSum / n };
}

function checkPositiveInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${what} must be a positive integer, got ${v}`);
}

/** Validate a split; returns its row count. */
function checkSplit(split: ProbeSplit, name: string, d: number, c: number): number {
  const { features, labels } = split;
  if (!(features instanceof Float32Array)) throw new Error(`linearProbe: ${name}.features must be a Float32Array`);
  if (!(labels instanceof Int32Array)) throw new Error(`linearProbe: ${name}.labels must be an Int32Array`);
  if (features.length !== labels.length * d) {
    throw new Error(
      `linearProbe: ${name}.features has ${features.length} values but ${name}.labels has ${labels.length} rows ` +
        `x ${d} features = ${labels.length * d}`,
    );
  }
  const n = labels.length;
  if (n === 0) throw new Error(`linearProbe: the ${name} split is empty`);
  let unlabelled = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (y === -1) unlabelled++;
    else if (y < 0 || y >= c) {
      throw new Error(`linearProbe: ${name}.labels[${i}] = ${y} is outside [0, ${c}) (numClasses = ${c})`);
    }
  }
  if (unlabelled > 0) {
    throw new Error(
      `linearProbe: ${name} has ${unlabelled} unlabelled rows (label -1); a probe needs labels, so drop them first`,
    );
  }
  for (let i = 0; i < features.length; i++) {
    if (!Number.isFinite(features[i])) {
      throw new Error(`linearProbe: ${name}.features[${i}] (row ${Math.floor(i / d)}) is not finite (${features[i]})`);
    }
  }
  return n;
}
