import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants as bufferConstants } from 'node:buffer';
import { writeFileAtomic } from '../util/atomic-write';
import { UserError } from '../util/user-error';
import { O_NONBLOCK } from '../util/regular-file';

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

/** A checkpoint file that cannot be used: the message names the file and the problem, on one line. */
export class CheckpointError extends UserError {
  constructor(message: string) {
    // Tensor names, JSON parser messages and metadata come from the file: keep the CLI's `error:` line one line.
    super(message.replace(/[\r\n\u2028\u2029]+/g, ' '));
  }
}

const CODES = { float32: 'F32', int64: 'I64' } as const;
/** The dtypes read, by their safetensors code. */
const READABLE = { F32: { dtype: 'float32', size: 4 }, I64: { dtype: 'int64', size: 8 } } as const;
/** The format's other dtypes: named as unsupported rather than unknown. */
const OTHER_DTYPES = new Set(['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F64', 'U64', 'C64']);
/** The safetensors crate's own header limit (MAX_HEADER_SIZE): a longer header is not a checkpoint. */
const MAX_HEADER_LENGTH = 100_000_000;

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

/** One tensor of a validated header: where its bytes lie in the data section. */
interface TensorEntry {
  name: string;
  dtype: NamedTensor['dtype'];
  shape: number[];
  begin: number;
  end: number;
}

interface Layout {
  entries: TensorEntry[];
  metadata: Record<string, string>;
}

export function decodeSafetensors(bytes: Uint8Array, source = 'checkpoint'): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  const head = bytes.subarray(0, 8);
  const headerLength = checkHeaderLength(head, bytes.byteLength, source);
  const dataStart = 8 + headerLength;
  const layout = parseHeader(bytes.subarray(8, dataStart), bytes.byteLength - dataStart, source, head);
  return { tensors: extractTensors(layout, bytes.subarray(dataStart)), metadata: layout.metadata };
}

export function writeSafetensors(file: string, tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/**
 * Reads a checkpoint, validating the header before the data is read, so that a file that is not a checkpoint
 * (an ONNX model, an image, a huge unrelated file) is rejected without reading it whole.
 */
export function readSafetensors(file: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  let fd: number;
  try {
    // Non-blocking, so that opening a FIFO returns at once; the checks below are made on what was opened.
    fd = fs.openSync(file, fs.constants.O_RDONLY | O_NONBLOCK);
  } catch (err) {
    throw new CheckpointError(`${file}: ${describeFsError(err)}`);
  }
  const stat = fs.fstatSync(fd);
  const refuse = (why: string) => {
    fs.closeSync(fd);
    return new CheckpointError(`${file}: ${why}`);
  };
  if (stat.isDirectory()) throw refuse('is a directory, not a safetensors checkpoint (pass the last.safetensors or best.safetensors file inside it)');
  // A FIFO or device would block or never end: only plain files are read.
  if (!stat.isFile()) throw refuse('not a regular file, so not a safetensors checkpoint');
  if (stat.size > bufferConstants.MAX_LENGTH) throw refuse(`${stat.size} bytes, too large to read as a checkpoint`);
  try {
    const size = stat.size;
    const head = readAt(fd, 0, Math.min(8, size), file);
    const headerLength = checkHeaderLength(head, size, file);
    const dataStart = 8 + headerLength;
    const layout = parseHeader(readAt(fd, 8, headerLength, file), size - dataStart, file, head);
    return { tensors: extractTensors(layout, readAt(fd, dataStart, size - dataStart, file)), metadata: layout.metadata };
  } finally {
    fs.closeSync(fd);
  }
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT': return 'no such file';
    case 'ENOTDIR': return 'no such file (a folder on its path is a file)';
    case 'EISDIR': return 'is a directory, not a safetensors checkpoint';
    case 'EACCES':
    case 'EPERM': return 'permission denied';
    default: return `cannot read it (${code ?? (err as Error).message})`;
  }
}

function readAt(fd: number, position: number, length: number, file: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = fs.readSync(fd, out, done, length - done, position + done);
    } catch (err) {
      throw new CheckpointError(`${file}: ${describeFsError(err)}`);
    }
    if (n === 0) throw new CheckpointError(`${file}: the file became shorter while it was read (being written?)`);
    done += n;
  }
  return out;
}

/** The header length from the first 8 bytes, checked against the file size before anything is allocated for it. */
function checkHeaderLength(head: Uint8Array, fileSize: number, source: string): number {
  if (fileSize === 0) throw notSafetensors(source, head, 'the file is empty');
  if (fileSize < 8) throw notSafetensors(source, head, `${fileSize} bytes, shorter than the 8-byte header length`);
  // Compared as a BigInt: a length of 2^63 or more has no exact Number.
  const length = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(fileSize - 8)) throw notSafetensors(source, head, `header length ${length} is beyond the end of the ${fileSize}-byte file`);
  if (length > BigInt(MAX_HEADER_LENGTH)) throw notSafetensors(source, head, `header length ${length} is over the format's limit of ${MAX_HEADER_LENGTH} bytes`);
  return Number(length);
}

/** Validates the JSON header against the data section's length: every field, and the offsets covering it exactly. */
function parseHeader(headerBytes: Uint8Array, dataLength: number, source: string, head: Uint8Array): Layout {
  const invalid = (why: string) => new CheckpointError(`${source}: invalid safetensors checkpoint: ${why}`);
  // Text that does not even start like a JSON object is some other kind of file.
  const looksLikeObject = headerBytes[0] === 0x7b;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw looksLikeObject ? invalid('the header is not valid UTF-8') : notSafetensors(source, head, 'the header is not UTF-8 text');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    if (!/^\s*\{/.test(text)) throw notSafetensors(source, head, 'the header is not a JSON object');
    throw invalid(`the header is not valid JSON (${clip((err as Error).message, 100)})`);
  }
  if (!isPlainObject(header)) throw invalid(`the header is ${describeValue(header)}, not a JSON object`);

  const metadata = parseMetadata(header.__metadata__, invalid);
  const entries: TensorEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    entries.push(parseEntry(name, value, dataLength, invalid));
  }
  // The format requires the tensors to tile the data section: no gaps, no overlaps, nothing left over.
  const ordered = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: TensorEntry | undefined;
  for (const e of ordered) {
    if (e.begin !== covered) {
      const where = previous ? `tensor ${quote(previous.name)} ends at byte ${covered}` : 'the data section starts at byte 0';
      throw invalid(`tensor ${quote(e.name)} starts at byte ${e.begin} of the data, but ${where} (${e.begin > covered ? 'a gap' : 'overlapping tensors'})`);
    }
    covered = e.end;
    previous = e;
  }
  if (covered !== dataLength) throw invalid(`the tensors cover ${covered} bytes of data, but the data section has ${dataLength} (bytes left over after the last tensor)`);
  return { entries, metadata };
}

function parseMetadata(value: unknown, invalid: (why: string) => CheckpointError): Record<string, string> {
  // Absent and null both mean none (the safetensors crate reads it as an optional map).
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) throw invalid(`__metadata__ is ${describeValue(value)}, not an object of strings`);
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalid(`__metadata__ ${quote(key)} is ${describeValue(v)}, not a string`);
  }
  // fromEntries defines own properties, so a key named __proto__ stays data.
  return Object.fromEntries(Object.entries(value as Record<string, string>));
}

function parseEntry(name: string, value: unknown, dataLength: number, invalid: (why: string) => CheckpointError): TensorEntry {
  const what = `tensor ${quote(name)}`;
  if (!isPlainObject(value)) throw invalid(`${what} is ${describeValue(value)}, not an object with dtype, shape and data_offsets`);
  const code = value.dtype;
  if (typeof code !== 'string') throw invalid(`${what} has ${code === undefined ? 'no dtype' : `a dtype that is ${describeValue(code)}, not a string`}`);
  if (!Object.hasOwn(READABLE, code)) {
    throw invalid(OTHER_DTYPES.has(code) ? `${what} has dtype ${code}; deepvision reads F32 and I64 tensors only` : `${what} has unknown dtype ${quote(code)}`);
  }
  const { dtype, size } = READABLE[code as keyof typeof READABLE];

  const shape = value.shape;
  if (!Array.isArray(shape)) throw invalid(`${what} has ${shape === undefined ? 'no shape' : `a shape that is ${describeValue(shape)}, not an array`}`);
  let count = 1;
  for (const d of shape as unknown[]) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw invalid(`${what} has shape ${clip(JSON.stringify(shape), 60)}: dimensions must be non-negative integers`);
    count *= d;
    // Past this the byte count is inexact; such a tensor could not fit in any file read here anyway.
    if (count * size > Number.MAX_SAFE_INTEGER) throw invalid(`${what} has shape ${clip(JSON.stringify(shape), 60)}, too large`);
  }

  const offsets = value.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2) throw invalid(`${what} has ${offsets === undefined ? 'no data_offsets' : `data_offsets ${clip(JSON.stringify(offsets), 60)}, not [begin, end]`}`);
  const [begin, end] = offsets as unknown[];
  if (typeof begin !== 'number' || typeof end !== 'number' || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < 0) {
    throw invalid(`${what} has data_offsets ${clip(JSON.stringify(offsets), 60)}: offsets must be non-negative integers`);
  }
  if (begin > end) throw invalid(`${what} has data_offsets [${begin}, ${end}]: begin is after end`);
  if (end > dataLength) throw invalid(`${what} ends at byte ${end} of the data, beyond the data section's ${dataLength} bytes (a truncated file?)`);
  if (end - begin !== count * size) throw invalid(`${what} has ${end - begin} bytes of data, but shape [${shape.join(', ')}] of ${code} needs ${count * size}`);
  return { name, dtype, shape: shape as number[], begin, end };
}

/** Copies each tensor out of the data section (typed arrays need aligned, owned buffers). */
function extractTensors(layout: Layout, data: Uint8Array): Map<string, NamedTensor> {
  const tensors = new Map<string, NamedTensor>();
  for (const e of layout.entries) {
    // Uint8Array.prototype.slice copies; a Node Buffer's own slice() would be a view into the file buffer.
    const bytes = Uint8Array.prototype.slice.call(data, e.begin, e.end);
    const values = e.dtype === 'float32' ? new Float32Array(bytes.buffer, 0, bytes.byteLength / 4) : new BigInt64Array(bytes.buffer, 0, bytes.byteLength / 8);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: values });
  }
  return tensors;
}

function notSafetensors(source: string, head: Uint8Array, why: string): CheckpointError {
  return new CheckpointError(`${source}: not a safetensors checkpoint (${guessKind(source, head) ?? why})`);
}

/** What a file that is not safetensors probably is, from its first bytes or its name. */
function guessKind(source: string, head: Uint8Array): string | undefined {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'a PNG image?';
  if (starts(0xff, 0xd8, 0xff)) return 'a JPEG image?';
  if (starts(0x50, 0x4b, 0x03, 0x04)) return 'a zip archive, such as a PyTorch .pt file? deepvision reads the .safetensors files that deepvision train writes';
  // An ONNX ModelProto begins with field 1 (ir_version) as a varint: tag byte 0x08.
  if (path.extname(source).toLowerCase() === '.onnx' || head[0] === 0x08) {
    return 'an ONNX model? deepvision reads the last.safetensors or best.safetensors that deepvision train writes';
  }
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${quote(v)}`;
  return `${typeof v === 'number' ? 'the number' : `a ${typeof v}`} ${String(v)}`;
}

/** A name from the file, quoted and escaped (newlines included) and cut to a readable length. */
function quote(s: string): string {
  return clip(JSON.stringify(s), 80);
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}
