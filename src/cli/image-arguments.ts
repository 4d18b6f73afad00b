import { decodeImage, readImageFile } from '../data/decode-image';
import type { Pixels } from '../portable/image-preprocessing';
import { resolveArgumentPath } from '../util/argument-path';
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

/** Decodes an image argument as decodeImage decodes a path; messages name it as the user typed it. */
export async function decodeImageArgument(image: ImageArgument, maxPixels: number): Promise<Pixels> {
  if (image.problem !== undefined) throw image.problem;
  if (typeof image.path === 'string') return decodeImage(image.path, { maxPixels });
  const bytes = await readImageFile(image.path, image.shown, maxPixels);
  return decodeImage(bytes, { label: image.shown, maxPixels });
}
