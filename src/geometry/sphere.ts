/** Columns spread near-uniformly over a sphere; distance is along the surface. */
import type { ColumnLayout } from "./types.ts";

/** Golden angle pi * (3 - sqrt 5), the azimuth step of the Fibonacci lattice. */
export const GOLDEN_ANGLE = Math.PI * (3 - Math.sqrt(5));

/**
 * `n` points of the Fibonacci lattice on a sphere of radius `radius`, [n, 3] row-major:
 * point i has height y = 1 - 2(i + 0.5)/n and azimuth i * golden angle.
 */
export function fibonacciSphere(n: number, radius = 1): Float64Array {
  const out = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    const y = 1 - (2 * (i + 0.5)) / n;
    const rho = Math.sqrt(Math.max(0, 1 - y * y));
    const theta = GOLDEN_ANGLE * i;
    out[3 * i] = radius * rho * Math.cos(theta);
    out[3 * i + 1] = radius * y;
    out[3 * i + 2] = radius * rho * Math.sin(theta);
  }
  return out;
}

/** Great-circle distance r * acos(clamp(a.b / r^2, -1, 1)) between two points on a sphere of radius r. */
export function geodesicDistance(a: ArrayLike<number>, b: ArrayLike<number>, radius: number): number {
  const dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const c = Math.min(1, Math.max(-1, dot / (radius * radius)));
  return radius * Math.acos(c);
}

/** Lay out `n` Fibonacci-lattice columns on a sphere; one area "sheet" without a grid. */
export function sphereLayout(n: number, radius = 1): ColumnLayout {
  return { numColumns: n, positions: fibonacciSphere(n, radius), positionDim: 3, areas: [{ name: "sheet", start: 0, end: n }] };
}
