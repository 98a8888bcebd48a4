/**
 * Column statistics over a set of held-out images (one forward each): energy (mean |x|, as
 * `columnformer analyze`'s energy maps), preferred class (the class with the largest mean
 * energy) and class selectivity, (max - mean) / (max + mean) of the class-mean energies
 * (0: the same for every class, 1: only one class drives it). Per step: [depth, N].
 */

export interface PopulationStats {
  images: number;
  energy: Float32Array;
  /** Class index per column and step, NaN when no labelled image was seen. */
  preferred: Float32Array;
  selectivity: Float32Array;
}

/**
 * @param energies one [depth, N] energy array per image
 * @param labels the images' class labels (null: unlabelled, used for energy only)
 * @param classes number of classes
 */
export function populationStats(energies: Float32Array[], labels: (number | null)[], classes: number, depth: number, n: number): PopulationStats {
  const size = depth * n;
  const energy = new Float32Array(size);
  const sums = new Float64Array(classes * size);
  const counts = new Float64Array(classes);
  energies.forEach((e, k) => {
    for (let i = 0; i < size; i++) energy[i] += e[i] / energies.length;
    const c = labels[k];
    if (c === null || c === undefined || c < 0 || c >= classes) return;
    counts[c]++;
    for (let i = 0; i < size; i++) sums[c * size + i] += e[i];
  });
  const preferred = new Float32Array(size).fill(NaN);
  const selectivity = new Float32Array(size).fill(NaN);
  const seen = Array.from(counts, (c, k) => (c > 0 ? k : -1)).filter((k) => k >= 0);
  if (seen.length > 0) {
    for (let i = 0; i < size; i++) {
      let best = seen[0];
      let max = -Infinity;
      let mean = 0;
      for (const c of seen) {
        const m = sums[c * size + i] / counts[c];
        mean += m / seen.length;
        if (m > max) {
          max = m;
          best = c;
        }
      }
      preferred[i] = best;
      selectivity[i] = max + mean > 0 ? (max - mean) / (max + mean) : 0;
    }
  }
  return { images: energies.length, energy, preferred, selectivity };
}
