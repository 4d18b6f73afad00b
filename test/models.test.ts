import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import mlp from '../graphs/mlp';
import { buildModel } from '../src/model/build';
import { formatSummary } from '../src/model/summary';
import { writeModelFile } from '../src/onnx/write';
import { onnxCheck } from './support/onnx-checker';
import * as R from './support/reference';
import { randn } from './support/random';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-models-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const trainable = (b: ReturnType<typeof buildModel>) => b.parameters.filter((p) => !p.buffer).reduce((n, p) => n + p.size, 0);

describe('the seed models', () => {
  test('parameter counts are exactly those of the reference study', () => {
    expect(trainable(buildModel(mlp))).toBe(1_593_374);
    expect(trainable(buildModel(cnn))).toBe(9_316_894);
    expect(trainable(buildModel(cnn, { variant: 'dropout' }))).toBe(9_316_894);
  });

  test('parameter names are hierarchical and stable, like PyTorch state_dict keys (parameters, then buffers)', () => {
    const names = buildModel(cnn).parameters.map((p) => p.name);
    expect(names.slice(0, 6)).toEqual([
      'features.0.0.weight', 'features.0.0.bias', 'features.0.1.weight', 'features.0.1.bias',
      'features.1.0.weight', 'features.1.0.bias',
    ]);
    expect(names.slice(18)).toEqual([
      'features.0.1.running_mean', 'features.0.1.running_var', 'features.1.1.running_mean', 'features.1.1.running_var',
      'features.2.1.running_mean', 'features.2.1.running_var',
    ]);
    expect(names[17]).toBe('classifier.6.bias');
    expect(buildModel(cnn, { variant: 'dropout' }).parameters.map((p) => p.name)).toEqual(names);
  });

  test('class count and input size are configurable (CIFAR-10: 10 classes at 32x32)', () => {
    const built = buildModel(cnn, { variant: 'cifar10' });
    expect(built.model.graph.inputs[0]!.shape).toEqual(['batch', 3, 32, 32]);
    expect(built.model.graph.outputs[0]!.shape).toEqual(['batch', 10]);
    const custom = buildModel(mlp, { config: { numClasses: 7, imageSize: 16 } });
    expect(custom.model.graph.outputs[0]!.shape).toEqual(['batch', 7]);
    expect(trainable(custom)).toBe(3 * 16 * 16 * 128 + 128 + 128 * 128 + 128 + 128 * 7 + 7);
  });

  test('unknown variants and config keys are refused with the allowed names', () => {
    expect(() => buildModel(cnn, { variant: 'huge' })).toThrow("model 'cnn' has no variant 'huge' (variants: dropout, cifar10)");
    expect(() => buildModel(cnn, { config: { classes: 3 } })).toThrow("model 'cnn' has no config key 'classes' (keys: numClasses, imageSize, channels, dropout)");
    expect(() => buildModel(cnn, { config: { numClasses: '3' } })).toThrow("config 'numClasses' must be a number");
  });

  test('initialization is seeded per parameter and follows PyTorch defaults', () => {
    const a = buildModel(mlp, { seed: 3 });
    const b = buildModel(mlp, { seed: 3 });
    const c = buildModel(mlp, { seed: 4 });
    const w = (m: typeof a) => m.values.get('classifier.1.weight')!.typed() as Float32Array;
    expect(Buffer.from(w(a).buffer).equals(Buffer.from(w(b).buffer))).toBe(true);
    expect(Buffer.from(w(a).buffer).equals(Buffer.from(w(c).buffer))).toBe(false);
    // Kaiming uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so std = bound / sqrt(3).
    const bound = 1 / Math.sqrt(12288);
    const values = w(a);
    const max = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const std = Math.sqrt(values.reduce((s, v) => s + v * v, 0) / values.length);
    expect(max).toBeLessThanOrEqual(bound);
    expect(max).toBeGreaterThan(bound * 0.999);
    expect(std).toBeCloseTo(bound / Math.sqrt(3), 5);
    const bn = buildModel(cnn);
    expect(Array.from(bn.values.get('features.0.1.weight')!.typed() as Float32Array).every((v) => v === 1)).toBe(true);
    expect(Array.from(bn.values.get('features.0.1.running_var')!.typed() as Float32Array).every((v) => v === 1)).toBe(true);
  });

  test('the summary lists every layer with output shapes and the exact total', () => {
    const text = formatSummary(buildModel(cnn));
    expect(text).toMatch(/Conv2d: 3-1 \(features\.0\.0\)\s+\[batch, 64, 64, 64\]\s+1,792/);
    expect(text).toMatch(/MaxPool2d: 3-12 \(features\.2\.3\)\s+\[batch, 256, 8, 8\]/);
    expect(text).toMatch(/Linear: 2-10 \(classifier\.6\)\s+\[batch, 30\]\s+30,750/);
    expect(text).toContain('Total params: 9,316,894');
  });

  test('built models (eval and train graphs) pass onnx.checker and run in onnxruntime-node', async () => {
    const builds = [
      ['mlp-eval', buildModel(mlp)],
      ['cnn-eval', buildModel(cnn, { variant: 'cifar10' })],
      ['cnn-train', buildModel(cnn, { variant: 'dropout', mode: 'train', config: { imageSize: 32 } })],
    ] as const;
    const files = builds.map(([name, built]) => {
      const file = path.join(tmp, `${name}.onnx`);
      writeModelFile(built.model, file);
      return file;
    });
    const { ok, report } = onnxCheck(files);
    expect(report).not.toMatch(/FAIL/);
    expect(ok).toBe(true);

    for (const [i, [, built]] of builds.entries()) {
      const session = await ort.InferenceSession.create(files[i]!);
      const size = Number(built.model.graph.inputs[0]!.shape![2]);
      const x = randn([3, 3, size, size], 5);
      const feeds: Record<string, ort.Tensor> = { input: new ort.Tensor('float32', Float32Array.from(x.data), x.shape) };
      // Training-mode dropout draws its mask from a noise input shaped like the dropped tensor.
      for (const v of built.model.graph.inputs.filter((i) => i.name.startsWith('dropout_noise.'))) {
        const dims = v.shape!.map((d) => (typeof d === 'number' ? d : 3));
        feeds[v.name] = new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => (i * 0.618) % 1), dims);
      }
      const out = await session.run(feeds);
      const logits = out.logits!;
      expect(logits.dims).toEqual([3, built.config.numClasses]);
      expect(Array.from(logits.data as Float32Array).every(Number.isFinite)).toBe(true);
      await session.release();
    }
  });

  test('a training graph outputs the running statistics updated as PyTorch does', async () => {
    const built = buildModel(cnn, { mode: 'train', config: { imageSize: 8, numClasses: 2 } });
    expect([...built.stateOutputs.keys()]).toEqual([
      'features.0.1.running_mean', 'features.0.1.running_var', 'features.1.1.running_mean', 'features.1.1.running_var',
      'features.2.1.running_mean', 'features.2.1.running_var',
    ]);
    const file = path.join(tmp, 'bn-train.onnx');
    writeModelFile(built.model, file);
    const x = randn([4, 3, 8, 8], 9);
    const session = await ort.InferenceSession.create(file);
    const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(x.data), x.shape) }, ['features.0.1.running_mean_updated', 'features.0.1.running_var_updated']);
    await session.release();

    // Reference: the first conv's output statistics, from the initial weights.
    const w = built.values.get('features.0.0.weight')!;
    const b = built.values.get('features.0.0.bias')!;
    const conv = R.conv2d(x, { shape: [...w.dims], data: Array.from(w.typed() as Float32Array) }, { shape: [...b.dims], data: Array.from(b.typed() as Float32Array) },
      { stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], groups: 1 });
    const { mean, variance } = R.channelStats(conv);
    const n = 4 * 8 * 8;
    const gotMean = Array.from(out['features.0.1.running_mean_updated']!.data as Float32Array);
    const gotVar = Array.from(out['features.0.1.running_var_updated']!.data as Float32Array);
    gotMean.forEach((v, c) => expect(v).toBeCloseTo(0.1 * mean.data[c]!, 5));
    // As PyTorch: the running variance is updated with the unbiased batch variance (n / (n - 1) times the biased one).
    gotVar.forEach((v, c) => expect(v).toBeCloseTo(0.9 + 0.1 * variance.data[c]! * (n / (n - 1)), 5));
  });
});
