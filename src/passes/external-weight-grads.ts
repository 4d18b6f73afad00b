import { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { eliminateDeadNodes } from './eliminate-dead-nodes';

/**
 * A convolution's weight gradient left to the caller: the training session outputs the convolution's input and
 * the gradient of its output, and the Node trainer's native kernel computes dW from them: [C, 1, kH, kW] for a
 * depthwise convolution, [M, C, kH, kW] for a dense one (group 1).
 */
export interface WeightGradRecipe {
  kind: 'depthwise' | 'dense';
  /** The parameter (the session no longer outputs `<param>_grad`). */
  param: string;
  /** Session output holding x [N, C, H, W], the convolution's input. */
  input: string;
  /** Session output holding dY [N, M, OH, OW]. */
  outputGrad: string;
  kernel: [number, number];
  strides: [number, number];
  /** Top, left, bottom, right. */
  pads: [number, number, number, number];
  dilations: [number, number];
}

/**
 * How many times the floats that leave the session (x and dY; a graph input too, copied by an Identity) a dense convolution's
 * im2col must hold for its weight gradient to leave the session. Measured on the reference CNN (in alternation,
 * 2 threads): its 3x3 layers from 32 to 64 and 64 to 128 channels (ratio 3) cost 7.5 ms natively against about
 * 13 ms in the session; the first layer (3 to 32 channels, ratio 0.77) cost more natively than it saved, as its
 * 8 MB dY crosses to JavaScript.
 */
const MIN_IM2COL_PER_CROSSING = 3;

type Found = { x: Value; dy: Value; geometry: Omit<WeightGradRecipe, 'param' | 'input' | 'outputGrad'> };

/**
 * Rewrites a training graph (in place; give it a copy) so that each convolution weight gradient the autodiff built
 * in one of two forms (src/autodiff/rules/conv.ts) is no longer computed in the session:
 * - depthwise (depthwiseBackpropFilter): an im2col of all N*C planes by a one-hot Conv, one product per plane, a
 *   sum over the images;
 * - dense, group 1, not pointwise (convBackpropFilter): a channel-major im2col by a one-hot 3-D Conv, dY
 *   transposed, one GEMM.
 * The output `<param>_grad` is replaced by the im2col's input x and the product's dY, and the nodes only it needed
 * are removed. In standard ONNX the im2col writes the input kH*kW times over (a fifth of MobileNetV2's fine-tuning
 * step, an eighth of the reference CNN's); the native kernels read x and dY once. Only the exact forms the rule
 * emits are matched; anything else stays in the graph. Returns the recipes for the gradients taken out.
 */
export function externalizeWeightGrads(model: Model, options: DenseOptions = {}): WeightGradRecipe[] {
  const graph = model.graph;
  const recipes: WeightGradRecipe[] = [];
  for (const out of [...graph.outputs]) {
    if (!out.name.endsWith('_grad')) continue;
    const found = weightGradOf(graph, out, options);
    if (found === undefined) continue;
    const param = paramOf(out);
    const kind = found.geometry.kind;
    const input = exposed(graph, found.x, `${param}_grad.${kind}_input`);
    const outputGrad = exposed(graph, found.dy, `${param}_grad.${kind}_output_grad`);
    graph.outputs.splice(graph.outputs.indexOf(out), 1, input, outputGrad);
    recipes.push({ param, input: input.name, outputGrad: outputGrad.name, ...found.geometry });
  }
  if (recipes.length > 0) eliminateDeadNodes(graph);
  return recipes;
}

/** Whether externalizeWeightGrads would take any gradient out of `model` (without changing it). */
export function hasExternalWeightGrads(model: Model, options: DenseOptions = {}): boolean {
  return model.graph.outputs.some((o) => o.name.endsWith('_grad') && weightGradOf(model.graph, o, options) !== undefined);
}

interface DenseOptions {
  /** Overrides MIN_IM2COL_PER_CROSSING (tests take every dense gradient out with 0). */
  minIm2colPerCrossing?: number;
}

function weightGradOf(graph: Graph, grad: Value, options: DenseOptions): Found | undefined {
  const depthwise = depthwiseGradOf(graph, grad);
  if (depthwise !== undefined) return depthwise;
  // The pattern first: the batch-norm check scans the graph.
  const dense = denseGradOf(graph, grad, options.minIm2colPerCrossing ?? MIN_IM2COL_PER_CROSSING);
  return dense !== undefined && !beforeBatchNorm(graph, paramOf(grad)) ? dense : undefined;
}

function paramOf(grad: Value): string {
  return grad.name.slice(0, -'_grad'.length);
}

/**
 * Whether the convolution of weight `param` feeds a batch normalization. Its native dense gradient is left out:
 * batch normalization amplifies the last-bit differences of another summation order from update to update (the
 * ResNet of the trainer's tests: 1e-7 for five updates, 3e-4 after eight, 2e-2 after ten), so the fast path could no
 * longer be held to the portable one, and on the seed CNN, the benchmark's model with batch norms, it gained little
 * (595 against 605 ms per update, means of 4 alternating pairs that ranged from 6 % slower to 7 % faster).
 */
function beforeBatchNorm(graph: Graph, param: string): boolean {
  const conv = graph.nodes.find((n) => n.opType === 'Conv' && n.inputs[1]?.name === param);
  const out = conv?.outputs[0];
  return out !== undefined && graph.nodes.some((n) => n.opType === 'BatchNormalization' && n.inputs[0] === out);
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
function depthwiseGradOf(graph: Graph, grad: Value): Found | undefined {
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
  return { x, dy, geometry: { kind: 'depthwise', kernel: kernel as [number, number], strides: pair('strides', 1), pads, dilations: pair('dilations', 1) } };
}

/**
 * x, dY and the geometry where `grad` is Transpose(Reshape(MatMul(Reshape(Conv3d(Reshape(Transpose(x)), one-hot)),
 * Transpose(Reshape(Transpose(dY)))))) as convBackpropFilter builds it for a dense convolution, with x [N, C, H, W]
 * and dY [N, M, OH, OW] 4-D floats.
 */
function denseGradOf(graph: Graph, grad: Value, minIm2colPerCrossing: number): Found | undefined {
  const last = only(grad, 'Transpose');
  const matmul = only(only(last?.inputs[0], 'Reshape')?.inputs[0], 'MatMul');
  const conv = only(only(matmul?.inputs[0], 'Reshape')?.inputs[0], 'Conv');
  const xT = only(only(conv?.inputs[0], 'Reshape')?.inputs[0], 'Transpose');
  const dyT = only(only(only(matmul?.inputs[1], 'Transpose')?.inputs[0], 'Reshape')?.inputs[0], 'Transpose');
  const x = xT?.inputs[0];
  const dy = dyT?.inputs[0];
  if (last === undefined || conv === undefined || x === undefined || dy === undefined || conv.inputs.length !== 2) return undefined;
  const nchwToCnhw = (n: Node) => sameInts(n.attr('perm', 'ints'), [1, 0, 2, 3]);
  if (!sameInts(last.attr('perm', 'ints'), [3, 0, 1, 2]) || !nchwToCnhw(xT!) || !nchwToCnhw(dyT!)) return undefined;
  const kernel3d = conv.attr('kernel_shape', 'ints');
  const weight = graph.initializers.get(conv.inputs[1]!.name);
  if (kernel3d?.length !== 3 || kernel3d[0] !== 1 || weight === undefined) return undefined;
  const kernel = kernel3d.slice(1) as [number, number];
  const planar = weight.dims.length === 5 && weight.dims[2] === 1 ? [weight.dims[0]!, weight.dims[1]!, ...weight.dims.slice(3)] : [];
  if (!isOneHot(planar, weight.toNumbers(), kernel)) return undefined;
  if ((conv.attr('group', 'int') ?? 1) !== 1 || (conv.attr('auto_pad', 'string') ?? 'NOTSET') !== 'NOTSET') return undefined;
  const pads3d = conv.attr('pads', 'ints') ?? [0, 0, 0, 0, 0, 0];
  const strides3d = conv.attr('strides', 'ints') ?? [1, 1, 1];
  const dilations3d = conv.attr('dilations', 'ints') ?? [1, 1, 1];
  if (pads3d.length !== 6 || pads3d[0] !== 0 || pads3d[3] !== 0 || strides3d[0] !== 1 || dilations3d[0] !== 1) return undefined;
  // A pointwise convolution's im2col is x itself: the graph's GEMM has nothing to save.
  const pointwise = kernel[0] === 1 && kernel[1] === 1 && [...pads3d, ...strides3d, ...dilations3d].every((v, i) => v === (i < 6 ? 0 : 1));
  const [c, h, w] = x.shape?.slice(1) ?? [];
  const [m, oh, ow] = dy.shape?.slice(1) ?? [];
  if (pointwise) return undefined;
  // The native kernel needs x and dY as session outputs, and each output costs about 0.3 ms per MB to cross into
  // JavaScript (measured): worth it only where the im2col it saves is several times larger.
  const im2col = kernel[0] * kernel[1] * (c as number) * (oh as number) * (ow as number);
  const crossing = (c as number) * (h as number) * (w as number) + (m as number) * (oh as number) * (ow as number);
  if (im2col < minIm2colPerCrossing * crossing) return undefined;
  const floats4d = [x, dy].every((v) => v.dtype === 'float32' && v.shape?.length === 4);
  if (!floats4d || ![c, h, w, m, oh, ow].every((d) => typeof d === 'number')) return undefined;
  return {
    x, dy, geometry: {
      kind: 'dense', kernel, strides: strides3d.slice(1) as [number, number], dilations: dilations3d.slice(1) as [number, number],
      pads: [pads3d[1]!, pads3d[2]!, pads3d[4]!, pads3d[5]!],
    },
  };
}

/** The producer of `v` where it is a standard `op` with one output. */
function only(v: Value | undefined, op: string): Node | undefined {
  const n = v?.producer;
  return n !== undefined && n.opType === op && n.domain === '' && n.outputs.length === 1 ? n : undefined;
}

function sameInts(a: readonly number[] | undefined, b: readonly number[]): boolean {
  return a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A [kH*kW, 1, kH, kW] kernel whose plane k is 1 at offset k and 0 elsewhere (the im2col's; a 3-D one without its depth 1). */
function isOneHot(dims: readonly number[], values: number[], kernel: readonly number[]): boolean {
  const k = kernel[0]! * kernel[1]!;
  if (dims.length !== 4 || dims[0] !== k || dims[1] !== 1 || dims[2] !== kernel[0] || dims[3] !== kernel[1]) return false;
  return values.every((v, i) => v === (Math.floor(i / k) === i % k ? 1 : 0));
}
