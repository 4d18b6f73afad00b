/**
 * Pretrained ONNX models as modules (nn.OnnxModule): the imported graph computes what the file computes, in any
 * opset it was written in; gradients through it match finite differences; int8 QDQ models import as float; what
 * cannot be imported is named. Backbones are generated here; the data lane adds the real MobileNetV2 and SqueezeNet.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { defineModel, F, nn, Tensor } from 'deepvision';
import { checkGradientGraph } from '../src/runtime/gradcheck';
import { GraphBuilder } from '../src/dsl/builder';
import { TensorData } from '../src/ir/tensor';
import transfer from '../graphs/transfer';
import { cutFeatures } from '../src/import/cut-acceptance';
import { findCutPoints } from '../src/import/cut-points';
import { buildModel } from '../src/model/build';
import { formatSummary } from '../src/model/summary';
import { readModelFile } from '../src/onnx/read';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { generateShapes } from '../src/data/shapes';
import { train, TrainingError } from '../src/train/trainer';
import { Rng } from '../src/util/rng';
import { dataTest, sharedFile } from './support/shared';
import { writeSmallBackbone } from './support/small-backbone';
import { trainingFeeds } from './support/training-feeds';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-onnx-module-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const rng = new Rng('onnx-module');
const randn = (dims: number[], scale = 0.3) => TensorData.float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => scale * rng.normal()));

/** A model of a backbone cut at `output`, with a linear head (or none: the backbone's output itself). */
function withHead(file: string, options: { output?: string; trainable?: boolean | string[]; head?: number; imageSize?: number } = {}) {
  const size = options.imageSize ?? 9;
  return defineModel({
    name: 'imported',
    defaults: { numClasses: options.head ?? 3 },
    inputs: () => [{ name: 'input', shape: ['batch', 3, size, size] }],
    create: (c) => new (class extends nn.Module {
      backbone = new nn.OnnxModule(file, { output: options.output, trainable: options.trainable });
      head = options.head === 0 ? undefined : new nn.Linear(this.backbone.featuresPerImage([1, 3, size, size]), c.numClasses as number);
      forward(t: Tensor): Tensor {
        const f = F.flatten(this.backbone.forward(t));
        return this.head === undefined ? f : this.head.forward(f);
      }
    })(),
  });
}

async function runFile(model: string | Uint8Array, input: Float32Array, dims: number[], output?: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model as Uint8Array);
  const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, dims) });
  await session.release();
  return out[output ?? session.outputNames[0]!]!.data as Float32Array;
}

/** An ONNX float tensor type; string dims are symbolic. */
const f32 = (dims: (number | string)[]) => ({ elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } });
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const image = (n: number, size: number) => Float32Array.from({ length: n * 3 * size * size }, () => rng.normal());

describe('nn.OnnxModule', () => {
  let backbone: string;
  beforeAll(() => {
    backbone = writeSmallBackbone(tmp);
  });

  test('the imported graph computes what the file computes, at any cut', async () => {
    const input = image(2, 9);
    for (const output of ['features', 'logits']) {
      const built = buildModel(withHead(backbone, { output, head: 0 }));
      const ours = await runFile(encodeModel(built.model), input, [2, 3, 9, 9]);
      const theirs = await runFile(fs.readFileSync(backbone), input, [2, 3, 9, 9], output);
      expect(ours.length).toBe(theirs.length);
      expect(maxDiff(ours, theirs)).toBeLessThan(1e-6);
    }
  });

  test('pretrained weights become named parameters, frozen unless asked; scalar bounds stay constants', () => {
    const frozen = buildModel(withHead(backbone));
    const names = frozen.parameters.map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['backbone.stem.weight', 'backbone.dw.weight', 'head.weight']));
    expect(names.some((n) => n.includes('six') || n.includes('zero'))).toBe(false);
    // Cut at features: the file's own classifier is not imported.
    expect(names.some((n) => n.startsWith('backbone.fc'))).toBe(false);
    expect(frozen.parameters.filter((p) => p.trainable).map((p) => p.name)).toEqual(['head.weight', 'head.bias']);
    const some = buildModel(withHead(backbone, { trainable: ['left.', 'dw.weight'] }));
    expect(some.parameters.filter((p) => p.trainable).map((p) => p.name).sort()).toEqual(['backbone.dw.weight', 'backbone.left.bias', 'backbone.left.weight', 'head.bias', 'head.weight']);
    // The pretrained values, not a fresh initialization.
    const w = frozen.values.get('backbone.stem.weight')!.typed() as Float32Array;
    expect(Array.from(w.slice(0, 3))).toEqual(Array.from((randnFirst(backbone, 'stem.weight')).slice(0, 3)));
  });

  test('gradients through every imported op (depthwise conv, Clip, Add, ceil-mode MaxPool, Concat, pooling, Gemm) match finite differences', async () => {
    const definition = withHead(backbone, { output: 'logits', trainable: true });
    const graph = buildTrainingGraph(definition, { config: { numClasses: 3 }, seed: 1 });
    expect(graph.trainable).toHaveLength(13);
    const ops = new Set(graph.model.graph.nodes.map((n) => n.opType));
    for (const op of ['Conv', 'Clip', 'Add', 'MaxPool', 'Concat', 'GlobalAveragePool', 'Gemm']) expect(ops).toContain(op);
    const feeds = trainingFeeds(graph, 9, [0, 2, 1]);
    const report = await checkGradientGraph(encodeModel(graph.model), feeds, graph.trainable, { sample: 5, largest: 3, seed: 3, eps: 1e-3 });
    if (!report.ok) console.log(report);
    expect(report.ok).toBe(true);
    expect(report.checked).toBeGreaterThan(70);
  });

  test('an opset-8 model (Clip and Pad bounds as attributes, BatchNormalization spatial, Dropout ratio) imports to opset-17 forms', async () => {
    const file = path.join(tmp, 'old.onnx');
    const t = (name: string, dims: number[], data: TensorData) => ({ name, dims, dataType: 1, rawData: data.bytes });
    fs.writeFileSync(file, onnx.ModelProto.encode({
      irVersion: 4,
      opsetImport: [{ domain: '', version: 8 }],
      graph: {
        name: 'old',
        node: [
          { name: 'pad', opType: 'Pad', input: ['x'], output: ['p'], attribute: [{ name: 'pads', type: 7, ints: [0, 0, 1, 1, 0, 0, 1, 1] }] },
          { name: 'conv', opType: 'Conv', input: ['p', 'w'], output: ['c'], attribute: [{ name: 'kernel_shape', type: 7, ints: [3, 3] }] },
          { name: 'bn', opType: 'BatchNormalization', input: ['c', 's', 'b', 'm', 'v'], output: ['n'], attribute: [{ name: 'spatial', type: 2, i: 1 }, { name: 'epsilon', type: 1, f: 1e-3 }] },
          { name: 'clip', opType: 'Clip', input: ['n'], output: ['r'], attribute: [{ name: 'min', type: 1, f: 0 }, { name: 'max', type: 1, f: 6 }] },
          { name: 'drop', opType: 'Dropout', input: ['r'], output: ['d'], attribute: [{ name: 'ratio', type: 1, f: 0.3 }] },
          { name: 'flat', opType: 'Flatten', input: ['d'], output: ['y'] },
        ],
        initializer: [t('w', [2, 3, 3, 3], randn([2, 3, 3, 3])), t('s', [2], randn([2])), t('b', [2], randn([2])), t('m', [2], randn([2])), t('v', [2], TensorData.float32([2], [0.5, 2]))],
        input: [{ name: 'x', type: { tensorType: f32(['N', 3, 4, 4]) } }],
        output: [{ name: 'y', type: { tensorType: f32(['N', 32]) } }],
      },
    }).finish());
    const built = buildModel(withHead(file, { head: 0, imageSize: 4 }));
    const module = new nn.OnnxModule(file);
    expect(module.notes).toEqual(['Dropout imported as Identity (the backbone runs as at inference)']);
    expect(built.parameters.find((p) => p.name === 'backbone.m')).toMatchObject({ buffer: true, trainable: false });
    const input = image(2, 4);
    expect(maxDiff(await runFile(encodeModel(built.model), input, [2, 3, 4, 4]), await runFile(fs.readFileSync(file), input, [2, 3, 4, 4]))).toBeLessThan(1e-5);
  });

  test('an opset-9 Slice (starts, ends, axes as attributes) imports with them as inputs', async () => {
    const file = path.join(tmp, 'slice9.onnx');
    fs.writeFileSync(file, onnx.ModelProto.encode({
      irVersion: 4,
      opsetImport: [{ domain: '', version: 9 }],
      graph: {
        name: 'slice9',
        node: [{ name: 's', opType: 'Slice', input: ['x'], output: ['y'], attribute: [
          { name: 'starts', type: 7, ints: [1, 0] }, { name: 'ends', type: 7, ints: [3, 2] }, { name: 'axes', type: 7, ints: [1, 2] },
        ] }],
        input: [{ name: 'x', type: { tensorType: f32(['N', 3, 4, 4]) } }],
        output: [{ name: 'y', type: { tensorType: f32(['N', 2, 2, 4]) } }],
      },
    }).finish());
    const built = buildModel(withHead(file, { head: 0, imageSize: 4 }));
    const input = image(2, 4);
    expect(maxDiff(await runFile(encodeModel(built.model), input, [2, 3, 4, 4]), await runFile(fs.readFileSync(file), input, [2, 3, 4, 4]))).toBe(0);
  });

  test('an int8 QDQ model imports as float: constant weights dequantized, activation quantize/dequantize pairs removed', async () => {
    const file = path.join(tmp, 'qdq.onnx');
    // int8 activations, scale 0.05.
    writeQdq(file, { xs: 0.05, xz: { dataType: 3 } });
    const module = new nn.OnnxModule(file);
    expect(module.notes[0]).toMatch(/int8 QDQ model: 1 quantized weights dequantized to float32, 1 activation quantize\/dequantize pairs replaced by the clamp to their range/);
    const built = buildModel(withHead(file, { head: 0, imageSize: 5 }));
    expect(built.model.graph.nodes.map((n) => n.opType)).not.toContain('QuantizeLinear');
    // The model summary says what the import changed.
    expect(formatSummary(built)).toMatch(/^Note: backbone: int8 QDQ model: 1 quantized weights dequantized to float32/m);
    // Equal to the quantized model up to the input's quantization step (0.05 * |weights|).
    const input = Float32Array.from(image(1, 5), (v) => Math.round(v / 0.05) * 0.05);
    expect(maxDiff(await runFile(encodeModel(built.model), input, [1, 3, 5, 5]), await runFile(fs.readFileSync(file), input, [1, 3, 5, 5]))).toBeLessThan(1e-4);
  });

  /** x -> QuantizeLinear -> DequantizeLinear -> Conv, the pair's scale and zero points and the weights' scales as given. */
  function writeQdq(file: string, o: { xs?: number; xz?: object; dqz?: object; ws?: number[]; size?: number } = {}): void {
    const size = o.size ?? 5;
    const weights = Int8Array.from({ length: 2 * 3 * 3 * 3 }, (_, i) => ((i * 37) % 255) - 127);
    const xz = { name: 'xz', dims: [], dataType: 2, int32Data: [0], ...o.xz };
    fs.writeFileSync(file, onnx.ModelProto.encode({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'qdq',
        node: [
          { name: 'qx', opType: 'QuantizeLinear', input: ['x', 'xs', 'xz'], output: ['xq'] },
          { name: 'dqx', opType: 'DequantizeLinear', input: ['xq', 'xs', o.dqz ? 'dqz' : 'xz'], output: ['xd'] },
          { name: 'dqw', opType: 'DequantizeLinear', input: ['wq', 'ws', 'wz'], output: ['w'], attribute: [{ name: 'axis', type: 2, i: 0 }] },
          { name: 'conv', opType: 'Conv', input: ['xd', 'w'], output: ['y'] },
        ],
        initializer: [
          { name: 'xs', dims: [], dataType: 1, floatData: [o.xs ?? 6 / 255] }, xz, ...(o.dqz ? [{ name: 'dqz', dims: [], ...o.dqz }] : []),
          { name: 'wq', dims: [2, 3, 3, 3], dataType: 3, rawData: new Uint8Array(weights.buffer) },
          { name: 'ws', dims: [(o.ws ?? [0.01, 0.02]).length], dataType: 1, floatData: o.ws ?? [0.01, 0.02] },
          { name: 'wz', dims: [(o.ws ?? [0, 0]).length], dataType: 3, int32Data: (o.ws ?? [0, 0]).map(() => 0) },
        ],
        input: [{ name: 'x', type: { tensorType: f32(['N', 3, size, size]) } }],
        output: [{ name: 'y', type: { tensorType: f32(['N', 2, size - 2, size - 2]) } }],
      },
    }).finish());
  }

  test('an activation quantize/dequantize pair imports as the clamp to its range, as onnxruntime computes it (a ReLU6 the quantizer dropped) (issue 24 item 4)', async () => {
    // uint8, zero point 0, scale 6/255: the pair holds [0, 6], as the ONNX zoo's int8 MobileNetV2 relies on.
    const file = path.join(tmp, 'qdq-relu6.onnx');
    writeQdq(file);
    const built = buildModel(withHead(file, { head: 0, imageSize: 5 }));
    expect(built.model.graph.nodes.map((n) => n.opType)).toContain('Clip');
    // Inputs well outside [0, 6], on the quantization grid inside it.
    const input = Float32Array.from(image(1, 5), (v) => Math.round((v * 5) / (6 / 255)) * (6 / 255));
    expect(maxDiff(await runFile(encodeModel(built.model), input, [1, 3, 5, 5]), await runFile(fs.readFileSync(file), input, [1, 3, 5, 5]))).toBeLessThan(1e-4);
  });

  test('a malformed int8 QDQ backbone: weight scales that do not fit are refused on import, a pair onnxruntime refuses is refused before training (issue 24 item 4)', async () => {
    const scales = path.join(tmp, 'qdq-bad-scales.onnx');
    writeQdq(scales, { ws: [0.01, 0.02, 0.03] });
    expect(() => new nn.OnnxModule(scales)).toThrow(/qdq-bad-scales\.onnx: dqw: DequantizeLinear has 3 scales for 2 channels \(axis 0 of \[2, 3, 3, 3\]\)/);
    // The QuantizeLinear makes int8, its DequantizeLinear reads uint8: deepvision's importer never needed the pair's
    // types, onnxruntime refuses the file. It used to train, and a NaN loss blamed the learning rate.
    const pair = path.join(tmp, 'qdq-bad-pair.onnx');
    writeQdq(pair, { xz: { dataType: 3 }, dqz: { dataType: 2, int32Data: [0] }, size: 8 });
    expect(() => new nn.OnnxModule(pair)).not.toThrow();
    const data = (count: number, seed: number) => generateShapes({ count, imageSize: 8, seed });
    const run = train({
      definition: withHead(pair, { imageSize: 8 }), train: data(16, 0), val: data(8, 1), epochs: 1, batchSize: 8,
      optimizer: { kind: 'adam' }, learningRate: 1e-3, outDir: path.join(tmp, 'bad-pair-run'), threads: 1,
    });
    await expect(run).rejects.toThrow(TrainingError);
    await expect(run).rejects.toThrow(/^onnxruntime cannot load the backbone .*qdq-bad-pair\.onnx, so deepvision will not train on it: .*DequantizeLinear/);
    expect(fs.existsSync(path.join(tmp, 'bad-pair-run', 'metrics.jsonl'))).toBe(false);
  });

  test('cut points: the pooled features the last Gemm reads, and the last feature map', () => {
    expect(findCutPoints(readModelFile(backbone), backbone)).toEqual([
      { name: 'features', shape: [1, 8], why: 'input of the last Gemm (pooled features)' },
      { name: expect.stringMatching(/Concat/), shape: [1, 8, 5, 5], why: 'last 4-D feature map' },
    ]);
  });

  test('inspect lists only cuts transfer accepts: pooled features reshaped to a run-time shape are listed before the reshape (issue 24 item 4)', () => {
    // As the ONNX zoo's int8 MobileNetV2: Reshape(pooled, Concat(Unsqueeze(Gather(Shape(pooled), 0)), [-1])) -> Gemm.
    const file = path.join(tmp, 'dynamic-reshape.onnx');
    const int64 = (name: string, dims: number[], values: number[]) => ({ name, dims, dataType: 7, int64Data: values });
    fs.writeFileSync(file, onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'dynamic-reshape',
        node: [
          { name: 'conv', opType: 'Conv', input: ['x', 'w'], output: ['map'] },
          { name: 'pool', opType: 'GlobalAveragePool', input: ['map'], output: ['pooled'] },
          { name: 'shape', opType: 'Shape', input: ['pooled'], output: ['s'] },
          { name: 'gather', opType: 'Gather', input: ['s', 'zero'], output: ['n'] },
          { name: 'unsqueeze', opType: 'Unsqueeze', input: ['n', 'axes'], output: ['n1'] },
          { name: 'concat', opType: 'Concat', input: ['n1', 'minus1'], output: ['target'], attribute: [{ name: 'axis', type: 2, i: 0 }] },
          { name: 'reshape', opType: 'Reshape', input: ['pooled', 'target'], output: ['flat'] },
          { name: 'fc', opType: 'Gemm', input: ['flat', 'fcw'], output: ['logits'], attribute: [{ name: 'transB', type: 2, i: 1 }] },
        ],
        initializer: [
          { name: 'w', dims: [2, 3, 1, 1], dataType: 1, floatData: [0.1, 0.2, 0.3, -0.1, -0.2, 0.4] },
          { name: 'fcw', dims: [3, 2], dataType: 1, floatData: [1, 2, 3, 4, 5, 6] },
          int64('zero', [], [0]), int64('axes', [1], [0]), int64('minus1', [1], [-1]),
        ],
        input: [{ name: 'x', type: { tensorType: f32(['N', 3, 4, 4]) } }],
        output: [{ name: 'logits', type: { tensorType: f32(['N', 3]) } }],
      },
    }).finish());
    const points = findCutPoints(readModelFile(file), file);
    expect(points).toEqual([
      { name: 'pooled', shape: [1, 2, 1, 1], why: 'pooled features (the last Gemm reads them through Reshape)' },
      { name: 'map', shape: [1, 2, 4, 4], why: 'last 4-D feature map' },
    ]);
    // What inspect lists, transfer takes; the reshaped value it no longer lists, transfer refuses in one line.
    const build = (output: string) => buildModel(transfer, { config: { backbone: file, output, imageSize: 4, numClasses: 3 } });
    for (const p of points) expect(build(p.name).model.graph.outputs[0]!.shape).toEqual(['batch', 3]);
    expect(() => build('flat')).toThrow(/dynamic-reshape\.onnx: the value 'flat' is \[.*\] for one image, not a fixed size, so a head cannot read it \(`deepvision inspect .*` lists cut points that work\)/);
    expect(cutFeatures([1, 2, 3])).toBe(6);
    expect(cutFeatures([1, '?', 3])).toBeUndefined();
    expect(cutFeatures([1])).toBeUndefined();
  });

  test('what cannot be imported is named: an unknown op, a missing cut value, a second input, another domain, a missing file', () => {
    const b = new GraphBuilder('two');
    const x = b.input('x', 'float32', ['N', 3, 4, 4]);
    const y = b.input('y', 'float32', ['N', 3, 4, 4]);
    b.output('z', b.run(() => F.add(x, y)));
    const two = path.join(tmp, 'two.onnx');
    fs.writeFileSync(two, encodeModel(b.toModel()));
    expect(() => new nn.OnnxModule(two)).toThrow(/two\.onnx: a backbone needs exactly one image input; this model has 2 \(x, y\)/);
    expect(() => new nn.OnnxModule(backbone, { output: 'nowhere' })).toThrow(/no value named 'nowhere' to cut at \(outputs: features, logits; `deepvision inspect .*` lists cut points\)/);
    expect(() => new nn.OnnxModule(path.join(tmp, 'missing.onnx'))).toThrow(/cannot read backbone .*missing\.onnx: ENOENT/);
    const proto = onnx.ModelProto.decode(fs.readFileSync(backbone));
    proto.graph!.node![2]!.opType = 'Hardmax';
    fs.writeFileSync(path.join(tmp, 'hardmax.onnx'), onnx.ModelProto.encode(proto).finish());
    expect(() => new nn.OnnxModule(path.join(tmp, 'hardmax.onnx'))).toThrow(/deepvision cannot import or differentiate Hardmax/);
    proto.graph!.node![2]!.opType = 'FusedConv';
    proto.graph!.node![2]!.domain = 'com.microsoft';
    proto.opsetImport!.push({ domain: 'com.microsoft', version: 1 });
    fs.writeFileSync(path.join(tmp, 'ms.onnx'), onnx.ModelProto.encode(proto).finish());
    expect(() => new nn.OnnxModule(path.join(tmp, 'ms.onnx'))).toThrow(/is com\.microsoft\.FusedConv, outside the standard ONNX domain/);
  });
});

/** An initializer's values as stored in a file. */
function randnFirst(file: string, name: string): Float32Array {
  const proto = onnx.ModelProto.decode(fs.readFileSync(file));
  const t = proto.graph!.initializer!.find((i) => i.name === name)!;
  const raw = t.rawData!;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

describe('real backbones', () => {
  const MOBILENET = 'models/mobilenetv2-7-fp32.onnx';
  const SQUEEZENET = 'models/squeezenet1.1-fp32.onnx';

  dataTest('MobileNetV2 imports (depthwise Conv, Clip, Add, pooling) and its features equal onnxruntime on the original file', [MOBILENET], async () => {
    const input = image(1, 224);
    const built = buildModel(withHead(sharedFile(MOBILENET), { output: 'features', head: 0, imageSize: 224 }));
    expect(maxDiff(await runFile(encodeModel(built.model), input, [1, 3, 224, 224]), await runFile(sharedFile(MOBILENET), input, [1, 3, 224, 224], 'features'))).toBeLessThan(1e-4);
    expect(findCutPoints(readModelFile(sharedFile(MOBILENET)), MOBILENET).map((p) => [p.name, p.shape])).toEqual([['features', [1, 1280]], ['feature_map', [1, 1280, 7, 7]]]);
  });

  dataTest('SqueezeNet imports (ceil-mode MaxPool, Concat) and equals onnxruntime on the original file', [SQUEEZENET], async () => {
    const input = image(1, 224);
    const built = buildModel(withHead(sharedFile(SQUEEZENET), { output: 'features', head: 0, imageSize: 224 }));
    expect(maxDiff(await runFile(encodeModel(built.model), input, [1, 3, 224, 224]), await runFile(sharedFile(SQUEEZENET), input, [1, 3, 224, 224], 'features'))).toBeLessThan(1e-4);
    // A convolutional classifier: the map its last Conv reads.
    expect(findCutPoints(readModelFile(sharedFile(SQUEEZENET)), SQUEEZENET).map((p) => [p.name, p.shape])).toEqual([['features', [1, 512, 13, 13]]]);
  });

  dataTest('the model zoo\'s int8 MobileNetV2: inspect lists the pooled features before the run-time Reshape (not `472`), and transfer takes every cut it lists (issue 24 item 4)', ['models/mobilenetv2-7-int8-qdq.onnx'], () => {
    const file = sharedFile('models/mobilenetv2-7-int8-qdq.onnx');
    const points = findCutPoints(readModelFile(file), file);
    expect(points.map((p) => [p.name, p.shape])).toEqual([['464_DequantizeLinear_Output', [1, 1280, 1, 1]], ['463_DequantizeLinear_Output', [1, 1280, 7, 7]]]);
    for (const p of points) expect(buildModel(transfer, { config: { backbone: file, output: p.name, numClasses: 3 } }).model.graph.outputs[0]!.shape).toEqual(['batch', 3]);
    expect(() => buildModel(transfer, { config: { backbone: file, output: '472', numClasses: 3 } })).toThrow(/the value '472' is \[.*\] for one image, not a fixed size/);
  });

  dataTest('the int8 QDQ MobileNetV2 imports as a float model that runs', ['models/mobilenetv2-7-int8-qdq.onnx'], async () => {
    const file = sharedFile('models/mobilenetv2-7-int8-qdq.onnx');
    const module = new nn.OnnxModule(file);
    expect(module.notes.join(' ')).toMatch(/int8 QDQ model: \d+ quantized weights dequantized/);
    const built = buildModel(withHead(file, { head: 0, imageSize: 224 }));
    expect(built.model.graph.nodes.map((n) => n.opType)).not.toContain('DequantizeLinear');
    const logits = await runFile(encodeModel(built.model), image(1, 224), [1, 3, 224, 224]);
    expect(logits).toHaveLength(1000);
    expect(logits.every(Number.isFinite)).toBe(true);
    // Its activation quantize/dequantize pairs clamp (the quantizer dropped the ReLU6s): imported without the clamp,
    // the logits reached 1e6 and a head trained on its features saw a loss of 1e5 (issue 24 item 4).
    expect(Math.max(...Array.from(logits, Math.abs))).toBeLessThan(50);
  });
});
