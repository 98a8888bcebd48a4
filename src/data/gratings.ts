/**
 * A built-in sine-grating stimulus set (generated, no download): every combination of
 * orientations x spatial frequencies x phases, as an in-memory {@link ImageDataset} whose
 * label is the orientation index. Pixel (row y, column x) of an S x S image, with
 * u = x - (S-1)/2, v = (S-1)/2 - y (v up):
 *
 *   I = 0.5 + 0.5 * contrast * sin(2 pi f (u cos theta + v sin theta) / S + phase)
 *
 * f in cycles per image; theta = 0 gives vertical bars (luminance varies along x), theta = 90
 * degrees horizontal bars. Grey images repeat the value in every channel.
 */
import type { Channels, ImageDataset, ImageExample } from "./types.ts";

/** Options of {@link gratingSet}. */
export interface GratingOptions {
  size: number;
  channels: Channels;
  /** Orientations in degrees (default 8: 0, 22.5, ..., 157.5). */
  orientations?: number[];
  /** Spatial frequencies in cycles per image (default: 2, 3.5 and 5 for 28 px; scaled with the size, at most the Nyquist limit). */
  frequencies?: number[];
  /** Phases in degrees (default 0, 90, 180, 270). */
  phases?: number[];
  /** Michelson contrast (default 1). */
  contrast?: number;
}

/** One grating's parameters. */
export interface GratingParams {
  orientation: number;
  frequency: number;
  phase: number;
  /** Index of its orientation in the set's list (its label). */
  orientationIndex: number;
  frequencyIndex: number;
}

/** The generated set: parameters per image and a data set over them. */
export interface GratingSet {
  orientations: number[];
  frequencies: number[];
  phases: number[];
  params: GratingParams[];
  dataset: ImageDataset;
}

/** Pixels of one grating, row-major [size, size, channels]. */
export function gratingImage(size: number, channels: number, orientationDeg: number, frequency: number, phaseDeg: number, contrast = 1): Float32Array {
  const th = (orientationDeg * Math.PI) / 180;
  const ph = (phaseDeg * Math.PI) / 180;
  const out = new Float32Array(size * size * channels);
  const c0 = (size - 1) / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x - c0;
      const v = c0 - y;
      const value = 0.5 + 0.5 * contrast * Math.sin((2 * Math.PI * frequency * (u * Math.cos(th) + v * Math.sin(th))) / size + ph);
      for (let k = 0; k < channels; k++) out[(y * size + x) * channels + k] = value;
    }
  }
  return out;
}

/** Generate the grating set (orientation-major, then frequency, then phase). */
export function gratingSet(o: GratingOptions): GratingSet {
  const orientations = o.orientations ?? Array.from({ length: 8 }, (_, i) => i * 22.5);
  const scale = o.size / 28;
  const frequencies = o.frequencies ?? [2, 3.5, 5].map((f) => Math.min(f * scale, o.size / 2));
  const phases = o.phases ?? [0, 90, 180, 270];
  const contrast = o.contrast ?? 1;
  const params: GratingParams[] = [];
  orientations.forEach((orientation, oi) => {
    frequencies.forEach((frequency, fi) => {
      phases.forEach((phase) => {
        params.push({ orientation, frequency, phase, orientationIndex: oi, frequencyIndex: fi });
      });
    });
  });
  const dataset: ImageDataset = {
    name: `gratings(${orientations.length} orientations x ${frequencies.length} frequencies x ${phases.length} phases)`,
    split: "test",
    length: params.length,
    numClasses: orientations.length,
    classNames: orientations.map((t) => `${t} deg`),
    get: async (index: number): Promise<ImageExample | null> => {
      const p = params[index];
      if (!p) return null;
      return { image: gratingImage(o.size, o.channels, p.orientation, p.frequency, p.phase, contrast), height: o.size, width: o.size, channels: o.channels, label: p.orientationIndex };
    },
  };
  return { orientations, frequencies, phases, params, dataset };
}
