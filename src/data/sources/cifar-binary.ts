import * as fs from 'node:fs';
import * as path from 'node:path';
import { FolderListing } from './folder-listing';
import { DataSourceError, DecodedImageEntry, ImageSource } from './image-source';
import { readRegularFile, readRegularText } from '../../util/regular-file';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const RECORD = 1 + 3 * 32 * 32;
const MISSING = { one: 'batch file that disappeared while listing', many: 'batch files that disappeared while listing' };

function batchFiles(root: string): { train: string[]; test: string[] } {
  const names = fs.readdirSync(root).sort();
  return {
    train: names.filter((n) => /^data_batch.*\.bin$/.test(n)).map((n) => path.join(root, n)),
    test: names.filter((n) => /^test_batch.*\.bin$/.test(n)).map((n) => path.join(root, n)),
  };
}

export function isCifarBinary(root: string): boolean {
  const { train, test } = batchFiles(root);
  return train.length + test.length > 0;
}

/**
 * CIFAR-10's official binary format: data_batch_N.bin (training) and test_batch.bin (used as the validation split),
 * records of one label byte and 3,072 pixel bytes (red, green and blue 32x32 planes). Class names come from
 * batches.meta.txt when present.
 */
export function cifarBinarySource(root: string): ImageSource {
  // Records are read as pixels: a batch file that is a link to outside the folder is left out like any other.
  const listing = new FolderListing(root);
  const inside = (files: string[]) => files.filter((f) => listing.file(f, MISSING) !== undefined);
  const all = batchFiles(root);
  const trainFiles = inside(all.train);
  const testFiles = inside(all.test);
  const metaFile = path.join(root, 'batches.meta.txt');
  const meta = fs.existsSync(metaFile) ? listing.file(metaFile, MISSING) : undefined;
  const classNames = meta !== undefined ? readRegularText(meta, { what: 'class list', maxBytes: 1024 * 1024 }).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '') : CIFAR10_CLASSES;
  const read = (files: string[]): DecodedImageEntry[] => {
    const entries: DecodedImageEntry[] = [];
    for (const file of files) {
      const bytes = readRegularFile(file, { what: 'CIFAR-10 batch' });
      if (bytes.length % RECORD !== 0) throw new DataSourceError(`${file} is ${bytes.length} bytes, not a whole number of ${RECORD}-byte CIFAR-10 records (truncated?)`);
      for (let at = 0; at < bytes.length; at += RECORD) {
        const label = bytes[at]!;
        if (label >= classNames.length) throw new DataSourceError(`${file}: record ${at / RECORD} has label ${label}, but there are ${classNames.length} classes`);
        entries.push({ label, planar: { data: new Uint8Array(bytes.buffer, bytes.byteOffset + at + 1, RECORD - 1), width: 32, height: 32 } });
      }
    }
    return entries;
  };
  const train = read(trainFiles);
  if (train.length === 0) throw new DataSourceError(`${root}: no data_batch_*.bin training records`);
  return {
    name: path.basename(path.resolve(root)), format: 'cifar10-binary', classNames, train,
    val: testFiles.length > 0 ? read(testFiles) : undefined, files: [...trainFiles, ...testFiles, ...(meta !== undefined ? [meta] : [])],
    notices: listing.notices(),
  };
}
