/** Checkpoint reading: every malformed file and metadata value is one CheckpointError line naming the file. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { CheckpointError, decodeSafetensors, encodeSafetensors, NamedTensor, readSafetensors } from '../src/io/safetensors';
import {
  checkpointBest, checkpointClasses, checkpointConfig, checkpointConfusion, checkpointImageSize, checkpointNormalization, CheckpointMetadata,
  checkTensorsFinite, checkTensorsMatch, loadCheckpoint, saveCheckpoint,
} from '../src/checkpoint/checkpoint';
import { classNamesDifference } from '../src/train/class-names';
import { topKCorrect } from '../src/train/metrics';
import { UserError } from '../src/util/user-error';
import { Accessor, FileCase, malformedFiles, malformedMetadata, metadataCheckpoint, rawSafetensors, trainerMetadata, validTensors } from './adversarial/checkpoints';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-checkpoint-files-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs `read` and returns the CheckpointError it must throw. */
function failure(read: () => unknown): CheckpointError {
  try {
    read();
  } catch (err) {
    if (err instanceof CheckpointError) return err;
    throw new Error(`expected a CheckpointError, got ${(err as Error).stack ?? String(err)}`);
  }
  throw new Error('expected a CheckpointError, nothing was thrown');
}

function expectOneLine(err: CheckpointError, file: string, problem: string): void {
  expect(err).toBeInstanceOf(UserError);
  expect(err.name).toBe('UserError');
  expect(err.message).toContain(file);
  expect(err.message).toContain(problem);
  expect(err.message).not.toMatch(/[\r\n\u2028\u2029]/);
}

function placeCase(c: FileCase): string {
  switch (c.kind) {
    case 'file': {
      const file = path.join(tmp, c.fileName ?? `${c.name}.safetensors`);
      fs.writeFileSync(file, c.bytes);
      return file;
    }
    case 'directory': {
      const dir = path.join(tmp, c.name);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'last.safetensors'), encodeSafetensors(validTensors()));
      return dir;
    }
    case 'missing':
      return path.join(tmp, 'no-such-run', 'last.safetensors');
    case 'device':
      return '/dev/null';
  }
}

const ACCESSORS: Record<Accessor, (meta: CheckpointMetadata, file: string) => unknown> = {
  config: checkpointConfig, normalization: checkpointNormalization, classes: checkpointClasses,
  best: checkpointBest, confusion: checkpointConfusion, imageSize: checkpointImageSize,
};

describe('malformed safetensors files', () => {
  const cases = malformedFiles();

  test('the generator covers the kinds of issue 12 and more', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  test.each(cases.map((c) => [c.name, c] as const))('%s: one CheckpointError line from readSafetensors and loadCheckpoint', (_, c) => {
    const file = placeCase(c);
    expectOneLine(failure(() => readSafetensors(file)), file, c.problem);
    expectOneLine(failure(() => loadCheckpoint(file)), file, c.problem);
    if (c.kind === 'file') expectOneLine(failure(() => decodeSafetensors(c.bytes, file)), file, c.problem);
  });

  test('an ONNX model passed as a checkpoint is named as one', () => {
    const c = cases.find((x) => x.name === 'onnx-model')!;
    const file = placeCase(c);
    expect(failure(() => loadCheckpoint(file)).message).toBe(`${file}: not a safetensors checkpoint (an ONNX model? deepvision reads the last.safetensors or best.safetensors that deepvision train writes)`);
  });

  test('a header longer than the format allows is refused before it is read', () => {
    // 100 MB + 1 of header: longer than the file would have to be, so only its length is checked.
    const bytes = rawSafetensors('{}', new Uint8Array(0), 100_000_001n);
    expectOneLine(failure(() => decodeSafetensors(bytes, 'big.safetensors')), 'big.safetensors', 'beyond the end');
  });
});

describe('valid safetensors files', () => {
  test('float32 and int64 tensors, scalars and empty tensors round-trip with their metadata', () => {
    const tensors = new Map<string, NamedTensor>([
      ['w', { dtype: 'float32', shape: [2, 3], data: new Float32Array([1, 2, 3, -4, 5.5, Infinity]) }],
      ['scalar', { dtype: 'float32', shape: [], data: new Float32Array([7]) }],
      ['empty', { dtype: 'float32', shape: [0, 4], data: new Float32Array(0) }],
      ['steps', { dtype: 'int64', shape: [2], data: new BigInt64Array([3n, -(2n ** 62n)]) }],
    ]);
    const metadata = { 'deepvision.note': 'line\nbreak', empty: '' };
    const file = path.join(tmp, 'valid.safetensors');
    fs.writeFileSync(file, encodeSafetensors(tensors, metadata));
    for (const read of [readSafetensors(file), decodeSafetensors(fs.readFileSync(file), file)]) {
      expect(read.metadata).toEqual(metadata);
      expect([...read.tensors.keys()]).toEqual([...tensors.keys()]);
      for (const [name, t] of tensors) {
        const r = read.tensors.get(name)!;
        expect(r.dtype).toBe(t.dtype);
        expect(r.shape).toEqual(t.shape);
        expect(r.data).toEqual(t.data);
      }
    }
  });

  test('absent or null __metadata__ reads as no metadata; unknown entry fields are ignored', () => {
    const data = new Uint8Array(new Float32Array([1, 2]).buffer);
    for (const header of [{ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8], extra: true } }, { __metadata__: null, w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }]) {
      const read = decodeSafetensors(rawSafetensors(header, data), 'x.safetensors');
      expect(read.metadata).toEqual({});
      expect([...(read.tensors.get('w')!.data as Float32Array)]).toEqual([1, 2]);
    }
  });

  test('tensors listed out of offset order are read by name', () => {
    const data = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
    const read = decodeSafetensors(rawSafetensors({ b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data), 'x');
    expect([...(read.tensors.get('a')!.data as Float32Array)]).toEqual([1, 2]);
    expect([...(read.tensors.get('b')!.data as Float32Array)]).toEqual([3]);
  });
});

describe('checkpoint metadata', () => {
  test('what the trainer writes loads, and every accessor reads it', () => {
    const file = path.join(tmp, 'trained.safetensors');
    fs.writeFileSync(file, metadataCheckpoint({}));
    const loaded = loadCheckpoint(file);
    expect(loaded.position).toEqual({ epoch: 2, batch: 17, step: 267, epochRng: [1, 2, 3, 4294967295], epochLoss: { sum: 3.25, count: 17 } });
    const meta = loaded.metadata;
    expect(checkpointConfig(meta, file)).toEqual({ channels: 3, classes: 10, width: 64, dropout: 0.1, norm: 'batch', bias: false });
    expect(checkpointNormalization(meta, file)).toEqual({ mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] });
    expect(checkpointClasses(meta, file)).toEqual(['circle', 'square', 'triangle']);
    expect(checkpointImageSize(meta, file)).toBe(32);
    expect(checkpointConfusion(meta, file)).toEqual([[5, 1, 0], [0, 6, 0], [1, 0, 7]]);
    const best = checkpointBest(meta, file)!;
    expect(best).toMatchObject({ epoch: 2, step: 250, valLoss: 0.12, valTop1: 0.95, valTop5: 1, trainEvalLoss: 0.1, trainTop1: 0.96 });
    expect(best.trainLoss).toBeNaN();
  });

  test('metadata a checkpoint may lack reads as undefined (config as {})', () => {
    const meta: CheckpointMetadata = {};
    expect(checkpointConfig(meta, 'x')).toEqual({});
    for (const read of [checkpointNormalization, checkpointClasses, checkpointBest, checkpointConfusion, checkpointImageSize]) expect(read(meta, 'x')).toBeUndefined();
    const file = path.join(tmp, 'no-epoch-loss.safetensors');
    fs.writeFileSync(file, metadataCheckpoint({ 'deepvision.epoch_loss': undefined }));
    expect(loadCheckpoint(file).position.epochLoss).toBeUndefined();
  });

  test('saveCheckpoint and loadCheckpoint round-trip the position and tensors', async () => {
    const file = path.join(tmp, 'saved.safetensors');
    const tensors = new Map([['fc.weight', new ort.Tensor('float32', new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3])]]);
    const position = { epoch: 1, batch: 0, step: 9, epochRng: [5, 6, 7, 8] as [number, number, number, number], epochLoss: { sum: 0, count: 0 } };
    await saveCheckpoint(file, { position, tensors, metadata: trainerMetadata() });
    const loaded = loadCheckpoint(file);
    expect(loaded.position).toEqual(position);
    expect(loaded.tensors.get('fc.weight')!.dims).toEqual([2, 3]);
    expect([...(loaded.tensors.get('fc.weight')!.data as Float32Array)]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  const cases = malformedMetadata();
  test.each(cases.map((c) => [c.name, c] as const))('%s: one CheckpointError line', (_, c) => {
    const file = path.join(tmp, `meta-${c.name}.safetensors`);
    fs.writeFileSync(file, metadataCheckpoint(c.changes));
    if (c.check === 'position') {
      expectOneLine(failure(() => loadCheckpoint(file)), file, c.problem);
    } else {
      const { metadata } = loadCheckpoint(file);
      const read = ACCESSORS[c.check];
      expectOneLine(failure(() => read(metadata, file)), file, c.problem);
    }
  });
});

describe('checkTensorsMatch', () => {
  const file = 'run/last.safetensors';
  const expected = new Map<string, readonly number[]>([['conv.weight', [2, 1, 1, 2]], ['conv.bias', [2]]]);

  test('accepts matching tensors, ort or safetensors, and tolerates extra ones', () => {
    const named = validTensors();
    named.set('optimizer.conv.bias.m', { dtype: 'float32', shape: [2], data: new Float32Array(2) });
    expect(() => checkTensorsMatch(file, named, expected)).not.toThrow();
    const ortTensors = new Map([...named].map(([n, t]) => [n, new ort.Tensor('float32', t.data as Float32Array, [...t.shape])]));
    expect(() => checkTensorsMatch(file, ortTensors, expected)).not.toThrow();
  });

  test('a missing tensor, a wrong shape or a wrong dtype is one line naming the file and tensor', () => {
    const missing = validTensors();
    missing.delete('conv.bias');
    expectOneLine(failure(() => checkTensorsMatch(file, missing, expected, 'model CNN')), file, `no tensor "conv.bias", which model CNN needs`);
    expectOneLine(failure(() => checkTensorsMatch(file, new Map(), expected)), file, 'and 1 more');
    const reshaped = validTensors();
    reshaped.set('conv.bias', { dtype: 'float32', shape: [1, 2], data: new Float32Array(2) });
    expectOneLine(failure(() => checkTensorsMatch(file, reshaped, expected)), file, '"conv.bias" is [1, 2] in the checkpoint, the model expects [2]');
    const int64 = validTensors();
    int64.set('conv.bias', { dtype: 'int64', shape: [2], data: new BigInt64Array(2) });
    expectOneLine(failure(() => checkTensorsMatch(file, int64, expected)), file, 'is int64, the model needs float32');
  });
});

describe('non-finite weights (issue 24 item 4)', () => {
  test('loadCheckpoint refuses a tensor holding NaN or infinity, naming the file, the tensor and the value', () => {
    for (const [value, shown] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity']] as const) {
      const tensors = validTensors();
      (tensors.get('conv.weight')!.data as Float32Array)[2] = value;
      const file = path.join(tmp, `non-finite-${shown}.safetensors`);
      fs.writeFileSync(file, encodeSafetensors(tensors, trainerMetadata()));
      expectOneLine(failure(() => loadCheckpoint(file)), file, `tensor "conv.weight" holds ${shown} at index 2: the checkpoint is unusable`);
    }
    const tensors = validTensors();
    (tensors.get('conv.bias')!.data as Float32Array).fill(NaN);
    expectOneLine(failure(() => checkTensorsFinite('x.safetensors', tensors)), 'x.safetensors', '"conv.bias" holds NaN at index 0 (2 values are not finite)');
    expect(() => checkTensorsFinite('x.safetensors', validTensors())).not.toThrow();
  });

  test('a NaN logit never counts as a correct prediction (top-1 or top-5)', () => {
    // Row 0: NaN for its label; row 1: NaN elsewhere; row 2: finite and right.
    const logits = new Float32Array([NaN, 1, 2, 0, 5, NaN, 0, 1, 9]);
    const labels = new BigInt64Array([0n, 1n, 2n]);
    expect(topKCorrect(logits, labels, 3, 1)).toBe(1);
    expect(topKCorrect(logits, labels, 3, 3)).toBe(1);
    expect(topKCorrect(new Float32Array([NaN, NaN]), [0], 2, 1)).toBe(0);
  });

  test('class names: the first label that differs, or the counts', () => {
    expect(classNamesDifference(['a', 'b'], ['a', 'b'])).toBeUndefined();
    expect(classNamesDifference(['a', 'b', 'c'], ['a', 'x', 'y'])).toBe('label 1 is "b" for the model but "x" in the data (2 labels differ)');
    expect(classNamesDifference(['a'], ['a', 'b'])).toBe('the model has 1 class ("a"), the data 2 ("a", "b")');
  });
});
