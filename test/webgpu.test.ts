/**
 * The same gradient graph on ORT's WebGPU provider (Mesa's software Vulkan in CI, installed by
 * scripts/install-system-deps.sh) gives the CPU provider's gradients. Ops without a WebGPU kernel fall back to
 * CPU; the test prints which and fails if a heavy op (convolution, pooling, GEMM) is among them.
 */
import cnn from '../graphs/cnn';
import { opPlacement } from '../src/runtime/placement';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { modelForWebGpu } from '../src/runtime/webgpu-model';
import { trainingFeeds } from './support/training-feeds';

test('WebGPU computes the seed CNN\'s loss and gradients as the CPU provider does', async () => {
  const graph = buildTrainingGraph(cnn, { config: { imageSize: 8, numClasses: 3 }, seed: 1 });
  const bytes = encodeModel(graph.model);
  const feeds = trainingFeeds(graph, 8, [0, 2, 1, 2]);

  const cpu = await opPlacement(bytes, feeds, ['cpu']);
  let gpu;
  try {
    // As the trainer runs it there: LogSoftmax rewritten (the provider has no kernel for it).
    gpu = await opPlacement(modelForWebGpu(graph.model), feeds, ['webgpu']);
  } catch (err) {
    throw new Error(`the WebGPU provider could not run (${(err as Error).message}); on a machine without a GPU install Mesa's Vulkan driver: bash scripts/install-system-deps.sh`);
  }
  const fallback = [...(gpu.byProvider.get('CPUExecutionProvider') ?? [])].sort();
  console.log(`ops that fell back to CPU under WebGPU: ${fallback.join(', ') || 'none'}`);
  expect(gpu.byProvider.get('WebGpuExecutionProvider')?.size ?? 0).toBeGreaterThan(20);
  // Only ops on host-side inputs (labels, shapes) may fall back: an op on a tensor computed on the GPU would send it
  // to the host and back in mid-step.
  for (const heavy of ['Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'Gemm', 'MatMul', 'BatchNormalization', 'Resize', 'LogSoftmax', 'Exp', 'Log', 'ReduceMax']) {
    expect(fallback).not.toContain(heavy);
  }

  let worstOverall = 0;
  const names = ['loss', ...graph.trainable.map((n) => `${n}_grad`), ...graph.stateOutputs.values()];
  for (const name of names) {
    const a = cpu.outputs[name]!.data as Float32Array;
    const b = gpu.outputs[name]!.data as Float32Array;
    const scale = a.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-3);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / scale);
    worstOverall = Math.max(worstOverall, worst);
    if (worst > 1e-4) throw new Error(`${name}: WebGPU differs from CPU by ${worst.toExponential(2)} of the largest magnitude`);
  }
  console.log(`largest WebGPU/CPU difference over loss, gradients and state: ${worstOverall.toExponential(2)} of each tensor's largest magnitude`);
});
