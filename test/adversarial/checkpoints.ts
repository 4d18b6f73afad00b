/**
 * Malformed checkpoint files, generated in memory for test/checkpoint-files.test.ts (which writes them to a
 * temporary folder): each case names the problem its error message must mention.
 */
import { encodeSafetensors, NamedTensor } from '../../src/io/safetensors';

export type FileCase =
  | { name: string; kind: 'file'; bytes: Uint8Array; problem: string; fileName?: string }
  | { name: string; kind: 'directory' | 'missing' | 'device'; problem: string };

export type Accessor = 'config' | 'normalization' | 'classes' | 'best' | 'confusion' | 'imageSize';

/** Metadata that makes loadCheckpoint fail ('position') or one accessor fail, on an otherwise valid checkpoint. */
export interface MetadataCase {
  name: string;
  check: 'position' | Accessor;
  /** Entries replacing (or, when undefined, removing) those of trainerMetadata(). */
  changes: Record<string, string | undefined>;
  problem: string;
}

/** Concatenates an 8-byte little-endian header length, the header and the data. */
export function rawSafetensors(header: string | Uint8Array | object, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): Uint8Array {
  const headerBytes = header instanceof Uint8Array ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

function tensor(dtype: string, shape: unknown, offsets: unknown): Record<string, unknown> {
  return { dtype, shape, data_offsets: offsets };
}

function bytes(n: number): Uint8Array {
  return new Uint8Array(n).fill(1);
}

/** What `deepvision train` writes in a checkpoint's metadata (see metadata() in src/train/trainer.ts). */
export function trainerMetadata(): Record<string, string> {
  return {
    'deepvision.model': 'CNN',
    'deepvision.variant': 'dropout',
    'deepvision.config': JSON.stringify({ channels: 3, classes: 10, width: 64, dropout: 0.1, norm: 'batch', bias: false }),
    'deepvision.seed': '0',
    'deepvision.optimizer': JSON.stringify({ kind: 'adam', beta1: 0.9, beta2: 0.999 }),
    'deepvision.optimizer_description': 'Adam (beta1 0.9, beta2 0.999)',
    'deepvision.data': 'shapes',
    'deepvision.val_fraction': '0.1',
    'deepvision.graph_file': '/models/graphs/cnn.ts',
    'deepvision.image_size': '32',
    'deepvision.classes': JSON.stringify(['circle', 'square', 'triangle']),
    'deepvision.normalization': JSON.stringify({ mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] }),
    // A metric that was NaN when saved comes back as null (JSON has no NaN).
    'deepvision.best': JSON.stringify({ epoch: 2, step: 250, learningRate: 0.002, trainLoss: NaN, valLoss: 0.12, valTop1: 0.95, valTop5: 1, seconds: 37.8, imagesPerSecond: 423, trainEvalLoss: 0.1, trainTop1: 0.96 }),
    'deepvision.best_confusion': JSON.stringify([[5, 1, 0], [0, 6, 0], [1, 0, 7]]),
    'deepvision.epoch': '2',
    'deepvision.batch': '17',
    'deepvision.step': '267',
    'deepvision.rng': JSON.stringify([1, 2, 3, 4294967295]),
    'deepvision.epoch_loss': JSON.stringify({ sum: 3.25, count: 17 }),
  };
}

/** A valid checkpoint's tensors: what the metadata cases are written with. */
export function validTensors(): Map<string, NamedTensor> {
  return new Map<string, NamedTensor>([
    ['conv.weight', { dtype: 'float32', shape: [2, 1, 1, 2], data: new Float32Array([1, -2, 3.5, 0]) }],
    ['conv.bias', { dtype: 'float32', shape: [2], data: new Float32Array([0.25, -0.25]) }],
  ]);
}

export function metadataCheckpoint(changes: Record<string, string | undefined>): Uint8Array {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...trainerMetadata(), ...changes })) if (value !== undefined) metadata[key] = value;
  return encodeSafetensors(validTensors(), metadata);
}

export function malformedFiles(): FileCase[] {
  const file = (name: string, content: Uint8Array, problem: string, fileName?: string): FileCase => ({ name, kind: 'file', bytes: content, problem, ...(fileName ? { fileName } : {}) });
  const one = (entry: unknown, data = bytes(16)) => rawSafetensors({ w: entry }, data);
  const valid = encodeSafetensors(validTensors(), { a: 'b' });
  // ONNX ModelProto: ir_version 8, producer_name "pytorch", opset_import { version 17 }.
  const onnx = new Uint8Array([0x08, 0x08, 0x12, 0x07, ...Buffer.from('pytorch'), 0x42, 0x02, 0x10, 0x11, 0x3a, 0x00]);
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, ...Buffer.from('IHDR'), 0, 0, 0, 32, 0, 0, 0, 32, 8, 2, 0, 0, 0, 0xfc, 0x18, 0xed, 0xa3]);
  const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, ...Buffer.from('JFIF'), 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  const zip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, ...bytes(20)]);
  const nonUtf8 = new Uint8Array([...Buffer.from('{"w'), 0xff, 0xfe, ...Buffer.from('":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}')]);
  return [
    file('zero-bytes', new Uint8Array(0), 'empty'),
    file('seven-bytes', new Uint8Array(7), 'shorter than the 8-byte header length'),
    file('header-length-beyond-file', rawSafetensors('{}', new Uint8Array(0), 1000n), 'beyond the end'),
    file('header-length-2^63', rawSafetensors('{}', new Uint8Array(0), 2n ** 63n), 'beyond the end'),
    file('header-length-2^64-1', rawSafetensors('{}', new Uint8Array(0), 2n ** 64n - 1n), 'beyond the end'),
    file('header-length-2^53+1', rawSafetensors('{}', new Uint8Array(0), 2n ** 53n + 1n), 'beyond the end'),
    file('header-length-zero', rawSafetensors('', bytes(16)), 'not a JSON object'),
    file('header-invalid-json', rawSafetensors('{"w": {"dtype": "F32",'), 'not valid JSON'),
    file('header-invalid-json-multiline', rawSafetensors('{\n"w":\n\n}\n'), 'not valid JSON'),
    file('header-null', rawSafetensors('null'), 'header is null'),
    file('header-array', rawSafetensors('[]'), 'header is an array'),
    file('header-number', rawSafetensors('42'), 'header is the number 42'),
    file('header-string', rawSafetensors('"str"'), 'header is the string'),
    file('header-boolean', rawSafetensors('true'), 'header is a boolean'),
    file('header-not-utf8', rawSafetensors(nonUtf8, bytes(16)), 'not valid UTF-8'),
    file('metadata-array', rawSafetensors({ __metadata__: ['a'] }), '__metadata__ is an array'),
    file('metadata-string', rawSafetensors({ __metadata__: 'a' }), '__metadata__ is the string'),
    file('metadata-value-number', rawSafetensors({ __metadata__: { 'deepvision.epoch': 3 } }), 'not a string'),
    file('metadata-value-object', rawSafetensors({ __metadata__: { 'deepvision.config': { a: 1 } } }), 'not a string'),
    file('entry-number', one(5), 'is the number 5, not an object'),
    file('entry-null', one(null), 'is null, not an object'),
    file('entry-array', one([0, 16]), 'is an array, not an object'),
    file('dtype-missing', one({ shape: [4], data_offsets: [0, 16] }), 'no dtype'),
    file('dtype-number', one(tensor(4 as unknown as string, [4], [0, 16])), 'not a string'),
    file('dtype-F16', one(tensor('F16', [8], [0, 16])), 'F16; deepvision reads F32 and I64'),
    file('dtype-BF16', one(tensor('BF16', [8], [0, 16])), 'BF16; deepvision reads F32 and I64'),
    file('dtype-F64', one(tensor('F64', [2], [0, 16])), 'F64; deepvision reads F32 and I64'),
    file('dtype-unknown', one(tensor('Q7', [4], [0, 16])), 'unknown dtype "Q7"'),
    file('dtype-lowercase', one(tensor('f32', [4], [0, 16])), 'unknown dtype "f32"'),
    file('shape-missing', one({ dtype: 'F32', data_offsets: [0, 16] }), 'no shape'),
    file('shape-not-array', one(tensor('F32', 4, [0, 16])), 'not an array'),
    file('shape-negative', one(tensor('F32', [-4], [0, 16])), 'non-negative integers'),
    file('shape-negative-pair', one(tensor('F32', [-2, -2], [0, 16])), 'non-negative integers'),
    file('shape-fractional', one(tensor('F32', [2.5, 1.6], [0, 16])), 'non-negative integers'),
    file('shape-string', one(tensor('F32', ['4'], [0, 16])), 'non-negative integers'),
    file('shape-huge', one(tensor('F32', [1e15, 1e15], [0, 16])), 'too large'),
    file('shape-beyond-2^53', one(tensor('F32', [2 ** 60], [0, 16])), 'non-negative integers'),
    file('offsets-missing', one({ dtype: 'F32', shape: [4] }), 'no data_offsets'),
    file('offsets-one-number', one(tensor('F32', [4], [16])), 'not [begin, end]'),
    file('offsets-object', one(tensor('F32', [4], { begin: 0, end: 16 })), 'not [begin, end]'),
    file('offsets-negative', one(tensor('F32', [4], [-16, 0])), 'non-negative integers'),
    file('offsets-fractional', one(tensor('F32', [4], [0, 15.5])), 'non-negative integers'),
    file('offsets-beyond-2^53', one(tensor('F32', [4], [0, 1e20])), 'non-negative integers'),
    file('offsets-begin-after-end', one(tensor('F32', [4], [16, 0])), 'begin is after end'),
    file('offsets-beyond-data', one(tensor('F32', [8], [0, 32])), 'beyond the data section'),
    file('truncated-data', valid.subarray(0, valid.length - 4), 'beyond the data section'),
    file('byte-length-not-shape', one(tensor('F32', [3], [0, 16])), 'needs 12'),
    file('byte-length-I64', one(tensor('I64', [4], [0, 16])), 'needs 32'),
    file('gap-between-tensors', rawSafetensors({ a: tensor('F32', [2], [0, 8]), b: tensor('F32', [2], [12, 20]) }, bytes(20)), 'a gap'),
    file('first-tensor-not-at-0', rawSafetensors({ a: tensor('F32', [2], [4, 12]) }, bytes(12)), 'a gap'),
    file('overlapping-tensors', rawSafetensors({ a: tensor('F32', [2], [0, 8]), b: tensor('F32', [2], [4, 12]) }, bytes(12)), 'overlapping'),
    file('same-offsets-twice', rawSafetensors({ a: tensor('F32', [4], [0, 16]), b: tensor('F32', [4], [0, 16]) }, bytes(16)), 'overlapping'),
    file('data-longer-than-covered', rawSafetensors({ a: tensor('F32', [4], [0, 16]) }, bytes(20)), 'left over'),
    file('data-without-tensors', rawSafetensors({}, bytes(8)), 'left over'),
    // JSON.parse keeps the last of duplicate keys: the first's bytes are then uncovered.
    file('duplicate-tensor-name', rawSafetensors('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}', bytes(32)), 'a gap'),
    file('name-with-newline', rawSafetensors({ 'evil\nname\r\n': tensor('F16', [8], [0, 16]) }, bytes(16)), 'F16'),
    file('onnx-model', onnx, 'an ONNX model?', 'model.onnx'),
    file('onnx-model-renamed', onnx, 'an ONNX model?'),
    file('png-image', png, 'a PNG image?', 'image.png'),
    file('jpeg-image', jpeg, 'a JPEG image?', 'photo.safetensors'),
    file('pytorch-zip', zip, 'a zip archive', 'model.pt'),
    file('text-file', Buffer.from('{"epoch":1,"step":250,"trainLoss":0.5}\n'), 'not a safetensors checkpoint'),
    { name: 'directory', kind: 'directory', problem: 'is a directory' },
    { name: 'missing-path', kind: 'missing', problem: 'no such file' },
    { name: 'device', kind: 'device', problem: 'not a regular file' },
  ];
}

export function malformedMetadata(): MetadataCase[] {
  const position = (name: string, changes: Record<string, string | undefined>, problem: string): MetadataCase => ({ name, check: 'position', changes, problem });
  const bad = (check: Accessor, key: string, values: string[], problem: string): MetadataCase[] =>
    values.map((value, i) => ({ name: `${check}-${i}`, check, changes: { [key]: value }, problem: `'${key}'${problem ? ` ${problem}` : ''}` }));
  const best = (fields: Record<string, unknown>) => JSON.stringify(fields);
  return [
    position('epoch-missing', { 'deepvision.epoch': undefined }, "'deepvision.epoch' is missing"),
    ...['-1', '1.5', 'abc', '', ' 1', '1e3', '0x10', '99999999999999999999', 'NaN'].map((v, i) => position(`epoch-${i}`, { 'deepvision.epoch': v }, "'deepvision.epoch' is")),
    position('batch-negative', { 'deepvision.batch': '-3' }, "'deepvision.batch' is"),
    position('batch-missing', { 'deepvision.batch': undefined }, "'deepvision.batch' is missing"),
    position('step-float', { 'deepvision.step': '2.000001' }, "'deepvision.step' is"),
    position('rng-missing', { 'deepvision.rng': undefined }, "'deepvision.rng' is missing"),
    position('rng-not-json', { 'deepvision.rng': '[1, 2, 3,' }, "'deepvision.rng' is not valid JSON"),
    ...['null', '{"a":1}', '[1,2,3]', '[1,2,3,4,5]', '[1,2,3,-1]', '[1,2,3,4294967296]', '[1.5,2,3,4]', '["1",2,3,4]', '[0,0,0,0]'].map((v, i) =>
      position(`rng-${i}`, { 'deepvision.rng': v }, "'deepvision.rng'")),
    ...['null', '{"sum":1}', '{"sum":"1","count":2}', '{"sum":1,"count":-1}', '{"sum":1,"count":1.5}', '{"sum":1e999,"count":1}', '[1,2]', '{'].map((v, i) =>
      position(`epoch-loss-${i}`, { 'deepvision.epoch_loss': v }, "'deepvision.epoch_loss'")),
    ...bad('config', 'deepvision.config', ['{', 'null', '[]', '42', '"x"', '{"a":null}', '{"a":{"b":1}}', '{"a":[1]}', '{"a":1e999}'], ''),
    ...bad('normalization', 'deepvision.normalization', [
      '{', 'null', '[]', '{"mean":[0.5]}', '{"mean":[0.5],"std":[0]}', '{"mean":[0.5],"std":[-0.2]}', '{"mean":[0.5,0.5],"std":[0.2]}',
      '{"mean":[],"std":[]}', '{"mean":[0,0,0,0,0],"std":[1,1,1,1,1]}', '{"mean":["0.5"],"std":[0.2]}', '{"mean":[1e999],"std":[1]}', '{"mean":[0.5],"std":[null]}',
      '{"mean":0.5,"std":0.2}',
    ], ''),
    ...bad('classes', 'deepvision.classes', ['{', 'null', '{}', '[]', '[1,2]', '"cat"', '["cat",null]'], ''),
    ...bad('best', 'deepvision.best', [
      '{', 'null', '[]', '{}', best({ epoch: -1, valLoss: 0.1, valTop1: 0.9 }), best({ epoch: 1, valLoss: '0.1', valTop1: 0.9 }),
      best({ epoch: 1, valLoss: 0.1 }), best({ epoch: 1.5, valLoss: 0.1, valTop1: 0.9 }), best({ epoch: 1, step: -2, valLoss: 0.1, valTop1: 0.9 }),
      best({ epoch: 1, valLoss: 0.1, valTop1: 0.9, valTop5: 'all' }),
    ], ''),
    ...bad('confusion', 'deepvision.best_confusion', ['{', 'null', '{}', '[]', '[[1,2],[3]]', '[[1,2]]', '[[1,-1],[0,0]]', '[[1.5]]', '[["1"]]', '[1,2]'], ''),
    ...bad('imageSize', 'deepvision.image_size', ['0', '-32', '32.5', 'abc', '', '1e3', ' 32'], ''),
  ];
}
