/** Flat H x W grid of columns with unit spacing, centred on the origin. */
import type { ColumnLayout } from "./types.ts";

/**
 * Lay out an H x W grid: column index = row * W + col, position
 * (x, y) = (col - (W-1)/2, row - (H-1)/2); one area "sheet" with grid [H, W].
 */
export function gridLayout(height: number, width: number): ColumnLayout {
  const n = height * width;
  const positions = new Float64Array(n * 2);
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      const i = row * width + col;
      positions[2 * i] = col - (width - 1) / 2;
      positions[2 * i + 1] = row - (height - 1) / 2;
    }
  }
  return { numColumns: n, positions, positionDim: 2, areas: [{ name: "sheet", start: 0, end: n, grid: [height, width] }] };
}
