/**
 * AdamW and the sum of squares on host leaves for engines without the native addon: the
 * arithmetic of native/adamw.cc in float32 (every operation rounded with Math.fround), so an
 * engine that keeps the sheet's leaves on the host updates them exactly as the addon does.
 */
import type { NativeAdamWArgs } from "../native-sheet.ts";
import type { ResidentAdamWArgs } from "../sheet-engine.ts";

const f = Math.fround;

/** One AdamW update of host leaves in place (see NativeAdamWArgs). */
export function hostAdamW(a: NativeAdamWArgs): void {
  const n = a.params.length;
  for (const [key, list] of [["grads", a.grads], ["m", a.m], ["v", a.v]] as const) {
    if (!Array.isArray(list) || list.length !== n) throw new Error(`adamw: ${key} has ${list?.length} leaves, params has ${n}`);
    list.forEach((x, i) => {
      if (!(x instanceof Float32Array) || x.length !== a.params[i].length) throw new Error(`adamw: ${key}[${i}] must be a Float32Array of ${a.params[i].length} values (the length of the matching parameter)`);
    });
  }
  const { lr, beta1, beta2, eps, scale, bc1, bc2, c1, c2, keep } = adamwScalars(a, n);
  for (let l = 0; l < n; l++) {
    const wd = f(a.weightDecay[l]);
    const P = a.params[l];
    const G = a.grads[l];
    const Ms = a.m[l];
    const Vs = a.v[l];
    for (let i = 0; i < P.length; i++) {
      const p = wd !== 0 ? f(P[i] * keep[l]) : P[i];
      const g = f(G[i] * scale);
      const m = f(f(Ms[i] * beta1) + f(g * c1));
      const v = f(f(Vs[i] * beta2) + f(f(g * g) * c2));
      Ms[i] = m;
      Vs[i] = v;
      P[i] = f(p - f(f(f(m / bc1) / f(f(Math.sqrt(f(v / bc2))) + eps)) * lr));
    }
  }
}

/** AdamW's float32 scalars of one update (as native/addon.cc rounds them), checked; keep[l] = 1 - lr wd_l. */
export function adamwScalars(a: ResidentAdamWArgs, leaves: number) {
  if (!Array.isArray(a.weightDecay) || a.weightDecay.length !== leaves) throw new Error("adamw: weightDecay must be an array with one number per leaf (0 where no decay applies)");
  if (!Number.isFinite(a.step) || a.step < 1) throw new Error("adamw: step must be a number in [1, 1e15]");
  const lr = f(a.lr);
  const beta1 = f(a.beta1);
  const beta2 = f(a.beta2);
  const eps = f(a.eps);
  const scale = f(a.gradScale ?? 1);
  const bc1 = f(1 - beta1 ** a.step);
  const bc2 = f(1 - beta2 ** a.step);
  const c1 = f(1 - beta1);
  const c2 = f(1 - beta2);
  const keep = a.weightDecay.map((w, l) => {
    const wd = f(w);
    if (!Number.isFinite(wd) || wd < 0) throw new Error(`adamw: weightDecay[${l}] must be a number >= 0`);
    return f(1 - f(lr * wd));
  });
  return { lr, beta1, beta2, eps, scale, bc1, bc2, c1, c2, keep };
}

/** Sum of squares of all the arrays, in double. */
export function hostSumSquares(arrays: Float32Array[]): number {
  let sum = 0;
  for (const a of arrays) {
    if (!(a instanceof Float32Array)) throw new Error("sumSquares: arrays must be Float32Arrays");
    for (let i = 0; i < a.length; i++) sum += a[i] * a[i];
  }
  return sum;
}
