/**
 * An in-memory image classification data set: 8-bit RGB images stored NCHW (compact: a 10,000-image 64x64 set is
 * 123 MB as bytes, four times that as floats), integer labels, optional captions.
 */
export interface ImageDataset {
  name: string;
  classNames: string[];
  count: number;
  channels: number;
  height: number;
  width: number;
  /** count x channels x height x width bytes. */
  pixels: Uint8Array;
  labels: Int32Array;
  captions?: string[];
}

/** Bytes in a SharedArrayBuffer, which batch worker threads read without a copy. */
export function sharedBytes(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length));
}

/**
 * Copies the images at `indices` (each `imageBytes` long) and their labels into a new set in shared memory: the
 * seeded --train-size samples and the training-accuracy sample both use it.
 */
export function selectImages(pixels: Uint8Array, labels: Int32Array, imageBytes: number, indices: readonly number[]): { pixels: Uint8Array; labels: Int32Array } {
  const out = { pixels: sharedBytes(indices.length * imageBytes), labels: new Int32Array(indices.length) };
  indices.forEach((from, to) => {
    out.pixels.set(pixels.subarray(from * imageBytes, (from + 1) * imageBytes), to * imageBytes);
    out.labels[to] = labels[from]!;
  });
  return out;
}

/** Per-channel normalization applied when a batch is assembled: (x / 255 - mean) / std. */
export interface Normalization {
  mean: number[];
  std: number[];
}

/** Fills `out` with the normalized images at `indices` (NCHW float32) and `labels` with their labels. */
export function fillBatch(data: ImageDataset, indices: ArrayLike<number>, norm: Normalization, out: Float32Array, labels: BigInt64Array): void {
  const plane = data.height * data.width;
  const image = data.channels * plane;
  const scale = norm.std.map((s) => 1 / (255 * s));
  const shift = norm.mean.map((m, c) => -m / norm.std[c]!);
  for (let b = 0; b < indices.length; b++) {
    const src = indices[b]! * image;
    const dst = b * image;
    for (let c = 0; c < data.channels; c++) {
      const k = scale[c]!;
      const o = shift[c]!;
      const from = src + c * plane;
      const to = dst + c * plane;
      for (let i = 0; i < plane; i++) out[to + i] = data.pixels[from + i]! * k + o;
    }
    labels[b] = BigInt(data.labels[indices[b]!]!);
  }
}

/** Mean and standard deviation per channel over the whole set (in [0, 1] units), for normalization. */
export function channelStatistics(data: ImageDataset): Normalization {
  const plane = data.height * data.width;
  const sums = new Float64Array(data.channels);
  const squares = new Float64Array(data.channels);
  for (let n = 0; n < data.count; n++) {
    for (let c = 0; c < data.channels; c++) {
      const start = (n * data.channels + c) * plane;
      let s = 0;
      let q = 0;
      for (let i = 0; i < plane; i++) {
        const v = data.pixels[start + i]! / 255;
        s += v;
        q += v * v;
      }
      sums[c] = sums[c]! + s;
      squares[c] = squares[c]! + q;
    }
  }
  const total = data.count * plane;
  const mean = Array.from(sums, (s) => s / total);
  const std = Array.from(squares, (q, c) => Math.sqrt(Math.max(q / total - mean[c]! ** 2, 1e-12)));
  return { mean, std };
}
