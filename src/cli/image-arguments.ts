import { decodeImage, ImageDecodeError } from '../data/decode-image';
import type { Pixels } from '../export/image-preprocessing';
import { resolveArgumentPath } from '../util/argument-path';
import { FileReadError, readRegularFileAsync } from '../util/regular-file';
import { UserError } from '../util/user-error';

/** An image named on the command line: the path to open (bytes for a name that is not valid UTF-8) and the name shown. */
export interface ImageArgument {
  path: string | Buffer;
  shown: string;
  /** Why the name cannot be resolved (two files match it), reported when the image is read, as a missing file is. */
  problem?: UserError;
}

/** The image arguments of predict and caption, each resolved to a file that can be opened (see resolveArgumentPath). */
export function imageArguments(args: readonly string[]): ImageArgument[] {
  return args.map((arg) => {
    try {
      return { path: resolveArgumentPath(arg), shown: arg };
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      return { path: arg, shown: arg, problem: err };
    }
  });
}

/** The longest image file read, as decodeImage reads a path: 50 megapixels of uncompressed PNG is about 200 MB. */
const MAX_IMAGE_BYTES = 512 * 1024 * 1024;

/** Decodes an image argument as decodeImage decodes a path; messages name it as the user typed it. */
export async function decodeImageArgument(image: ImageArgument, maxPixels: number): Promise<Pixels> {
  if (image.problem !== undefined) throw image.problem;
  if (typeof image.path === 'string') return decodeImage(image.path, { maxPixels });
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFileAsync(image.path, { what: 'image', maxBytes: MAX_IMAGE_BYTES });
  } catch (err) {
    if (!(err instanceof FileReadError)) throw err;
    throw new ImageDecodeError(image.shown, /^no such/.test(err.reason) ? 'does not exist' : err.reason.startsWith('is ') ? err.reason : `cannot be read: ${err.reason}`);
  }
  return decodeImage(bytes, { label: image.shown, maxPixels });
}
