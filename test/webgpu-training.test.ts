/**
 * Training on ORT's WebGPU provider (software Vulkan in CI) keeps parameters, gradients and optimizer state in GPU
 * buffers between steps and ends where the same run on the CPU ends.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import mlp from '../graphs/mlp';
import { generateShapes } from '../src/data/shapes';
import { readSafetensors } from '../src/io/safetensors';
import { train, TrainOptions } from '../src/train/trainer';

test('a short WebGPU training run keeps its state on the device and matches the CPU run', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-webgpu-train-'));
  try {
    const options = (outDir: string, executionProviders: string[]): TrainOptions => ({
      definition: mlp, config: { hidden: 16 }, train: generateShapes({ count: 96, imageSize: 8, seed: 0 }), val: generateShapes({ count: 32, imageSize: 8, seed: 1 }),
      epochs: 2, batchSize: 32, optimizer: { kind: 'adam' }, learningRate: 0.01, outDir, seed: 3, threads: 1, executionProviders,
    });
    const cpu = await train(options(path.join(tmp, 'cpu'), ['cpu']));
    const gpu = await train(options(path.join(tmp, 'gpu'), ['webgpu', 'cpu']));
    expect(gpu.tensors.get('classifier.1.weight')!.location).toBe('gpu-buffer');
    expect(gpu.tensors.get('optimizer.classifier.1.weight.exp_avg')!.location).toBe('gpu-buffer');
    const a = readSafetensors(cpu.lastCheckpoint).tensors;
    const b = readSafetensors(gpu.lastCheckpoint).tensors;
    let worst = 0;
    for (const [name, t] of a) {
      const u = b.get(name)!.data as Float32Array;
      const scale = (t.data as Float32Array).reduce((m, v) => Math.max(m, Math.abs(v)), 1e-6);
      (t.data as Float32Array).forEach((v, i) => (worst = Math.max(worst, Math.abs(v - u[i]!) / scale)));
    }
    console.log(`WebGPU vs CPU after 6 Adam steps: largest difference ${worst.toExponential(2)} of each tensor's largest magnitude`);
    expect(worst).toBeLessThan(1e-3);
    expect(gpu.history[1]!.valLoss).toBeCloseTo(cpu.history[1]!.valLoss, 3);
    // The training loss, summed on the GPU and read back every few updates, gives the CPU's epoch means.
    for (const epoch of [0, 1]) expect(gpu.history[epoch]!.trainLoss).toBeCloseTo(cpu.history[epoch]!.trainLoss, 3);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}, 300000);

test('on WebGPU a NaN loss, read back every few updates, still stops training with a clear message', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-webgpu-nan-'));
  try {
    const run = train({
      definition: mlp, config: { hidden: 16 }, train: generateShapes({ count: 96, imageSize: 8, seed: 0 }), val: generateShapes({ count: 32, imageSize: 8, seed: 1 }),
      epochs: 2, batchSize: 8, optimizer: { kind: 'sgd' }, learningRate: 1e30, outDir: tmp, seed: 3, threads: 1, executionProviders: ['webgpu', 'cpu'],
    });
    await expect(run).rejects.toThrow(/the loss became (NaN|Infinity|-Infinity) at epoch 1, batch(es)? [\d-]+ .*training stopped\. Checkpoints already written are untouched \(none yet\)/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}, 300000);
