import sharp from 'sharp';
import type { Pixels } from '../export/image-preprocessing';

export class ImageDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * Decodes an image file (or its bytes) to 8-bit sRGB pixels, 3 or 4 channels, as browsers show it: EXIF
 * orientation applied, grayscale and CMYK converted to RGB.
 */
export async function decodeImage(source: string | Uint8Array, label = typeof source === 'string' ? source : 'image'): Promise<Pixels> {
  try {
    const { data, info } = await sharp(source, { failOn: 'error' }).rotate().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    const message = (err as Error).message;
    if (/ENOENT|no such file/i.test(message)) throw new ImageDecodeError(`${label}: no such file`);
    throw new ImageDecodeError(`${label} is not a readable image (${message.split('\n')[0]})`);
  }
}
