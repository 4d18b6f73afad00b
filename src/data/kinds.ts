import * as fs from 'node:fs';
import { CaptionSource, CaptionSourceError } from './captions/caption-source';
import { cocoSource, isCoco } from './captions/coco';
import { flickr8kSource, isFlickr8k } from './captions/flickr8k';
import { cifarBinarySource, isCifarBinary } from './sources/cifar-binary';
import { imageFolderSource } from './sources/image-folder';
import { DataSourceError, ImageSource } from './sources/image-source';
import { isTinyImageNet, tinyImageNetSource } from './sources/tiny-imagenet';

/**
 * Every kind of data set `--data` can name, one row each. A folder is matched against the rows in order, and the
 * first kind that recognizes it and serves the task (images with labels, or images with captions) reads it. A new
 * folder layout is one source file (sources/ or captions/) and one row here.
 */
interface DataSetKind {
  /** As messages and cache files name it. */
  name: string;
  /** Whether `root` (an existing folder) has this kind's layout. */
  recognizes(root: string): boolean;
  /** The set's images and class labels, for classifiers. */
  images?(root: string): ImageSource;
  /** The set's images and captions, for captioners. */
  captions?(root: string): CaptionSource;
}

/** The data set generated on the spot rather than read from a folder: `--data shapes` (classes and captions). */
export const GENERATED_DATA = 'shapes';

const DATA_SET_KINDS: readonly DataSetKind[] = [
  { name: 'tiny-imagenet', recognizes: isTinyImageNet, images: tinyImageNetSource },
  { name: 'cifar10-binary', recognizes: isCifarBinary, images: cifarBinarySource },
  { name: 'coco', recognizes: isCoco, captions: cocoSource },
  { name: 'flickr8k', recognizes: isFlickr8k, captions: flickr8kSource },
  // Last: any folder of images, one sub-folder per class (optionally under train/ and val/ or test/).
  { name: 'image-folder', recognizes: () => true, images: imageFolderSource },
];

/** Whether `data` names the generated set instead of a folder. */
export function isGeneratedData(data: string): boolean {
  return data === GENERATED_DATA;
}

function checkFolder(root: string, fail: (message: string) => Error, expected: string): void {
  if (!fs.existsSync(root)) throw fail(`data folder ${root} does not exist`);
  if (!fs.statSync(root).isDirectory()) throw fail(`${root} is not a folder (${expected})`);
}

/** The images and labels of a data folder, read by the first kind that recognizes it. */
export function openImageSource(root: string): ImageSource {
  checkFolder(root, (m) => new DataSourceError(m), `--data takes '${GENERATED_DATA}' or a data folder`);
  const kind = DATA_SET_KINDS.find((k) => k.images !== undefined && k.recognizes(root))!;
  return kind.images!(root);
}

/** The images and captions of a data folder, read by the first kind that recognizes it. */
export function openCaptionSource(root: string): CaptionSource {
  checkFolder(root, (m) => new CaptionSourceError(m), `caption data is '${GENERATED_DATA}' or a data folder`);
  const kind = DATA_SET_KINDS.find((k) => k.captions !== undefined && k.recognizes(root));
  if (kind === undefined) {
    throw new CaptionSourceError(`${root} is not a caption data set: expected Flickr8k (Flickr8k.token.txt or captions.txt, Images/, Flickr_8k.*Images.txt) or COCO (annotations/captions_*.json and an image folder)`);
  }
  return kind.captions!(root);
}
