/**
 * The training graph as the trainer runs it on the CPU provider (gradient rules' CPU formulations, then the
 * blocked-convolution lowering) computes the loss, gradients and state of the portable graph that the artifacts,
 * the GPU providers and the browser use.
 */
import * as ort from 'onnxruntime-node';
import resnet from '../graphs/resnet';
import referenceCnn from '../graphs/reference-cnn';
import type { ModelDefinition } from '../src/model/definition';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { modelForCpu } from '../src/runtime/nchwc';
import { expectSameOutputs } from './support/compare-outputs';
import { trainingFeeds } from './support/training-feeds';

async function compare(definition: ModelDefinition, config: Record<string, number>, labels: number[]): Promise<string[]> {
  const portable = buildTrainingGraph(definition, { config, seed: 2 });
  const cpu = buildTrainingGraph(definition, { config, seed: 2, gradientTarget: 'cpu' });
  const feeds = trainingFeeds(portable, config.imageSize!, labels);
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'extended' };
  const expected = await (await ort.InferenceSession.create(encodeModel(portable.model), options)).run(feeds);
  const actual = await (await ort.InferenceSession.create((await modelForCpu(cpu.model)).bytes, options)).run(feeds);
  expectSameOutputs(actual, expected);
  return cpu.model.graph.nodes.filter((n) => n.opType === 'Conv' && n.inputs[0]?.shape?.length === 5).map((n) => n.name);
}

test('reference CNN: the weight gradients\' im2col is a grouped 3-D convolution on the CPU; loss and gradients unchanged', async () => {
  const im2colConvs = await compare(referenceCnn, { imageSize: 32, numClasses: 10 }, [0, 3, 9, 1, 4, 4, 7, 2]);
  expect(im2colConvs).toHaveLength(3);
});

test('ResNet (strided and 1x1 convolutions, batch norm): loss, gradients and running statistics unchanged', async () => {
  const im2colConvs = await compare(resnet, { imageSize: 16, numClasses: 3, width: 16 }, [0, 2, 1, 2]);
  expect(im2colConvs.length).toBeGreaterThanOrEqual(7);
});

test('the portable graph has no 3-D convolution (the WebGPU provider rejects grouped ones)', () => {
  const graph = buildTrainingGraph(referenceCnn, { config: { imageSize: 32, numClasses: 10 } });
  expect(graph.model.graph.nodes.filter((n) => n.opType === 'Conv' && n.inputs[0]?.shape?.length === 5)).toHaveLength(0);
});
