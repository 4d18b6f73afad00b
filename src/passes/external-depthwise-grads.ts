import { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { eliminateDeadNodes } from './eliminate-dead-nodes';

/**
 * A depthwise convolution's weight gradient left to the caller: the training session outputs the convolution's
 * input and the gradient of its output, and the Node trainer's native kernel computes dW [C, 1, kH, kW] from them.
 */
export interface DepthwiseGradRecipe {
  /** The parameter (the session no longer outputs `<param>_grad`). */
  param: string;
  /** Session output holding x [N, C, H, W], the convolution's input. */
  input: string;
  /** Session output holding dY [N, C, OH, OW]. */
  outputGrad: string;
  kernel: [number, number];
  strides: [number, number];
  /** Top, left, bottom, right. */
  pads: [number, number, number, number];
  dilations: [number, number];
}

/**
 * Rewrites a training graph (in place; give it a copy) so that each depthwise weight gradient the autodiff built
 * (src/autodiff/rules/conv.ts, depthwiseBackpropFilter: an im2col of all N*C planes by a one-hot Conv, one product
 * per plane, a sum over the images) is no longer computed in the session: the output `<param>_grad` is replaced
 * by the im2col's input x and the product's dY, and the nodes only it needed are removed. In standard ONNX that
 * im2col writes the input kH*kW times over (a fifth of MobileNetV2's fine-tuning step); the native kernel reads x
 * and dY once. Only the exact form the rule emits is matched; anything else stays in the graph. Returns the
 * recipes for the gradients taken out.
 */
export function externalizeDepthwiseGrads(model: Model): DepthwiseGradRecipe[] {
  const graph = model.graph;
  const recipes: DepthwiseGradRecipe[] = [];
  for (const out of [...graph.outputs]) {
    if (!out.name.endsWith('_grad')) continue;
    const found = depthwiseGradOf(graph, out);
    if (found === undefined) continue;
    const param = out.name.slice(0, -'_grad'.length);
    const input = exposed(graph, found.x, `${param}_grad.depthwise_input`);
    const outputGrad = exposed(graph, found.dy, `${param}_grad.depthwise_output_grad`);
    graph.outputs.splice(graph.outputs.indexOf(out), 1, input, outputGrad);
    recipes.push({ param, input: input.name, outputGrad: outputGrad.name, ...found.geometry });
  }
  if (recipes.length > 0) eliminateDeadNodes(graph);
  return recipes;
}

/** Whether externalizeDepthwiseGrads would take any gradient out of `model` (without changing it). */
export function hasDepthwiseGrads(model: Model): boolean {
  return model.graph.outputs.some((o) => o.name.endsWith('_grad') && depthwiseGradOf(model.graph, o) !== undefined);
}

/** `value` as a graph output: itself where it has no other output role, else an Identity under `name`. */
function exposed(graph: Graph, value: Value, name: string): Value {
  if (!graph.outputs.includes(value) && !graph.inputs.includes(value) && !graph.initializers.has(value.name)) return value;
  const copy = graph.addValue(new Value(name, value.dtype, value.shape));
  const node = new Node('Identity', name);
  node.addInput(value);
  node.addOutput(copy);
  graph.addNode(node);
  return copy;
}

/**
 * x, dY and the geometry where `grad` is Reshape(ReduceSum(Reshape(MatMul(Reshape(Conv(Reshape(x), one-hot)),
 * Reshape(dY))))) as depthwiseBackpropFilter builds it, with x [N, C, H, W] and dY [N, C, OH, OW] 4-D floats.
 */
function depthwiseGradOf(graph: Graph, grad: Value): { x: Value; dy: Value; geometry: Omit<DepthwiseGradRecipe, 'param' | 'input' | 'outputGrad'> } | undefined {
  const only = (v: Value | undefined, op: string): Node | undefined => {
    const n = v?.producer;
    return n !== undefined && n.opType === op && n.domain === '' && n.outputs.length === 1 ? n : undefined;
  };
  const sum = only(only(grad, 'Reshape')?.inputs[0], 'ReduceSum');
  const matmul = only(only(sum?.inputs[0], 'Reshape')?.inputs[0], 'MatMul');
  const conv = only(only(matmul?.inputs[0], 'Reshape')?.inputs[0], 'Conv');
  const x = only(conv?.inputs[0], 'Reshape')?.inputs[0];
  const dy = only(matmul?.inputs[1], 'Reshape')?.inputs[0];
  if (conv === undefined || x === undefined || dy === undefined || conv.inputs.length !== 2) return undefined;
  const kernel = conv.attr('kernel_shape', 'ints');
  const weight = graph.initializers.get(conv.inputs[1]!.name);
  if (kernel?.length !== 2 || weight === undefined || !isOneHot(weight.dims, weight.toNumbers(), kernel)) return undefined;
  if ((conv.attr('group', 'int') ?? 1) !== 1 || (conv.attr('auto_pad', 'string') ?? 'NOTSET') !== 'NOTSET') return undefined;
  const [c, h, w] = x.shape?.slice(1) ?? [];
  const [dc, oh, ow] = dy.shape?.slice(1) ?? [];
  const floats4d = [x, dy].every((v) => v.dtype === 'float32' && v.shape?.length === 4);
  if (!floats4d || ![c, h, w, oh, ow].every((d) => typeof d === 'number') || dc !== c) return undefined;
  const pair = (name: string, fallback: number) => (conv.attr(name, 'ints') ?? [fallback, fallback]) as [number, number];
  const pads = (conv.attr('pads', 'ints') ?? [0, 0, 0, 0]) as [number, number, number, number];
  return { x, dy, geometry: { kernel: kernel as [number, number], strides: pair('strides', 1), pads, dilations: pair('dilations', 1) } };
}

/** A [kH*kW, 1, kH, kW] kernel whose plane k is 1 at offset k and 0 elsewhere (the im2col's). */
function isOneHot(dims: readonly number[], values: number[], kernel: readonly number[]): boolean {
  const k = kernel[0]! * kernel[1]!;
  if (dims.length !== 4 || dims[0] !== k || dims[1] !== 1 || dims[2] !== kernel[0] || dims[3] !== kernel[1]) return false;
  return values.every((v, i) => v === (Math.floor(i / k) === i % k ? 1 : 0));
}
