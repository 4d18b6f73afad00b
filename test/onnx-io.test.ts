import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/dsl/builder';
import * as F from '../src/dsl/functional';
import { TensorData } from '../src/ir/tensor';
import { decodeModel, readModelFile } from '../src/onnx/read';
import { encodeModel, writeModelFile } from '../src/onnx/write';
import { imagenetInput } from './support/imagenet';
import { dataTest, fixture, sharedFile } from './support/shared';

const MOBILENET = 'models/mobilenetv2-torchvision-int8-qdq.onnx';
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-io-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function run(model: string | Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  const out = await session.run(feeds);
  await session.release();
  return out[Object.keys(out)[0]!]!.data as Float32Array;
}

describe('reading and writing models from other tools', () => {
  dataTest('a read-then-write round trip of the int8 MobileNetV2 gives the same outputs on dog.jpg', [MOBILENET, 'models/samples/dog.jpg'], async () => {
    const file = sharedFile(MOBILENET);
    const model = readModelFile(file);
    expect(model.irVersion).toBe(7);
    expect(model.graph.nodes).toHaveLength(303);
    expect(model.graph.initializers.size).toBe(450);
    const rewritten = path.join(tmp, 'mobilenet-roundtrip.onnx');
    writeModelFile(model, rewritten);

    const input = new ort.Tensor('float32', await imagenetInput(sharedFile('models/samples/dog.jpg')), [1, 3, 224, 224]);
    const original = await run(file, { input });
    const roundTripped = await run(rewritten, { input });
    expect(Array.from(roundTripped)).toEqual(Array.from(original));
    const top1 = original.indexOf(Math.max(...original));
    expect(top1).toBe(258); // Samoyed
  });

  dataTest('the round trip keeps initializers, attributes, opsets, value_info and metadata', [MOBILENET], () => {
    const model = readModelFile(sharedFile(MOBILENET));
    const again = decodeModel(encodeModel(model));
    expect(again.opsetImports).toEqual(model.opsetImports);
    expect([...again.metadata]).toEqual([...model.metadata]);
    expect([...again.graph.valueInfoNames].sort()).toEqual([...model.graph.valueInfoNames].sort());
    for (const [name, t] of model.graph.initializers) {
      const u = again.graph.initializers.get(name)!;
      expect(u.dtype).toBe(t.dtype);
      expect(u.dims).toEqual(t.dims);
      expect(Buffer.from(u.bytes).equals(Buffer.from(t.bytes))).toBe(true);
    }
    model.graph.nodes.forEach((n, i) => {
      const m = again.graph.nodes[i]!;
      expect(m.opType).toBe(n.opType);
      expect([...m.attributes]).toEqual([...n.attributes]);
      expect(m.inputs.map((v) => v?.name)).toEqual(n.inputs.map((v) => v?.name));
    });
  });

  dataTest('the dynamic-batch MobileNetV2 keeps its symbolic batch dimension', ['models/mobilenetv2-7-int8-qdq.onnx'], () => {
    const model = readModelFile(sharedFile('models/mobilenetv2-7-int8-qdq.onnx'));
    expect(model.graph.inputs[0]!.shape).toEqual(['batch_size', 3, 224, 224]);
    const again = decodeModel(encodeModel(model));
    expect(again.graph.inputs[0]!.shape).toEqual(['batch_size', 3, 224, 224]);
  });

  test('deepvision models re-encode to identical bytes', () => {
    const b = new GraphBuilder('tiny');
    const x = b.input('x', 'float32', ['batch', 4]);
    const w = b.initializer('w', TensorData.float32([3, 4], Array.from({ length: 12 }, (_, i) => i / 10)));
    b.output('y', b.run(() => F.relu(F.linear(x, w))));
    const bytes = encodeModel(b.toModel());
    expect(Buffer.from(encodeModel(decodeModel(bytes))).equals(Buffer.from(bytes))).toBe(true);
  });

  test('tensors stored in typed fields (float_data, int64_data, int32_data) are read', () => {
    const proto = minimalModel({
      initializer: [
        { name: 'f', dataType: 1, dims: [2], floatData: [1.5, -2] },
        { name: 'i', dataType: 7, dims: [2], int64Data: [3, -4] },
        { name: 'u8', dataType: 2, dims: [3], int32Data: [0, 128, 255] },
      ],
    });
    const model = decodeModel(proto);
    expect(model.graph.initializers.get('f')!.toNumbers()).toEqual([1.5, -2]);
    expect(model.graph.initializers.get('i')!.toNumbers()).toEqual([3, -4]);
    expect(model.graph.initializers.get('u8')!.toNumbers()).toEqual([0, 128, 255]);
  });

  test('INT64_MAX in attributes survives a round trip (Slice-style "to the end")', () => {
    const proto = minimalModel({}, [{ name: 'big', type: onnx.AttributeProto.AttributeType.INTS, ints: [{ low: -1, high: 0x7fffffff, unsigned: false } as never] }]);
    const again = onnx.ModelProto.decode(encodeModel(decodeModel(proto)));
    expect(String(again.graph!.node![0]!.attribute![0]!.ints![0])).toBe('9223372036854775807');
  });
});

describe('bad input gives clear errors', () => {
  test('a truncated file', () => {
    // A model with a 4,000-value initializer, cut in the middle of its weights.
    const b = new GraphBuilder('cut');
    const x = b.input('x', 'float32', ['batch', 40]);
    const w = b.initializer('w', TensorData.float32([100, 40], Array.from({ length: 4000 }, (_, i) => Math.sin(i))));
    b.output('y', b.run(() => F.linear(x, w)));
    const bytes = encodeModel(b.toModel());
    const file = path.join(tmp, 'truncated.onnx');
    fs.writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
    expect(() => readModelFile(file)).toThrow(/truncated\.onnx: .*(truncated|inconsistent)/);
  });

  test('a file cut at a message boundary (nodes refer to missing values)', () => {
    const proto = onnx.ModelProto.decode(minimalModel({}));
    proto.graph!.node![0]!.input = ['nowhere'];
    expect(() => decodeModel(onnx.ModelProto.encode(proto).finish(), { source: 'cut.onnx' }))
      .toThrow("cut.onnx: graph 'g': node 'n' uses 'nowhere', which no input, initializer or node defines (truncated or inconsistent file)");
  });

  test('a file that is not ONNX (a JPEG), an empty file, a missing file', () => {
    expect(() => readModelFile(fixture('photos/dog-320.jpg'))).toThrow(/dog-320\.jpg: not an ONNX model/);
    const empty = path.join(tmp, 'empty.onnx');
    fs.writeFileSync(empty, '');
    expect(() => readModelFile(empty)).toThrow(/empty\.onnx: file is empty, not an ONNX model/);
    expect(() => readModelFile(path.join(tmp, 'missing.onnx'))).toThrow(/missing\.onnx: cannot read file: ENOENT/);
  });

  test('an unsupported IR version or opset', () => {
    const ir = onnx.ModelProto.decode(minimalModel({}));
    ir.irVersion = 99;
    expect(() => decodeModel(onnx.ModelProto.encode(ir).finish(), { source: 'ir99.onnx' }))
      .toThrow('ir99.onnx: unsupported ONNX IR version 99 (deepvision reads IR versions 3 to 11)');
    const opset = onnx.ModelProto.decode(minimalModel({}));
    opset.opsetImport = [{ domain: '', version: 99 }];
    expect(() => decodeModel(onnx.ModelProto.encode(opset).finish(), { source: 'op99.onnx' }))
      .toThrow('op99.onnx: unsupported opset 99 of the default ONNX domain (deepvision reads opsets 7 to 23)');
  });

  describe('external data', () => {
    const external = (location: string, extra: { key: string; value: string }[] = []) => minimalModel({
      initializer: [{ name: 'w', dataType: 1, dims: [2], dataLocation: 1, externalData: [{ key: 'location', value: location }, ...extra] }],
    });
    const write = (dir: string, name: string, bytes: Uint8Array) => {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, name), bytes);
      return path.join(dir, name);
    };

    test('inside the model folder is read', () => {
      const dir = path.join(tmp, 'ext-ok');
      write(dir, 'weights.bin', new Uint8Array(new Float32Array([0, 0, 7, -1]).buffer));
      const file = write(dir, 'model.onnx', external('weights.bin', [{ key: 'offset', value: '8' }, { key: 'length', value: '8' }]));
      expect(readModelFile(file).graph.initializers.get('w')!.toNumbers()).toEqual([7, -1]);
    });

    test('a path that leaves the folder is refused without reading it', () => {
      const dir = path.join(tmp, 'ext-escape', 'model');
      write(path.dirname(dir), 'secret.bin', new Uint8Array(8));
      const file = write(dir, 'model.onnx', external('../secret.bin'));
      expect(() => readModelFile(file)).toThrow("tensor 'w': external data path '../secret.bin' leaves the model's folder");
    });

    test('an absolute path is refused', () => {
      const file = write(path.join(tmp, 'ext-abs'), 'model.onnx', external('/etc/passwd'));
      expect(() => readModelFile(file)).toThrow("external data path '/etc/passwd' is absolute; only paths inside the model's folder are allowed");
    });

    test('a symbolic link that leads outside is refused', () => {
      const dir = path.join(tmp, 'ext-link');
      const outside = write(path.join(tmp, 'ext-link-target'), 'secret.bin', new Uint8Array(8));
      fs.mkdirSync(dir, { recursive: true });
      fs.symlinkSync(outside, path.join(dir, 'weights.bin'));
      const file = write(dir, 'model.onnx', external('weights.bin'));
      expect(() => readModelFile(file)).toThrow("external data path 'weights.bin' leads outside the model's folder through a link");
    });

    test('a missing or short data file is reported', () => {
      const dir = path.join(tmp, 'ext-short');
      write(dir, 'weights.bin', new Uint8Array(4));
      expect(() => readModelFile(write(dir, 'a.onnx', external('nothing.bin')))).toThrow("external data file 'nothing.bin' does not exist");
      expect(() => readModelFile(write(dir, 'b.onnx', external('weights.bin')))).toThrow("'weights.bin' is 4 bytes, too short for offset 0 + length 8");
    });

    test('a model decoded from bytes cannot reach external data', () => {
      expect(() => decodeModel(external('weights.bin'))).toThrow('cannot be read: the model was not loaded from a file');
    });
  });
});

/** A valid one-node model (Identity of input x), with room for test-specific initializers and attributes. */
function minimalModel(graph: Partial<onnx.IGraphProto>, attribute: onnx.IAttributeProto[] = []): Uint8Array {
  const tensorType = { elemType: 1, shape: { dim: [{ dimValue: 2 }] } };
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      node: [{ name: 'n', opType: 'Identity', input: ['x'], output: ['y'], attribute }],
      input: [{ name: 'x', type: { tensorType } }],
      output: [{ name: 'y', type: { tensorType } }],
      ...graph,
    },
  }).finish();
}
