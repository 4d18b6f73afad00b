/**
 * Where a data set's decoded images are, as plain data that worker threads receive: in memory, or in record files
 * on disk (pixel-store.ts reads those). No Node imports: the page's type check reads this file.
 */

/** One file of fixed-size image records (`slots` of them, in order). */
export interface RecordShard {
  file: string;
  slots: number;
}

export type PixelSource =
  /** count x imageBytes bytes (a SharedArrayBuffer when worker threads read it). */
  | { kind: 'memory'; pixels: Uint8Array }
  /** Records in shard files; image i is record rows[i] counted across the shards. */
  | { kind: 'records'; shards: readonly RecordShard[]; rows: Int32Array };

/** A source of the images at `indices` of `source` (a seeded sample or split): records are not copied. */
export function selectSource(source: PixelSource, imageBytes: number, indices: readonly number[], copy: (length: number) => Uint8Array): PixelSource {
  if (source.kind === 'records') return { ...source, rows: Int32Array.from(indices, (i) => source.rows[i]!) };
  const out = copy(indices.length * imageBytes);
  indices.forEach((from, to) => out.set(source.pixels.subarray(from * imageBytes, (from + 1) * imageBytes), to * imageBytes));
  return { kind: 'memory', pixels: out };
}
