/** Data loaders on fixtures the tests generate and on the shared data sets; the decoded-image cache. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { openImageSource as openSource } from '../src/data/kinds';
import { loadImageSet } from '../src/data/load-image-set';
import { ImageDataset, readAllPixels } from '../src/data/dataset';
import { loadData } from '../src/data/registry';
import { CIFAR10_CLASSES } from '../src/data/sources/cifar-binary';
import { dataTest, fixture, sharedDir, sharedFile } from './support/shared';

let tmp: string;
let cacheDir: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-data-'));
  cacheDir = path.join(tmp, 'cache');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A solid-colour RGB image of a given size. */
function solid(width: number, height: number, rgb: [number, number, number]): ReturnType<typeof sharp> {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
}

/** Pixel (x, y) of image n of a planar 8-bit set. */
function pixel(set: ImageDataset, n: number, x: number, y: number): number[] {
  const pixels = readAllPixels(set);
  const plane = set.height * set.width;
  return [0, 1, 2].map((c) => pixels[n * 3 * plane + c * plane + y * set.width + x]!);
}

describe('image folder (one sub-folder per class)', () => {
  let root: string;
  beforeAll(async () => {
    root = path.join(tmp, 'folder');
    for (const c of ['cats', 'dogs']) fs.mkdirSync(path.join(root, c, 'nested'), { recursive: true });
    await solid(40, 20, [200, 10, 10]).png().toFile(path.join(root, 'cats', 'red-wide.png'));
    await solid(16, 16, [10, 200, 10]).jpeg({ quality: 95 }).toFile(path.join(root, 'cats', 'nested', 'green.jpg'));
    // Grayscale PNG and a CMYK JPEG: both must come out as RGB.
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 128, g: 128, b: 128 } } }).toColourspace('b-w').png().toFile(path.join(root, 'dogs', 'gray.png'));
    await solid(12, 12, [0, 0, 255]).toColourspace('cmyk').jpeg({ quality: 95 }).toFile(path.join(root, 'dogs', 'cmyk.jpg'));
    // A corrupt JPEG (header then garbage) and a truncated one.
    const good = await solid(16, 16, [50, 50, 50]).jpeg().toBuffer();
    fs.writeFileSync(path.join(root, 'dogs', 'corrupt.jpg'), Buffer.concat([good.subarray(0, 20), Buffer.alloc(200, 7)]));
    fs.writeFileSync(path.join(root, 'dogs', 'truncated.jpg'), good.subarray(0, good.length / 3));
    fs.writeFileSync(path.join(root, 'dogs', 'notes.txt'), 'not an image, not listed');
  });

  test('decodes to RGB at the requested size, skips unreadable files once with a count, grayscale and CMYK become RGB', async () => {
    expect((await sharp(path.join(root, 'dogs', 'gray.png')).metadata()).channels).toBe(1);
    expect((await sharp(path.join(root, 'dogs', 'cmyk.jpg')).metadata()).space).toBe('cmyk');
    const notices: string[] = [];
    const { train, val, fromCache } = await loadImageSet(root, { imageSize: 8, cacheDir, valFraction: 0.25, seed: 0, onSkipped: (m) => notices.push(m) });
    expect(fromCache).toBe(false);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/^skipped 2 unreadable images \(.*corrupt\.jpg/);
    expect(train.classNames).toEqual(['cats', 'dogs']);
    expect(train.count + val.count).toBe(4);
    expect(val.count).toBe(1);
    const all = await loadImageSet(root, { imageSize: 8, cacheDir, valFraction: 0.25, seed: 0 });
    expect(all.fromCache).toBe(true);
    // Find each image by its label and colour, whichever split it landed in.
    const images = [train, val].flatMap((set) => Array.from({ length: set.count }, (_, n) => ({ label: set.labels[n]!, rgb: pixel(set, n, 4, 4) })));
    const has = (label: number, rgb: number[], tolerance: number) => images.some((i) => i.label === label && i.rgb.every((v, c) => Math.abs(v - rgb[c]!) <= tolerance));
    expect(has(0, [200, 10, 10], 0)).toBe(true); // the 40x20 PNG, resized and center-cropped
    expect(has(0, [10, 200, 10], 3)).toBe(true);
    expect(has(1, [128, 128, 128], 0)).toBe(true); // grayscale -> equal RGB
    // CMYK -> sRGB through libvips' default CMYK profile: pure blue is outside CMYK's gamut, so it comes back a
    // darker blue; the point is that it is RGB and blue.
    expect(images.some((i) => i.label === 1 && i.rgb[2]! > 100 && i.rgb[2]! > i.rgb[0]! + 50 && i.rgb[2]! > i.rgb[1]! + 50)).toBe(true);
  });

  test('the cache is rebuilt when a source file changes, and the split is seeded', async () => {
    const first = await loadImageSet(root, { imageSize: 8, cacheDir, valFraction: 0.25, seed: 0 });
    expect(first.fromCache).toBe(true);
    const file = path.join(root, 'cats', 'red-wide.png');
    await solid(40, 20, [10, 10, 200]).png().toFile(file);
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const second = await loadImageSet(root, { imageSize: 8, cacheDir, valFraction: 0.25, seed: 0 });
    expect(second.fromCache).toBe(false);
    const blue = [second.train, second.val].some((set) => Array.from({ length: set.count }, (_, n) => pixel(set, n, 4, 4)).some((p) => p.join() === '10,10,200'));
    expect(blue).toBe(true);
    // Another image size is another cache entry; the same seed gives the same split.
    expect((await loadImageSet(root, { imageSize: 4, cacheDir, valFraction: 0.25 })).fromCache).toBe(false);
    const again = await loadImageSet(root, { imageSize: 8, cacheDir, valFraction: 0.25, seed: 0 });
    expect(Array.from(again.val.labels)).toEqual(Array.from(second.val.labels));
    expect(Buffer.from(readAllPixels(again.val)).equals(Buffer.from(readAllPixels(second.val)))).toBe(true);
  });

  test('clear errors for folders that are not data sets', async () => {
    await expect(loadImageSet(path.join(tmp, 'missing'), { imageSize: 8, cacheDir })).rejects.toThrow(/data folder .*missing does not exist/);
    fs.mkdirSync(path.join(tmp, 'one-class', 'only'), { recursive: true });
    await expect(loadImageSet(path.join(tmp, 'one-class'), { imageSize: 8, cacheDir })).rejects.toThrow(/one sub-folder per class \(at least two\)/);
    await expect(loadData('shapez')).rejects.toThrow(/data folder shapez does not exist/);
  });
});

describe('standard layouts', () => {
  test('Tiny ImageNet layout: wnids, words, train/<wnid>/images, val annotations', async () => {
    const root = path.join(tmp, 'tiny');
    const wnids = ['n001', 'n002', 'n003'];
    fs.mkdirSync(path.join(root, 'val', 'images'), { recursive: true });
    fs.writeFileSync(path.join(root, 'wnids.txt'), `${wnids.join('\n')}\n`);
    fs.writeFileSync(path.join(root, 'words.txt'), 'n001\tgoldfish, Carassius auratus\nn002\tbullfrog\nn999\tunused\n');
    const annotations: string[] = [];
    for (const [i, w] of wnids.entries()) {
      fs.mkdirSync(path.join(root, 'train', w, 'images'), { recursive: true });
      for (let k = 0; k < 2; k++) await solid(6, 6, [i * 100, k * 50, 0]).jpeg({ quality: 100 }).toFile(path.join(root, 'train', w, 'images', `${w}_${k}.JPEG`));
      await solid(6, 6, [i * 100, 200, 0]).jpeg({ quality: 100 }).toFile(path.join(root, 'val', 'images', `val_${i}.JPEG`));
      annotations.push(`val_${i}.JPEG\t${w}\t0\t0\t5\t5`);
    }
    fs.writeFileSync(path.join(root, 'val', 'val_annotations.txt'), `${annotations.join('\n')}\n`);
    expect(openSource(root).format).toBe('tiny-imagenet');
    const { train, val } = await loadImageSet(root, { imageSize: 6, cacheDir });
    expect(train.classNames).toEqual(['goldfish', 'bullfrog', 'n003']);
    expect([train.count, val.count]).toEqual([6, 3]);
    expect(Array.from(val.labels)).toEqual([0, 1, 2]);
    expect(pixel(val, 2, 3, 3).map((v) => Math.round(v / 10))).toEqual([20, 20, 0]);
  });

  test('CIFAR-10 binary batches: records of a label and three planes; test_batch is the validation split', async () => {
    const root = path.join(tmp, 'cifar-bin');
    fs.mkdirSync(root);
    const record = (label: number, r: number) => {
      const b = Buffer.alloc(3073);
      b[0] = label;
      b.fill(r, 1, 1025);
      b.fill(7, 1025, 2049);
      b.fill(200, 2049, 3073);
      return b;
    };
    fs.writeFileSync(path.join(root, 'data_batch_1.bin'), Buffer.concat([record(3, 10), record(9, 20)]));
    fs.writeFileSync(path.join(root, 'data_batch_2.bin'), record(0, 30));
    fs.writeFileSync(path.join(root, 'test_batch.bin'), record(5, 40));
    const { train, val } = await loadImageSet(root, { imageSize: 32, cacheDir });
    expect(train.classNames[3]).toBe('cat');
    expect(Array.from(train.labels)).toEqual([3, 9, 0]);
    expect(pixel(train, 1, 31, 0)).toEqual([20, 7, 200]);
    expect(Array.from(val.labels)).toEqual([5]);
    fs.writeFileSync(path.join(root, 'data_batch_3.bin'), Buffer.alloc(100));
    await expect(loadImageSet(root, { imageSize: 32, cacheDir })).rejects.toThrow(/data_batch_3.bin is 100 bytes, not a whole number of 3073-byte CIFAR-10 records/);
  });

  test('a class-per-folder tree with train/ and test/ splits (the CIFAR-10 JPEG layout)', async () => {
    const root = path.join(tmp, 'cifar-jpeg');
    for (const split of ['train', 'test']) {
      for (const c of ['airplane', 'bird']) {
        fs.mkdirSync(path.join(root, split, c), { recursive: true });
        await solid(32, 32, [c === 'bird' ? 250 : 0, 0, 0]).jpeg().toFile(path.join(root, split, c, '0000.jpg'));
      }
    }
    const { train, val } = await loadImageSet(root, { imageSize: 32, cacheDir });
    expect(train.classNames).toEqual(['airplane', 'bird']);
    expect([train.count, val.count]).toEqual([2, 2]);
  });
});

describe('real data sets', () => {
  test('CIFAR-10 binary records equal the lossless PNGs they are made of (20 real images, test/fixtures)', async () => {
    const root = path.join(tmp, 'cifar-first20');
    fs.mkdirSync(root);
    // The official record layout, written here from the first 20 training PNGs: a label byte, then the red, green
    // and blue planes of 32x32 bytes.
    const rows = fs.readFileSync(fixture('cifar10-first20/trainLabels.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    const records = await Promise.all(rows.map(async ([file, className]) => {
      const { data } = await sharp(fixture(`cifar10-first20/train/${file}`)).raw().toBuffer({ resolveWithObject: true });
      const record = Buffer.alloc(3073);
      record[0] = CIFAR10_CLASSES.indexOf(className!);
      for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) record[1 + c * 1024 + p] = data[p * 3 + c]!;
      return record;
    }));
    fs.writeFileSync(path.join(root, 'data_batch_1.bin'), Buffer.concat(records));
    fs.writeFileSync(path.join(root, 'test_batch.bin'), Buffer.concat(records.slice(0, 2)));
    const { train } = await loadImageSet(root, { imageSize: 32, cacheDir });
    expect(train.count).toBe(20);
    const csv = fs.readFileSync(fixture('cifar10-first20/trainLabels.csv'), 'utf8').trim().split('\n');
    for (const n of [0, 1, 13, 19]) {
      const [file, className] = csv[n]!.split(',');
      expect(train.classNames[train.labels[n]!]).toBe(className);
      const { data } = await sharp(fixture(`cifar10-first20/train/${file}`)).raw().toBuffer({ resolveWithObject: true });
      for (const [x, y] of [[0, 0], [13, 21], [31, 31]] as const) expect(pixel(train, n, x, y)).toEqual([0, 1, 2].map((c) => data[(y * 32 + x) * 3 + c]));
    }
  });

  dataTest('tiny-imagenet-30: 30 classes named from words.txt, 15,000 train and 1,500 val images; 20 % held out when asked', ['data/tiny-imagenet-30/words.txt'], async () => {
    const root = path.join(sharedDir(), 'data/tiny-imagenet-30');
    const source = openSource(root);
    expect(source.format).toBe('tiny-imagenet');
    expect(source.classNames).toHaveLength(30);
    expect(source.classNames[0]).toBe('goldfish');
    expect(source.train).toHaveLength(15000);
    expect(source.val).toHaveLength(1500);
    // Decoding all 16,500 images takes ~20 s: check a seeded sample end to end instead.
    const sample = path.join(tmp, 'tiny-sample');
    for (const wnid of fs.readdirSync(path.join(root, 'train')).slice(0, 3)) {
      fs.mkdirSync(path.join(sample, wnid), { recursive: true });
      for (const f of fs.readdirSync(path.join(root, 'train', wnid, 'images')).slice(0, 20)) fs.copyFileSync(path.join(root, 'train', wnid, 'images', f), path.join(sample, wnid, f));
    }
    const { train, val } = await loadImageSet(sample, { imageSize: 64, cacheDir, valFraction: 0.2, seed: 0 });
    expect([train.count, val.count]).toEqual([48, 12]);
  });

  dataTest('cifar10-jpeg layout is recognized with its own test split', ['data/cifar10-jpeg/classes.txt'], () => {
    const source = openSource(path.join(sharedDir(), 'data/cifar10-jpeg'));
    expect(source.format).toBe('image-folder');
    expect(source.classNames).toEqual(fs.readFileSync(sharedFile('data/cifar10-jpeg/classes.txt'), 'utf8').trim().split('\n').sort());
    expect([source.train.length, source.val!.length]).toEqual([20000, 10000]);
  });
});
