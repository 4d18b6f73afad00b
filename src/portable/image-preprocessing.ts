/**
 * Image -> model input, written once and used by both `deepvision predict` (pixels decoded by sharp) and the web
 * demo (pixels decoded by the browser), so that both feed the model the same numbers. Pure arithmetic on float64
 * (JavaScript numbers), no platform image scaler: browsers and libvips each resample differently.
 */

export interface Pixels {
  width: number;
  height: number;
  /** Interleaved 8-bit samples per pixel: 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). */
  channels: number;
  data: ArrayLike<number>;
}

export interface Preprocessing {
  resizeShorterSide: number;
  mean: number[];
  std: number[];
}

/**
 * Resizes (shorter side to `resizeShorterSide`, aspect kept), center-crops to height x width and normalizes:
 * NCHW float32 [1, channels, height, width] with value = (pixel / 255 - mean) / std. Alpha is ignored; gray images
 * are repeated into RGB.
 */
export function preprocessImage(image: Pixels, p: Preprocessing, inputChannels: number, height: number, width: number): Float32Array {
  if (!(image.width > 0 && image.height > 0)) throw new Error(`the image has no pixels (${image.width}x${image.height})`);
  if (![1, 2, 3, 4].includes(image.channels)) throw new Error(`images with ${image.channels} channels per pixel are not supported`);
  const shorter = Math.min(image.width, image.height);
  const scale = p.resizeShorterSide / shorter;
  const resizedW = Math.max(width, Math.round(image.width * scale));
  const resizedH = Math.max(height, Math.round(image.height * scale));
  const cropX = Math.floor((resizedW - width) / 2);
  const cropY = Math.floor((resizedH - height) / 2);
  const xs = resampleWeights(image.width, resizedW, cropX, width);
  const ys = resampleWeights(image.height, resizedH, cropY, height);
  const rgb = image.channels >= 3;
  const out = new Float32Array(inputChannels * height * width);
  const rows = new Float64Array(image.width * inputChannels);
  const plane = height * width;
  for (let oy = 0; oy < height; oy++) {
    // Vertical pass for this output row: a weighted sum of source rows, all channels.
    rows.fill(0);
    const wy = ys[oy]!;
    for (let k = 0; k < wy.indices.length; k++) {
      const sy = wy.indices[k]!;
      const w = wy.weights[k]!;
      const base = sy * image.width * image.channels;
      for (let sx = 0; sx < image.width; sx++) {
        const at = base + sx * image.channels;
        for (let c = 0; c < inputChannels; c++) rows[sx * inputChannels + c]! += w * image.data[at + (rgb ? c : 0)]!;
      }
    }
    for (let ox = 0; ox < width; ox++) {
      const wx = xs[ox]!;
      for (let c = 0; c < inputChannels; c++) {
        let v = 0;
        for (let k = 0; k < wx.indices.length; k++) v += wx.weights[k]! * rows[wx.indices[k]! * inputChannels + c]!;
        out[c * plane + oy * width + ox] = (v / 255 - p.mean[c]!) / p.std[c]!;
      }
    }
  }
  return out;
}

interface Taps {
  indices: number[];
  weights: number[];
}

/**
 * For each of `count` output pixels starting at `offset` of a `from` -> `to` resize: the source pixels and their
 * weights. Shrinking averages the source area each output pixel covers (no aliasing); enlarging interpolates
 * linearly between pixel centres.
 */
function resampleWeights(from: number, to: number, offset: number, count: number): Taps[] {
  const ratio = from / to;
  const taps: Taps[] = [];
  for (let o = offset; o < offset + count; o++) {
    const indices: number[] = [];
    const weights: number[] = [];
    if (ratio >= 1) {
      const lo = o * ratio;
      const hi = lo + ratio;
      for (let s = Math.floor(lo); s < Math.min(from, Math.ceil(hi)); s++) {
        const cover = Math.min(hi, s + 1) - Math.max(lo, s);
        if (cover > 0) {
          indices.push(s);
          weights.push(cover / ratio);
        }
      }
    } else {
      const centre = Math.min(Math.max((o + 0.5) * ratio - 0.5, 0), from - 1);
      const left = Math.floor(centre);
      const frac = centre - left;
      indices.push(left);
      weights.push(1 - frac);
      if (frac > 0 && left + 1 < from) {
        indices.push(left + 1);
        weights.push(frac);
      }
    }
    taps.push({ indices, weights });
  }
  return taps;
}

export interface Prediction {
  index: number;
  label: string;
  probability: number;
}

/**
 * Why a model's scores for one image cannot be ranked, or undefined: one score per label, all finite. A model from
 * elsewhere, or a runtime that failed without saying so, must not show as an empty or meaningless top 5.
 */
export function scoresProblem(logits: ArrayLike<number>, labels: readonly string[]): string | undefined {
  if (logits.length !== labels.length) return `the model gave ${logits.length} scores for ${labels.length} labels`;
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i])) return `the model's score for '${labels[i]}' is ${logits[i]}`;
  }
  return undefined;
}

/** Softmax of one row of logits, in float64 (a probability too small for a float stays above zero). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const p = Float64Array.from({ length: logits.length }, (_, i) => Math.exp(logits[i]! - max));
  const total = p.reduce((a, b) => a + b, 0);
  return p.map((e) => e / total);
}

/** Softmax over the logits (in float64) and the k most probable classes, most probable first. */
export function topK(logits: ArrayLike<number>, labels: readonly string[], k = 5): Prediction[] {
  return [...softmax(logits)]
    .map((probability, index) => ({ index, label: labels[index] ?? `class ${index}`, probability }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, k);
}

/**
 * The same resize and center crop as preprocessImage, kept as 8-bit planar RGB (CHW): how data sets store images,
 * so a model sees its training images exactly as `predict` and the web page will prepare new ones.
 */
export function resizeToPlanar(image: Pixels, height: number, width: number, out: Uint8Array = new Uint8Array(3 * height * width)): Uint8Array {
  const values = preprocessImage(image, { resizeShorterSide: Math.min(height, width), mean: [0, 0, 0], std: [1, 1, 1] }, 3, height, width);
  for (let i = 0; i < values.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(values[i]! * 255)));
  return out;
}
