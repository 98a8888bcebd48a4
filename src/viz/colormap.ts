/**
 * Colour maps for figures: viridis (sequential), a red-blue diverging map for
 * signed values, and a categorical palette for classes, plus hex helpers.
 *
 * Tables:
 * - viridis: the 256-entry table of matplotlib's viridis (van der Walt and
 *   Smith, CC0), as shipped by d3-scale-chromatic; linearly interpolated.
 * - diverging: ColorBrewer RdBu, 11 classes (Cynthia Brewer), reversed so that
 *   -1 is dark blue, 0 is near-white and +1 is dark red; interpolated in CIELAB
 *   so that lightness changes smoothly and symmetrically around 0.
 * - categorical: Tableau 10, then its 10 companions from Tableau 20 (lighter hues, dark grey).
 */

/** An sRGB colour, each channel an integer 0..255. */
export type RGB = [number, number, number];

/** The names of the continuous colour maps. */
export type ContinuousColormap = "viridis" | "diverging";

const VIRIDIS_HEX =
  "44015444025645045745055946075a46085c460a5d460b5e470d60470e6147106347116447136548146748166848176948186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979472a7a472c7a472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f854240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f881fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad8128ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc743fbc7340bd7242be7144bf7046c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc8635ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d84d44b86d54989d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21ad8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723fde725";

/** ColorBrewer RdBu (11 classes), from dark red to dark blue. */
const RDBU_HEX = "67001fb2182bd6604df4a582fddbc7f7f7f7d1e5f092c5de4393c32166ac053061";

/** Tableau 10 followed by its Tableau 20 companions (lighter hues; dark grey for grey). */
const CATEGORICAL_HEX =
  "4e79a7f28e2ce1575976b7b259a14fedc949af7aa1ff9da79c755fbab0ab" + "a0cbe8ffbe7dff9d9a86bcb68cd17df1ce63d4a6c8fabfd2d7b5a679706e";

function parseTable(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const VIRIDIS = parseTable(VIRIDIS_HEX);
const CATEGORICAL = parseTable(CATEGORICAL_HEX);

// --- CIELAB (D65) conversions, used to interpolate the diverging stops -----------------

function srgbToLinear(c: number): number {
  const v = c / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

function linearToSrgb(v: number): number {
  const c = v <= 0.0031308 ? 12.92 * v : 1.055 * v ** (1 / 2.4) - 0.055;
  return Math.round(Math.min(1, Math.max(0, c)) * 255);
}

const XN = 0.95047;
const YN = 1;
const ZN = 1.08883;

function labF(t: number): number {
  return t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116;
}

function labFInv(t: number): number {
  return t ** 3 > 216 / 24389 ? t ** 3 : (116 * t - 16) / (24389 / 27);
}

/** sRGB (0..255) to CIELAB (D65). */
export function rgbToLab(rgb: readonly [number, number, number]): [number, number, number] {
  const r = srgbToLinear(rgb[0]);
  const g = srgbToLinear(rgb[1]);
  const b = srgbToLinear(rgb[2]);
  const x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / XN;
  const y = (0.2126729 * r + 0.7151522 * g + 0.072175 * b) / YN;
  const z = (0.0193339 * r + 0.119192 * g + 0.9503041 * b) / ZN;
  const fx = labF(x);
  const fy = labF(y);
  const fz = labF(z);
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

/** CIELAB (D65) to sRGB (0..255, clipped to the gamut). */
export function labToRgb(lab: readonly [number, number, number]): RGB {
  const fy = (lab[0] + 16) / 116;
  const fx = fy + lab[1] / 500;
  const fz = fy - lab[2] / 200;
  const x = labFInv(fx) * XN;
  const y = labFInv(fy) * YN;
  const z = labFInv(fz) * ZN;
  const r = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z;
  const g = -0.969266 * x + 1.8760108 * y + 0.041556 * z;
  const b = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z;
  return [linearToSrgb(r), linearToSrgb(g), linearToSrgb(b)];
}

/** RdBu stops in Lab, reversed: index 0 = dark blue (t = -1), index 10 = dark red (t = +1). */
const DIVERGING_LAB: [number, number, number][] = (() => {
  const rgb = parseTable(RDBU_HEX);
  const stops: [number, number, number][] = [];
  for (let i = rgb.length / 3 - 1; i >= 0; i--) stops.push(rgbToLab([rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]]));
  return stops;
})();

/** 256-entry lookup of the diverging map (index 0 is t = -1, 255 is t = +1). */
const DIVERGING_LUT: Uint8Array = (() => {
  const lut = new Uint8Array(256 * 3);
  const last = DIVERGING_LAB.length - 1;
  for (let k = 0; k < 256; k++) {
    const pos = (k / 255) * last;
    const i = Math.min(last - 1, Math.floor(pos));
    const f = pos - i;
    const a = DIVERGING_LAB[i];
    const b = DIVERGING_LAB[i + 1];
    const rgb = labToRgb([a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])]);
    lut.set(rgb, 3 * k);
  }
  return lut;
})();

function lookup(table: Uint8Array, u: number): RGB {
  const n = table.length / 3;
  const pos = (Number.isNaN(u) ? 0 : Math.min(1, Math.max(0, u))) * (n - 1);
  const i = Math.min(n - 2, Math.floor(pos));
  const f = pos - i;
  const o = 3 * i;
  return [
    Math.round(table[o] + f * (table[o + 3] - table[o])),
    Math.round(table[o + 1] + f * (table[o + 4] - table[o + 1])),
    Math.round(table[o + 2] + f * (table[o + 5] - table[o + 2])),
  ];
}

/**
 * Viridis, the perceptually uniform sequential map of matplotlib.
 *
 * @param t Position in [0, 1] (clamped; NaN maps to 0): 0 is dark purple #440154, 1 is yellow #fde725.
 * @returns The sRGB colour.
 */
export function viridis(t: number): RGB {
  return lookup(VIRIDIS, t);
}

/**
 * Diverging red-blue map for signed values (ColorBrewer RdBu interpolated in CIELAB).
 *
 * @param t Position in [-1, 1] (clamped; NaN maps to 0): -1 is dark blue, 0 near-white #f7f7f7, +1 dark red.
 * @returns The sRGB colour.
 */
export function diverging(t: number): RGB {
  const u = Number.isNaN(t) ? 0.5 : (Math.min(1, Math.max(-1, t)) + 1) / 2;
  return lookup(DIVERGING_LUT, u);
}

/** Number of distinct colours of {@link categorical} before it repeats. */
export const CATEGORICAL_SIZE = CATEGORICAL.length / 3;

/**
 * Categorical palette (Tableau 10, then its Tableau 20 companions), repeating after
 * {@link CATEGORICAL_SIZE} colours.
 *
 * @param i Class index (integer >= 0; negative or fractional values are floored and wrapped).
 * @returns The sRGB colour.
 */
export function categorical(i: number): RGB {
  const n = CATEGORICAL_SIZE;
  const k = ((Math.floor(Number.isFinite(i) ? i : 0) % n) + n) % n;
  return [CATEGORICAL[3 * k], CATEGORICAL[3 * k + 1], CATEGORICAL[3 * k + 2]];
}

/**
 * A colour as a lower-case `#rrggbb` string.
 *
 * @param rgb The sRGB colour, channels 0..255 (rounded and clamped).
 */
export function rgbHex(rgb: readonly [number, number, number]): string {
  let s = "#";
  for (const c of rgb) s += Math.round(Math.min(255, Math.max(0, c))).toString(16).padStart(2, "0");
  return s;
}

/**
 * The colour function of a continuous map over its natural domain
 * (viridis: [0, 1], diverging: [-1, 1]).
 *
 * @param name Map name.
 */
export function colormapFunction(name: ContinuousColormap): (t: number) => RGB {
  return name === "viridis" ? viridis : diverging;
}

/** The colour used for missing (NaN / infinite) values: a light neutral grey. */
export const MISSING_COLOR: RGB = [204, 204, 204];
