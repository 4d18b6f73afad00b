import * as fs from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write';

/**
 * The safetensors format (what `safetensors.torch.load_file` reads): an 8-byte little-endian header length, a
 * JSON header mapping each tensor name to {dtype, shape, data_offsets} plus string `__metadata__`, then the raw
 * little-endian data. Only float32 and int64 tensors are written here.
 */
export interface NamedTensor {
  dtype: 'float32' | 'int64';
  shape: readonly number[];
  data: Float32Array | BigInt64Array;
}

const CODES = { float32: 'F32', int64: 'I64' } as const;

export function encodeSafetensors(tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== expected) throw new Error(`safetensors: '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype: CODES[t.dtype], shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (allowed by the format).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array, source = 'checkpoint'): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  const fail = (why: string): never => {
    throw new Error(`${source}: not a valid safetensors file (${why})`);
  };
  if (bytes.byteLength < 8) fail('shorter than its 8-byte header length');
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > bytes.byteLength - 8 || headerLength > 100_000_000) fail('header length beyond the end of the file; truncated?');
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8'));
  } catch (err) {
    return fail(`header is not JSON: ${(err as Error).message}`);
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, NamedTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const [begin, end] = e.data_offsets;
    if (dataStart + end > bytes.byteLength) fail(`data of '${name}' lies beyond the end of the file; truncated?`);
    // A copy (Uint8Array.prototype.slice): a Node Buffer's own slice() would be a view into the file buffer.
    const slice = Uint8Array.prototype.slice.call(bytes, dataStart + begin, dataStart + end);
    if (e.dtype === 'F32') tensors.set(name, { dtype: 'float32', shape: e.shape, data: new Float32Array(slice.buffer, 0, slice.byteLength / 4) });
    else if (e.dtype === 'I64') tensors.set(name, { dtype: 'int64', shape: e.shape, data: new BigInt64Array(slice.buffer, 0, slice.byteLength / 8) });
    else fail(`tensor '${name}' has dtype ${e.dtype}, which deepvision does not read`);
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string> | undefined) ?? {} };
}

export function writeSafetensors(file: string, tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

export function readSafetensors(file: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read checkpoint ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return decodeSafetensors(bytes, file);
}
