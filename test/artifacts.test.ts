/** `build --train` artifacts are valid ONNX and usable on their own: one training step from the checkpoint. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import { writeTrainingArtifacts } from '../src/artifacts/write-artifacts';
import { readSafetensors } from '../src/io/safetensors';
import { onnxCheck } from './support/onnx-checker';

test('training, eval, optimizer and inference models plus checkpoint make one correct training step', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-artifacts-'));
  try {
    writeTrainingArtifacts(cnn, dir, { config: { imageSize: 8, numClasses: 3 }, optimizer: { kind: 'sgd', momentum: 0.9 } });
    const files = ['training_model.onnx', 'eval_model.onnx', 'optimizer_model.onnx', 'inference_model.onnx'].map((f) => path.join(dir, f));
    const { ok, report } = onnxCheck(files);
    expect(report).not.toMatch(/FAIL/);
    expect(ok).toBe(true);

    const { tensors, metadata } = readSafetensors(path.join(dir, 'checkpoint.safetensors'));
    expect(metadata['deepvision.step']).toBe('0');
    const state = new Map([...tensors].map(([n, t]) => [n, new ort.Tensor('float32', t.data as Float32Array, [...t.shape])]));
    const training = await ort.InferenceSession.create(files[0]!);
    expect(training.inputNames.slice(0, 3)).toEqual(['input', 'labels', 'features.0.0.weight']);
    expect(training.inputNames.slice(-1)).toEqual(['features.2.1.running_var']);
    expect(training.outputNames[0]).toBe('loss');
    expect(training.outputNames[1]).toBe('features.0.0.weight_grad');
    expect(training.outputNames.slice(-1)).toEqual(['features.2.1.running_var_updated']);
    const feeds: Record<string, ort.Tensor> = {
      input: new ort.Tensor('float32', Float32Array.from({ length: 2 * 3 * 64 }, (_, i) => Math.sin(i)), [2, 3, 8, 8]),
      labels: new ort.Tensor('int64', BigInt64Array.from([0n, 2n]), [2]),
    };
    for (const name of training.inputNames.slice(2)) feeds[name] = state.get(name)!;
    const out = await training.run(feeds);
    expect(Number.isFinite((out.loss!.data as Float32Array)[0])).toBe(true);

    const optimizer = await ort.InferenceSession.create(files[2]!);
    const optFeeds: Record<string, ort.Tensor> = {
      learning_rate: new ort.Tensor('float32', Float32Array.from([0.1]), [1]),
      step: new ort.Tensor('int64', BigInt64Array.from([1n]), [1]),
    };
    for (const name of optimizer.inputNames.slice(2)) {
      optFeeds[name] = name.endsWith('_grad') ? out[name]! : state.get(name) ?? state.get(`optimizer.${name}`)!;
    }
    const updated = await optimizer.run(optFeeds);
    const w = state.get('classifier.6.bias')!.data as Float32Array;
    const g = out['classifier.6.bias_grad']!.data as Float32Array;
    const w2 = updated['classifier.6.bias_updated']!.data as Float32Array;
    w.forEach((v, i) => expect(w2[i]).toBeCloseTo(v - 0.1 * g[i]!, 6)); // first SGD step: buffer = g

    const inference = await ort.InferenceSession.create(files[3]!);
    const logits = await inference.run({ input: feeds.input! });
    expect(logits.logits!.dims).toEqual([2, 3]);
    await Promise.all([training.release(), optimizer.release(), inference.release()]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
