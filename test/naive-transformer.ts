/**
 * An independent, naive reference of the generalised sheet: a transformer
 * block stack when everything is tied, the column sheet when everything is
 * untied and recurrent, anything in between. Plain loops over Float64 numbers;
 * parameters are host tensors (flat values + shape) looked up by name, with the
 * leading [depth] / [N] axes indexed by hand. Written from the textbook
 * definition of multi-head attention, not from the model code.
 */
import { gelu, layerNorm, linear, type Mat, type Vec } from "./naive-sheet.ts";

export interface HostTensor {
  shape: number[];
  values: ArrayLike<number>;
}

export interface NaiveSwitches {
  n: number;
  d: number;
  heads: number;
  depth: number;
  recurrent: boolean;
  untie_norm: boolean;
  untie_attn: boolean;
  untie_mlp: boolean;
  value_proj: boolean;
  attn_bias: boolean;
  skip_attn: boolean;
  scale: number;
  eps: number;
}

/** The slice of `t` for block `layer` and column `column`, as a vector or matrix. */
function pick(t: HostTensor, s: NaiveSwitches, layer: number, column: number, untied: boolean): { at: (...idx: number[]) => number; shape: number[] } {
  const lead: number[] = [];
  let shape = t.shape;
  if (!s.recurrent) {
    lead.push(layer);
    shape = shape.slice(1);
  }
  if (untied) {
    lead.push(column);
    shape = shape.slice(1);
  }
  const core = shape;
  const coreSize = core.reduce((a, b) => a * b, 1);
  let offset = 0;
  let stride = coreSize;
  const leadShape = t.shape.slice(0, lead.length);
  for (let i = lead.length - 1; i >= 0; i--) {
    offset += lead[i] * stride;
    stride *= leadShape[i];
  }
  return {
    shape: core,
    at: (...idx: number[]) => {
      let o = 0;
      for (let i = 0; i < idx.length; i++) o = o * core[i] + idx[i];
      return Number(t.values[offset + o]);
    },
  };
}

const vec = (p: ReturnType<typeof pick>): Vec => Array.from({ length: p.shape[0] }, (_, i) => p.at(i));
const mat = (p: ReturnType<typeof pick>): Mat => Array.from({ length: p.shape[0] }, (_, r) => Array.from({ length: p.shape[1] }, (_, c) => p.at(r, c)));

/** Apply the sheet to one sample x [N][D]; returns final x and the head-mean attention of every step [depth][N][N]. */
export function naiveSheetApply(params: Record<string, HostTensor>, s: NaiveSwitches, x0: Mat): { x: Mat; attn: Mat[] } {
  let x = x0.map((r) => r.slice());
  const maps: Mat[] = [];
  const dh = s.d / s.heads;
  for (let l = 0; l < s.depth; l++) {
    const get = (name: string, column: number, untied: boolean) => pick(params[name], s, l, column, untied);
    const h = x.map((xn, n) => layerNorm(xn, vec(get("norm1.weight", n, s.untie_norm)), vec(get("norm1.bias", n, s.untie_norm)), s.eps));
    const q = h.map((hn, n) => linear(mat(get("attn.q.weight", n, s.untie_attn)), hn, vec(get("attn.q.bias", n, s.untie_attn))));
    const k = h.map((hn, n) => linear(mat(get("attn.k.weight", n, s.untie_attn)), hn));
    const v = s.value_proj ? h.map((hn, n) => linear(mat(get("attn.v.weight", n, s.untie_attn)), hn, vec(get("attn.v.bias", n, s.untie_attn)))) : h;
    const qkPerHead = q[0].length / s.heads;
    const attnMean: Mat = Array.from({ length: s.n }, () => new Array<number>(s.n).fill(0));
    const out: Mat = Array.from({ length: s.n }, () => new Array<number>(s.d).fill(0));
    for (let head = 0; head < s.heads; head++) {
      for (let i = 0; i < s.n; i++) {
        const scores: number[] = [];
        for (let j = 0; j < s.n; j++) {
          let dot = 0;
          for (let c = 0; c < qkPerHead; c++) dot += q[i][head * qkPerHead + c] * k[j][head * qkPerHead + c];
          scores.push(dot * s.scale + (s.attn_bias ? get("attn.attn_bias", 0, false).at(i, j) : 0));
        }
        const m = Math.max(...scores);
        const e = scores.map((z) => Math.exp(z - m));
        const total = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j < s.n; j++) {
          const a = e[j] / total;
          attnMean[i][j] += a / s.heads;
          for (let c = 0; c < dh; c++) out[i][head * dh + c] += a * v[j][head * dh + c];
        }
      }
    }
    const projected = s.value_proj ? out.map((on, n) => linear(mat(get("attn.o.weight", n, s.untie_attn)), on, vec(get("attn.o.bias", n, s.untie_attn)))) : out;
    x = x.map((xn, n) => (s.skip_attn ? xn.map((xi, i) => xi + projected[n][i]) : projected[n]));
    x = x.map((xn, n) => {
      const hn = layerNorm(xn, vec(get("norm2.weight", n, s.untie_norm)), vec(get("norm2.bias", n, s.untie_norm)), s.eps);
      const hidden = linear(mat(get("mlp.fc1.weight", n, s.untie_mlp)), hn, vec(get("mlp.fc1.bias", n, s.untie_mlp))).map(gelu);
      const y = linear(mat(get("mlp.fc2.weight", n, s.untie_mlp)), hidden);
      return xn.map((xi, i) => xi + y[i]);
    });
    maps.push(attnMean);
  }
  return { x, attn: maps };
}
