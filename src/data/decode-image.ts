import sharp from 'sharp';
import type { Metadata } from 'sharp';
import type { Pixels } from '../portable/image-preprocessing';
import { FileReadError, readRegularFileAsync } from '../util/regular-file';
import { UserError } from '../util/user-error';
import { WorkBudget } from '../util/work-budget';

/** An image that cannot be used: `reason` completes the sentence that starts with the file's name. */
export class ImageDecodeError extends UserError {
  constructor(readonly file: string, readonly reason: string) {
    super(`${file} ${reason}`);
  }
}

/** The formats data may come in: raster images only (an SVG or PDF renders at whatever size it declares). */
const ACCEPTED_FORMATS = 'JPEG, PNG, WebP, GIF, TIFF, AVIF';

/** 50 megapixels: a 12,000 x 4,000 panorama decodes (150 MB of RGB), a 16,000 x 16,000 bomb (768 MB) does not. */
export const DEFAULT_MAX_PIXELS = 50_000_000;
export const MAX_PIXELS_VARIABLE = 'DEEPVISION_MAX_PIXELS';


/** The pixel limit from DEEPVISION_MAX_PIXELS, or the default; a malformed value is a user error, not ignored. */
export function maxPixelsFromEnvironment(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[MAX_PIXELS_VARIABLE];
  if (text === undefined || text.trim() === '') return DEFAULT_MAX_PIXELS;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new UserError(`${MAX_PIXELS_VARIABLE} must be a positive whole number of pixels, got '${text}'`);
  return value;
}

export interface DecodeOptions {
  /** The name messages give the image (default: its path, or 'image' for bytes). */
  label?: string;
  /** Refuse images with more pixels than this, before decoding them (default: maxPixelsFromEnvironment()). */
  maxPixels?: number;
}

type Sniffed = 'raster' | 'empty' | { refused: string } | 'unknown';

/**
 * What the first bytes say, so that an SVG, PDF or anything else never reaches a parser: sharp would hand an SVG to
 * librsvg (and render it at its declared size) whatever the file's extension.
 */
function sniff(head: Uint8Array): Sniffed {
  if (head.length === 0) return 'empty';
  const ascii = Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('latin1');
  const raster = ascii.startsWith('\xff\xd8\xff') || ascii.startsWith('\x89PNG\r\n\x1a\n') || /^GIF8[79]a/.test(ascii)
    || (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP') || /^(II\*\0|MM\0\*|II\+\0|MM\0\+)/.test(ascii)
    || ascii.slice(4, 8) === 'ftyp';
  if (raster) return 'raster';
  if (ascii.startsWith('%PDF')) return { refused: 'a PDF document' };
  if (/^(\xef\xbb\xbf)?\s*</.test(ascii)) return { refused: 'an SVG image (or other XML/HTML text)' };
  if (ascii.startsWith('\x1f\x8b')) return { refused: 'gzip-compressed (an SVGZ image?)' };
  if (ascii.startsWith('BM')) return { refused: 'a BMP image' };
  return 'unknown';
}

/**
 * Pixels decoded at once in this process. Loaders keep several images in flight to use every core; with photos of
 * tens of megapixels that would be gigabytes, so large images wait for each other (small ones still overlap).
 */
const DECODING = new WorkBudget(60_000_000);

/**
 * The longest image file read for a pixel limit: 8 bytes a pixel holds a 16-bit RGBA frame stored uncompressed (a
 * 50 MP limit allows 400 MB), and 512 MB at least, for a multi-page TIFF whose first page is small.
 */
const maxImageBytes = (maxPixels: number) => Math.max(512 * 1024 * 1024, 8 * maxPixels + (1 << 20));

/**
 * Reads an image file (a Buffer path: a name that is not valid UTF-8) as a regular file only: a named pipe would
 * block a reader forever. Errors are in the image's words.
 */
export async function readImageFile(file: string | Buffer, label: string, maxPixels = maxPixelsFromEnvironment()): Promise<Uint8Array> {
  try {
    return await readRegularFileAsync(file, { what: 'image', maxBytes: maxImageBytes(maxPixels) });
  } catch (err) {
    if (!(err instanceof FileReadError)) throw err;
    throw new ImageDecodeError(label, /ENOENT/.test(err.reason) ? 'does not exist' : /EISDIR/.test(err.reason) ? 'is a folder, not an image' : `cannot be read: ${err.reason}`);
  }
}

/** sharp's format names for the accepted formats; AVIF is HEIF with AV1 inside (HEVC is neither accepted nor decodable). */
function acceptedFormat(meta: Metadata): boolean {
  if (meta.format === 'heif') return meta.compression === 'av1';
  return meta.format === 'jpeg' || meta.format === 'png' || meta.format === 'webp' || meta.format === 'gif' || meta.format === 'tiff';
}

/**
 * Decodes an image file (or its bytes) to 8-bit sRGB pixels, 3 or 4 channels, as browsers show it: EXIF
 * orientation applied, grayscale and CMYK converted to RGB. Only raster formats are accepted, and an image over the
 * pixel limit is refused from its header, before anything is decoded: a few bytes can declare gigapixels.
 */
export async function decodeImage(file: string | Uint8Array, options: DecodeOptions = {}): Promise<Pixels> {
  return useDecodedImage(file, options, (pixels) => pixels);
}

/**
 * Decodes an image as decodeImage does and hands its pixels to `use` (a resize, usually): the image's share of the
 * decoding budget is held until `use` returns, so that decoded photos never pile up faster than they are used.
 */
export async function useDecodedImage<T>(file: string | Uint8Array, options: DecodeOptions, use: (pixels: Pixels) => T): Promise<T> {
  const label = options.label ?? (typeof file === 'string' ? file : 'image');
  const maxPixels = options.maxPixels ?? maxPixelsFromEnvironment();
  const source = typeof file === 'string' ? await readImageFile(file, label, maxPixels) : file;
  const head = source.subarray(0, 32);
  const kind = sniff(head);
  if (kind === 'empty') throw new ImageDecodeError(label, 'is an empty file');
  if (kind === 'unknown') throw new ImageDecodeError(label, `is not a readable image (not a ${ACCEPTED_FORMATS.replace(/, (\w+)$/, ' or $1')} file)`);
  if (kind !== 'raster') throw new ImageDecodeError(label, `is ${kind.refused}, which is not accepted: only raster images (${ACCEPTED_FORMATS})`);
  const unreadable = (err: unknown) => {
    const message = (err as Error).message;
    return new ImageDecodeError(label, /ENOENT|is missing|no such file/i.test(message) ? 'does not exist' : `is not a readable image (${message.split('\n')[0]})`);
  };
  let meta: Metadata;
  try {
    // metadata() parses headers only; sharp's own pixel limit is lifted here so that the refusal below says why.
    meta = await sharp(source, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw unreadable(err);
  }
  if (!acceptedFormat(meta)) {
    const name = meta.format === 'heif' ? `HEIF (${meta.compression ?? 'unknown'} compression)` : meta.format.toUpperCase();
    throw new ImageDecodeError(label, `is a ${name} image, which is not accepted: only raster images (${ACCEPTED_FORMATS})`);
  }
  // sharp's types promise a size; a damaged header can still come without one.
  const { width, height } = meta as { width?: number; height?: number };
  if (!(width !== undefined && height !== undefined && width > 0 && height > 0)) throw new ImageDecodeError(label, 'is not a readable image (no size in its header)');
  // Only the first page or frame is decoded (sharp's default, made explicit below), so a multi-page TIFF or an
  // animated GIF costs what one frame costs: the limit applies to one frame.
  if (width * height > maxPixels) {
    const pages = meta.pages !== undefined && meta.pages > 1 ? `, ${meta.pages} pages` : '';
    throw new ImageDecodeError(label, `is ${width}x${height} (${(width * height).toLocaleString('en-US')} pixels${pages}), over the limit of ${maxPixels.toLocaleString('en-US')} pixels (${MAX_PIXELS_VARIABLE} raises it)`);
  }
  return DECODING.run(width * height, async () => {
    let pixels: Pixels;
    try {
      // limitInputPixels again: a file replaced between the two reads is still held to the limit.
      const { data, info } = await sharp(source, { failOn: 'error', limitInputPixels: maxPixels, pages: 1, page: 0 })
        .rotate().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      pixels = { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    } catch (err) {
      throw unreadable(err);
    }
    return use(pixels);
  });
}
