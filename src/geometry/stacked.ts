/** Stacked areas: a pile of square grids, one above the other along z. */
import type { Area, ColumnLayout } from "./types.ts";

/** Default spacing between stacked areas along z. */
export const DEFAULT_STACK_OFFSET = 2;

/** `num` evenly spaced values from `start` to `stop`, endpoints included; same arithmetic as numpy.linspace. */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const y = new Float64Array(num);
  const div = num - 1;
  const delta = stop - start;
  if (div > 0) {
    const step = delta / div;
    for (let i = 0; i < num; i++) y[i] = (step === 0 ? (i / div) * delta : i * step) + start;
    y[num - 1] = stop;
  } else {
    for (let i = 0; i < num; i++) y[i] = i * delta + start;
  }
  return y;
}

/**
 * Lay out stacked areas: area i is a w x w grid with x, y at linspace(-w/2, w/2, w)
 * and z = i * offset; areas "area0", "area1", ... in order, row-major inside an area.
 */
export function stackedLayout(widths: readonly number[], offset: number = DEFAULT_STACK_OFFSET): ColumnLayout {
  const n = widths.reduce((s, w) => s + w * w, 0);
  const positions = new Float64Array(n * 3);
  const areas: Area[] = [];
  let start = 0;
  widths.forEach((w, a) => {
    const coords = linspace(-w / 2, w / 2, w);
    const z = a * offset;
    for (let row = 0; row < w; row++) {
      for (let col = 0; col < w; col++) {
        const i = start + row * w + col;
        positions[3 * i] = coords[col];
        positions[3 * i + 1] = coords[row];
        positions[3 * i + 2] = z;
      }
    }
    areas.push({ name: `area${a}`, start, end: start + w * w, grid: [w, w] });
    start += w * w;
  });
  return { numColumns: n, positions, positionDim: 3, areas };
}
