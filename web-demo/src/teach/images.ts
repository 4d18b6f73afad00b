/**
 * Images for the Teach page: files decoded by the browser (EXIF orientation applied) into the pixels the shared
 * preprocessing takes, small previews, and generated sample shapes (the data set the CLI generates).
 */
import type { Pixels } from '../../../src/portable/image-preprocessing';
import { generateShapes, SHAPE_CLASSES } from '../../../src/data/shapes';
import { pixelLimitProblem } from './limits';

export interface TeachImage {
  name: string;
  pixels: Pixels;
}

/**
 * Decodes an image file; anything the browser cannot decode as an image, or one of more than PAGE_MAX_PIXELS pixels,
 * is an error naming the file.
 */
export async function decodeImage(blob: Blob, name: string): Promise<TeachImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch {
    throw new Error(`'${name}' is not an image this browser can decode`);
  }
  try {
    // Refused before its pixels are read out: the page keeps them (RGBA) for as long as the image is in a class.
    const tooLarge = pixelLimitProblem(name, bitmap.width, bitmap.height);
    if (tooLarge !== undefined) throw new Error(tooLarge);
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext('2d', { willReadFrequently: true })!;
    context.drawImage(bitmap, 0, 0);
    const data = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
    return { name, pixels: { width: bitmap.width, height: bitmap.height, channels: 4, data } };
  } finally {
    bitmap.close();
  }
}

/** A small canvas showing the image (RGBA or RGB pixels). */
export function thumbnail(image: TeachImage, size = 32): HTMLCanvasElement {
  const { width, height, channels, data } = image.pixels;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = data[i * channels + (channels >= 3 ? c : 0)]!;
    rgba[i * 4 + 3] = 255;
  }
  const full = new OffscreenCanvas(width, height);
  full.getContext('2d')!.putImageData(new ImageData(rgba, width, height), 0, 0);
  const canvas = Object.assign(document.createElement('canvas'), { width: size, height: size, title: image.name });
  const fit = Math.min(size / width, size / height);
  canvas.getContext('2d')!.drawImage(full, (size - width * fit) / 2, (size - height * fit) / 2, width * fit, height * fit);
  return canvas;
}

/** `perClass` generated images of each named shape class, as RGB pixels of `size` x `size`. */
export function sampleShapes(classes: readonly (typeof SHAPE_CLASSES)[number][], perClass: number, size: number, seed = 1): Map<string, TeachImage[]> {
  const data = generateShapes({ count: perClass * SHAPE_CLASSES.length, imageSize: size, seed });
  const plane = size * size;
  const out = new Map<string, TeachImage[]>(classes.map((c) => [c, []]));
  for (let n = 0; n < data.count; n++) {
    const list = out.get(SHAPE_CLASSES[data.labels[n]!]!);
    if (list === undefined) continue;
    const chw = data.pixels.subarray(n * 3 * plane, (n + 1) * 3 * plane);
    const rgb = new Uint8Array(3 * plane);
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = chw[c * plane + i]!;
    list.push({ name: `${SHAPE_CLASSES[data.labels[n]!]}-${list.length + 1}.png`, pixels: { width: size, height: size, channels: 3, data: rgb } });
  }
  return out;
}
