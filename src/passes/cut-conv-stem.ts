import type { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { eliminateDeadNodes } from './eliminate-dead-nodes';

/**
 * A network's first block, Conv -> [BatchNormalization (training mode)] -> ReLU -> MaxPool 2x2, as the Node
 * trainer's native kernels run it in front of the training session (src/native/conv-stem.cc). Names are the graph's.
 */
export interface ConvStem {
  /** The data input the block reads (the session no longer does). */
  input: string;
  weight: string;
  bias: string | undefined;
  /** The batch norm between the convolution and the ReLU, where there is one. */
  batchNorm: StemBatchNorm | undefined;
  /** The pooled value: a session input after the cut. */
  pooled: string;
  /** [M, C, kH, kW]. */
  weightShape: [number, number, number, number];
  /** Top, left, bottom, right. */
  pads: [number, number, number, number];
}

interface StemBatchNorm {
  gamma: string;
  beta: string;
  runningMean: string;
  runningVar: string;
  epsilon: number;
  /** ONNX's: running = running * momentum + batch * (1 - momentum). */
  momentum: number;
}

/**
 * The first block of a forward graph (before the gradients and the batch-norm lowering are built) in the form the
 * native kernels take, and the pooled value whose gradient the session must output; undefined where the graph has
 * no such block. Required: a 4-D float graph input read by one stride-1, undilated, ungrouped Conv alone, whose
 * weight, bias and batch-norm parameters are graph inputs read by this block alone; the Conv's output read by one
 * training-mode BatchNormalization alone or by the Relu, the batch norm's output by one Relu alone, the Relu's by
 * one MaxPool with 2x2 windows, stride 2, no pads and no Indices output alone; and an even convolution output grid
 * (the windows tile it). With mode 'eval', the same block in an evaluation graph (its batch norm in inference mode):
 * a cheap check before the training graph is built again to be cut.
 */
export function findConvStem(graph: Graph, mode: 'training' | 'eval' = 'training'): { stem: ConvStem; pooled: Value } | undefined {
  for (const input of graph.inputs) {
    const stem = stemFrom(graph, input, mode === 'training' ? 1 : 0);
    if (stem !== undefined) return stem;
  }
  return undefined;
}

function stemFrom(graph: Graph, input: Value, trainingMode: number): { stem: ConvStem; pooled: Value } | undefined {
  const conv = soleReader(input, 'Conv');
  const [c, h, w] = input.shape?.slice(1) ?? [];
  if (conv === undefined || input.dtype !== 'float32' || input.shape?.length !== 4 || ![c, h, w].every((d) => typeof d === 'number')) return undefined;
  const ones = (name: string) => (conv.attr(name, 'ints') ?? [1, 1]).every((v) => v === 1);
  if ((conv.attr('group', 'int') ?? 1) !== 1 || (conv.attr('auto_pad', 'string') ?? 'NOTSET') !== 'NOTSET' || !ones('strides') || !ones('dilations')) return undefined;
  const [x, weight, bias] = conv.inputs;
  const dims = weight?.shape;
  if (x !== input || weight === undefined || dims?.length !== 4 || !dims.every((d) => typeof d === 'number') || dims[1] !== c) return undefined;
  const pads = (conv.attr('pads', 'ints') ?? [0, 0, 0, 0]) as [number, number, number, number];
  const norm = soleReader(conv.outputs[0], 'BatchNormalization');
  if (norm !== undefined && ((norm.attr('training_mode', 'int') ?? 0) !== trainingMode || norm.inputs[0] !== conv.outputs[0] || norm.inputs.length !== 5)) return undefined;
  const relu = soleReader((norm ?? conv).outputs[0], 'Relu');
  const pool = soleReader(relu?.outputs[0], 'MaxPool');
  if (pool === undefined || pool.outputs.length !== 1 || !windows2x2(pool)) return undefined;
  const params = [weight, bias, ...(norm?.inputs.slice(1) ?? [])];
  if (!params.every((p) => p === undefined || (graph.inputs.includes(p) && p.uses.length === 1))) return undefined;
  const oh = (h as number) + pads[0] + pads[2] - (dims[2] as number) + 1;
  const ow = (w as number) + pads[1] + pads[3] - (dims[3] as number) + 1;
  if (oh <= 0 || ow <= 0 || oh % 2 !== 0 || ow % 2 !== 0) return undefined;
  const pooled = pool.outputs[0]!;
  return {
    pooled,
    stem: {
      input: input.name, weight: weight.name, bias: bias?.name, batchNorm: norm && batchNormOf(norm), pooled: pooled.name,
      weightShape: dims as [number, number, number, number], pads,
    },
  };
}

function batchNormOf(norm: Node): StemBatchNorm {
  const [gamma, beta, runningMean, runningVar] = norm.inputs.slice(1).map((v) => v!.name) as [string, string, string, string];
  return { gamma, beta, runningMean, runningVar, epsilon: norm.attr('epsilon', 'float') ?? 1e-5, momentum: norm.attr('momentum', 'float') ?? 0.9 };
}

/** The one node reading `v`, where it is a standard `op` reading it once. */
function soleReader(v: Value | undefined, op: string): Node | undefined {
  const use = v?.uses.length === 1 ? v.uses[0]!.node : undefined;
  return use !== undefined && use.opType === op && use.domain === '' && use.inputs.filter((i) => i === v).length === 1 ? use : undefined;
}

function windows2x2(pool: Node): boolean {
  const same = (name: string, want: number[], fallback?: number[]) => {
    const got = pool.attr(name, 'ints') ?? fallback;
    return got !== undefined && got.length === want.length && got.every((v, i) => v === want[i]);
  };
  return same('kernel_shape', [2, 2]) && same('strides', [2, 2]) && same('pads', [0, 0, 0, 0], [0, 0, 0, 0]) && same('dilations', [1, 1], [1, 1])
    && (pool.attr('ceil_mode', 'int') ?? 0) === 0 && (pool.attr('auto_pad', 'string') ?? 'NOTSET') === 'NOTSET' && (pool.attr('storage_order', 'int') ?? 0) === 0;
}

/**
 * Cuts the stem out of a training model (in place; give it a copy) built with the pooled value's gradient as an
 * output (`<pooled><cutGradient>`): the pooled value becomes an input, the stem's gradient and running-statistics
 * outputs go, and with them every node only they needed and the inputs nothing reads any more. The session then
 * starts at the pooled value and ends at its gradient.
 */
export function cutConvStem(model: Model, stem: ConvStem, cutGradient: string): void {
  const graph = model.graph;
  const bn = stem.batchNorm;
  const params = [stem.weight, stem.bias, bn?.gamma, bn?.beta].filter((p): p is string => p !== undefined);
  const buffers = bn === undefined ? [] : [bn.runningMean, bn.runningVar];
  const dropped = new Set([...params.map((p) => `${p}_grad`), ...buffers.map((b) => `${b}_updated`)]);
  if (!graph.outputs.some((o) => o.name === `${stem.pooled}${cutGradient}`)) throw new Error(`the training graph has no output ${stem.pooled}${cutGradient}`);
  const kept = graph.outputs.filter((o) => !dropped.has(o.name));
  graph.outputs.splice(0, graph.outputs.length, ...kept);
  const pooled = graph.values.get(stem.pooled)!;
  const producer = pooled.producer!;
  producer.outputs[producer.outputs.indexOf(pooled)] = undefined;
  pooled.producer = undefined;
  graph.inputs.splice(graph.inputs.findIndex((v) => v.name === stem.input), 0, pooled);
  eliminateDeadNodes(graph);
  const unread = new Set([stem.input, ...params, ...buffers]);
  // From the node list: a lowering may leave stale uses behind (lower-batchnorm-training.ts drops the fused node).
  const stillRead = graph.nodes.flatMap((n) => n.inputs).find((v) => v !== undefined && unread.has(v.name));
  if (stillRead !== undefined) throw new Error(`the training graph still reads '${stillRead.name}' after the stem's cut`);
  graph.inputs.splice(0, graph.inputs.length, ...graph.inputs.filter((v) => !unread.has(v.name)));
}
