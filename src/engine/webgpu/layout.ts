/**
 * The sheet's dimensions and where a parameter block lives in its leaf, for a NativeSheetConfig
 * (the TypeScript twin of native/engine.h: cf_leaf_own, cf_leaf_untied, cf_leaf_size and
 * Engine::p). A leaf is [depth]? [N]? own: [depth] for a stack, [N] when the module is untied.
 */
import { type NativeSheetConfig, type SheetLeafName, sheetLeaves } from "../native-sheet.ts";

export class SheetLayout {
  readonly N: number;
  readonly D: number;
  readonly QK: number;
  readonly H: number;
  readonly HQ: number;
  readonly M: number;
  readonly S: number;
  readonly K: number;
  /** Attention width: N dense, K sparse. */
  readonly W: number;
  readonly dh: number;
  readonly sparse: boolean;
  readonly leaves: SheetLeafName[];

  constructor(readonly c: NativeSheetConfig) {
    this.N = c.columns;
    this.D = c.dim;
    this.QK = c.qk_dim;
    this.H = c.heads;
    this.HQ = c.heads * c.qk_dim;
    this.M = c.mlp_dim;
    this.S = c.depth;
    this.K = c.sources;
    this.sparse = c.sources > 0;
    this.W = this.sparse ? c.sources : c.columns;
    this.dh = c.dim / c.heads;
    this.leaves = sheetLeaves(c);
  }

  /** Elements of one block (one step, one column). */
  own(leaf: SheetLeafName): number {
    const { D, HQ, M, N, W } = this;
    switch (leaf) {
      case "norm1.weight":
      case "norm1.bias":
      case "norm2.weight":
      case "norm2.bias":
      case "attn.v.bias":
      case "attn.o.bias":
        return D;
      case "attn.q.weight":
      case "attn.k.weight":
        return HQ * D;
      case "attn.q.bias":
        return HQ;
      case "attn.v.weight":
      case "attn.o.weight":
        return D * D;
      case "attn.attn_bias":
        return N * W;
      case "mlp.fc1.weight":
        return M * D;
      case "mlp.fc1.bias":
        return M;
      case "mlp.fc2.weight":
        return D * M;
    }
  }

  /** Whether the leaf has the column axis [N]. */
  untied(leaf: SheetLeafName): boolean {
    if (leaf.startsWith("norm")) return this.c.untie_norm;
    if (leaf === "attn.attn_bias") return false;
    if (leaf.startsWith("attn.")) return this.c.untie_attn;
    return this.c.untie_mlp;
  }

  /** Total elements of the leaf. */
  size(leaf: SheetLeafName): number {
    return (this.c.recurrent ? 1 : this.S) * (this.untied(leaf) ? this.N : 1) * this.own(leaf);
  }

  /** Offset of step s's blocks (column 0) in the leaf. */
  stepOffset(leaf: SheetLeafName, s: number): number {
    return this.c.recurrent ? 0 : s * (this.untied(leaf) ? this.N : 1) * this.own(leaf);
  }

  /** Stride between columns' blocks (0 for a shared leaf). */
  columnStride(leaf: SheetLeafName): number {
    return this.untied(leaf) ? this.own(leaf) : 0;
  }
}
