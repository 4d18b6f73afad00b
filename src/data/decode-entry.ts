/**
 * One image of a data source to one record: decoded (or, for CIFAR's binary records, taken as it is), resized to
 * the square input size with the preprocessing `predict` and the page use, as planar RGB bytes. The same function
 * runs on the loading thread and in decode workers, so both give the same bytes.
 */
import * as path from 'node:path';
import { UserError } from '../util/user-error';
import { resizeToPlanar } from '../portable/image-preprocessing';
import { ImageDecodeError, readImageFile, useDecodedImage } from './decode-image';
import { displayPath, ImageEntry } from './sources/image-source';

export interface DecodeChunk {
  id: number;
  entries: ImageEntry[];
  size: number;
  maxPixels: number;
}

export interface DecodedChunk {
  id: number;
  /** entries.length records, one after the other (a skipped image's stays zero). */
  records: Uint8Array;
  ok: Uint8Array;
  /** Why each skipped image was skipped ("name reason"). */
  problems: string[];
  /** A failure that is not about one image (a bug, a full disk): the load stops with it. */
  fatal?: string;
}

/** Decodes a chunk; shared by the worker and the inline fallback. */
export async function decodeChunk(c: DecodeChunk): Promise<DecodedChunk> {
  const bytes = 3 * c.size * c.size;
  const records = new Uint8Array(c.entries.length * bytes);
  const ok = new Uint8Array(c.entries.length);
  const problems: string[] = [];
  for (const [i, raw] of c.entries.entries()) {
    // A name that is not UTF-8 arrives as a Uint8Array (structured clone drops Buffer): fs wants a Buffer.
    const e: ImageEntry = 'file' in raw && typeof raw.file !== 'string' ? { ...raw, file: Buffer.from(raw.file) } : raw;
    try {
      await decodeEntry(e, c.size, c.maxPixels, records.subarray(i * bytes, (i + 1) * bytes));
      ok[i] = 1;
    } catch (err) {
      if (!(err instanceof UserError)) return { id: c.id, records, ok, problems, fatal: (err as Error).stack ?? String(err) };
      problems.push(err instanceof ImageDecodeError ? `${entryLabel(e)} ${err.reason}` : `${entryLabel(e)}: ${err.message}`);
    }
  }
  return { id: c.id, records, ok, problems };
}

/** The name messages give an entry. */
export function entryLabel(e: ImageEntry): string {
  return 'file' in e ? path.basename(displayPath(e.file)) : 'record';
}

/** Fills `record` (3 x size x size bytes) with the entry's image; throws a UserError for an image that cannot be used. */
async function decodeEntry(e: ImageEntry, size: number, maxPixels: number, record: Uint8Array): Promise<void> {
  if ('planar' in e) {
    resizeToPlanar(interleave(e.planar), size, size, record);
    return;
  }
  const label = entryLabel(e);
  const source = typeof e.file === 'string' ? e.file : await readImageFile(e.file, label, maxPixels);
  await useDecodedImage(source, { label, maxPixels }, (decoded) => resizeToPlanar(decoded, size, size, record));
}

function interleave(p: { data: Uint8Array; width: number; height: number }) {
  const plane = p.width * p.height;
  const data = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = p.data[c * plane + i]!;
  return { width: p.width, height: p.height, channels: 3, data };
}
