/** Held-out images for the viewer's input panel: the first test images of the run's own data. */
import { openDataset, parseDataSpec } from "../data/index.ts";
import { evalTransform } from "../data/augment.ts";
import type { SampleSet } from "../viewer/compute/manifest.ts";

/** Default number of held-out images offered in the page. */
export const DEFAULT_SAMPLES = 48;

/**
 * Read up to `count` test images of the data spec in `trainConfig.data` (default MNIST), sized
 * like the model's input. Throws with the reason when the data set cannot be opened.
 */
export async function readSamples(trainConfig: unknown, imageSize: number, channels: 1 | 3, count = DEFAULT_SAMPLES): Promise<SampleSet> {
  const data = (trainConfig as { data?: unknown } | null)?.data ?? { kind: "mnist" };
  const spec = parseDataSpec(data);
  const ds = await openDataset(spec, "test");
  const images: number[][] = [];
  const labels: (number | null)[] = [];
  for (let i = 0; i < ds.length && images.length < count; i++) {
    const ex = await ds.get(i);
    if (!ex) continue;
    const img = evalTransform(ex, imageSize, channels);
    images.push(Array.from(img.image, (v) => Math.round(v * 1e4) / 1e4));
    labels.push(ex.label);
  }
  if (images.length === 0) throw new Error(`no readable test images in ${ds.name}`);
  return { source: `${ds.name} (test split)`, image_size: imageSize, channels, labels, classNames: ds.classNames, images };
}
