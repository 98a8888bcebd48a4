/** H x W grid whose edges wrap around (a torus): no column sits at a border. */

/**
 * Distance between grid cells (r1, c1) and (r2, c2) on an H x W torus:
 * each axis offset wraps (dx = min(|dx|, W - |dx|)), then Euclidean.
 */
export function torusDistance(height: number, width: number, r1: number, c1: number, r2: number, c2: number): number {
  const ax = Math.abs(c1 - c2);
  const ay = Math.abs(r1 - r2);
  const dx = Math.min(ax, width - ax);
  const dy = Math.min(ay, height - ay);
  return Math.sqrt(dx * dx + dy * dy);
}
