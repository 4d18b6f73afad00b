/**
 * Hostile image files and data folders, generated for test/hostile-images.test.ts into a temporary folder: files
 * that declare far more pixels than they hold, formats that are not raster images, broken files, names that are not
 * valid UTF-8 and symbolic links. Deterministic: the same bytes on every run. Nothing here is committed as a file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';

/** An SVG that declares width x height: about 70 bytes that a renderer turns into width * height * 4 bytes. */
export function svgBomb(width = 16000, height = 16000): Buffer {
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%"/></svg>`);
}

/** The start of a PDF: another vector format a renderer would rasterize at its declared size. */
export function pdfLike(): Buffer {
  return Buffer.from('%PDF-1.4\n1 0 obj << /Type /Page /MediaBox [0 0 100000 100000] >> endobj\ntrailer << >>\n%%EOF\n');
}

/** Bytes that are no image format at all (a seeded linear congruential sequence). */
export function garbage(length = 512, seed = 7): Buffer {
  const out = Buffer.alloc(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = s >>> 16 & 0xff;
  }
  return out;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(8 + data.length + 4);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/**
 * A well-formed PNG header declaring width x height RGB pixels, followed by a few rows of zeros: a decoder that
 * trusted the header would allocate width * height * 3 bytes before finding out.
 */
export function pngDeclaring(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, RGB, deflate, no filter, no interlace
  const rows = deflateSync(Buffer.alloc(Math.min(height, 4) * (1 + 3 * Math.min(width, 4096))));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', rows), chunk('IEND', Buffer.alloc(0))]);
}

/** A real image of one colour. */
export function solid(width: number, height: number, rgb: [number, number, number], format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const image = sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  return (format === 'png' ? image.png() : image.jpeg({ quality: 95 })).toBuffer();
}

/** The first third of a real JPEG: a valid header, then the data stops. */
export async function truncatedJpeg(): Promise<Buffer> {
  const whole = await solid(64, 64, [90, 90, 90], 'jpeg');
  return whole.subarray(0, Math.floor(whole.length / 3));
}

/** A file name that is not valid UTF-8 (Latin-1 'é' and a lone 0xFF byte), as the bytes of a path in `dir`. */
export function nonUtf8Path(dir: string, stem = 'caf\xe9-\xff', ext = '.png'): Buffer {
  return Buffer.concat([Buffer.from(dir + path.sep), Buffer.from(stem, 'latin1'), Buffer.from(ext)]);
}

/** The colours the readable images of hostileFolder() have, to find them after loading. */
export const COLOURS = {
  cat: [200, 20, 20],
  catNonUtf8: [20, 200, 20],
  catLinked: [20, 20, 200],
  dog: [200, 200, 20],
  dogLinkedFolder: [20, 200, 200],
  outside: [255, 0, 255],
} satisfies Record<string, [number, number, number]>;

/** The files of hostileFolder() that must be skipped as unreadable or refused, by name. */
export const REFUSED = ['bomb.jpg', 'document.png', 'garbage.png', 'empty.png', 'truncated.jpg', 'huge.png'];

/**
 * A class-per-folder data set under `root` that holds every kind of hostile entry, with `outside` (a sibling of
 * root) holding what links must not reach:
 *
 *   root/cats/   cat.png, caf\xe9-\xff.png (not UTF-8), linked.png -> ../.pool/blue.png (inside: followed),
 *                outside.png -> outside/magenta.png (skipped), and the refused files of REFUSED
 *   root/dogs/   dog.png, more -> ../.pool-dogs (a folder inside: followed), loop -> . (skipped), away -> outside (skipped)
 *   root/\xff-class/  a class folder whose name is not valid UTF-8 (skipped: names become labels)
 */
export async function hostileFolder(root: string, outside: string): Promise<void> {
  for (const d of ['cats', 'dogs', '.pool', '.pool-dogs']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.mkdirSync(outside, { recursive: true });
  const cats = path.join(root, 'cats');
  const dogs = path.join(root, 'dogs');
  fs.writeFileSync(path.join(cats, 'cat.png'), await solid(12, 12, COLOURS.cat));
  fs.writeFileSync(nonUtf8Path(cats), await solid(12, 12, COLOURS.catNonUtf8));
  fs.writeFileSync(path.join(root, '.pool', 'blue.png'), await solid(12, 12, COLOURS.catLinked));
  fs.symlinkSync(path.join('..', '.pool', 'blue.png'), path.join(cats, 'linked.png'));
  fs.writeFileSync(path.join(outside, 'magenta.png'), await solid(12, 12, COLOURS.outside));
  fs.symlinkSync(path.join(outside, 'magenta.png'), path.join(cats, 'outside.png'));
  fs.writeFileSync(path.join(cats, 'bomb.jpg'), svgBomb());
  fs.writeFileSync(path.join(cats, 'document.png'), pdfLike());
  fs.writeFileSync(path.join(cats, 'garbage.png'), garbage());
  fs.writeFileSync(path.join(cats, 'empty.png'), Buffer.alloc(0));
  fs.writeFileSync(path.join(cats, 'truncated.jpg'), await truncatedJpeg());
  fs.writeFileSync(path.join(cats, 'huge.png'), pngDeclaring(100_000, 100_000));
  fs.writeFileSync(path.join(dogs, 'dog.png'), await solid(12, 12, COLOURS.dog));
  fs.writeFileSync(path.join(root, '.pool-dogs', 'teal.png'), await solid(12, 12, COLOURS.dogLinkedFolder));
  fs.symlinkSync(path.join('..', '.pool-dogs'), path.join(dogs, 'more'));
  fs.symlinkSync('.', path.join(dogs, 'loop'));
  fs.symlinkSync(outside, path.join(dogs, 'away'));
  const odd = nonUtf8Path(root, '\xff-class', '');
  fs.mkdirSync(odd);
  fs.writeFileSync(Buffer.concat([odd, Buffer.from('/x.png')]), await solid(12, 12, COLOURS.cat));
}
