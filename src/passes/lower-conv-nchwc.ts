import { Attribute, Graph, Node, removeNode, replaceAllUsesWith, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { GraphRewriter } from './graph-rewriter';
import { topologicalSort } from './topological-sort';

/** The domain of onnxruntime's CPU kernels that work on channel-blocked (NCHWc) tensors. */
export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

/**
 * Rewrites 2-D convolutions as onnxruntime's channel-blocked CPU kernels, for CPU training sessions only.
 *
 * Why: ORT's own NCHWc layout pass (and its weight prepacking) only applies to convolutions whose weights are
 * constants, so it never runs on a training graph, where weights are inputs; without it each image becomes a
 * small im2col GEMM (3x slower on the reference CNN's 8x8 layer). The blocked Conv kernel itself accepts weights
 * computed at run time, so the reordering into its [M/B, C/B, kH, kW, B, B] layout is done in the graph.
 *
 * - Conv: ReorderInput (unless C < B, which the kernel reads as NCHW), blocked Conv (with a Relu or a Clip with
 *   constant bounds that alone reads it fused in: the autodiff's rules for both read the output, not the input),
 *   ReorderOutput.
 * - Depthwise Conv (one input and one output channel per group, as MobileNetV2's and the stride-1 input gradients
 *   of its depthwise layers): the blocked kernel's depthwise case, weights [C/B, 1, kH, kW, B]. Measured on
 *   MobileNetV2's fine-tuning update at batch 32 (alternating): 1,286 / 1,292 ms -> 1,144 / 1,194 ms.
 * - ConvTranspose with stride 1 (the input gradient of a stride-1 Conv): the same blocked Conv of the flipped,
 *   transposed weights with pads k - 1 - p.
 *
 * - A ReorderInput of a ReorderOutput (a blocked Conv whose output, once its activation is fused in, goes straight
 *   to another one: MobileNetV2's expand -> depthwise -> project) reads the blocked tensor itself instead of a copy
 *   made back and forth. The ReorderOutput stays where the backward pass reads the NCHW tensor.
 *
 * Layers that do not fit (other groupings, channel counts that are not multiples of B, strides or dilations in a
 * transposed conv) stay as they are. Guarantees: output values keep their names; the result is valid only for
 * onnxruntime's CPU provider on a machine whose block size is `blockSize` (see runtime/nchwc.ts).
 */
export function lowerConvToNchwc(model: Model, blockSize: number): number {
  const graph = model.graph;
  const b = blockSize;
  const rewriter = new Rewriter(graph);
  let lowered = 0;
  for (const node of [...graph.nodes]) {
    if (node.domain !== '' || (node.opType !== 'Conv' && node.opType !== 'ConvTranspose')) continue;
    const x = node.inputs[0];
    const w = node.inputs[1];
    const dims = w?.shape;
    if (x?.shape?.length !== 4 || dims?.length !== 4 || !dims.every((d) => typeof d === 'number')) continue;
    if ((node.attr('auto_pad', 'string') ?? 'NOTSET') !== 'NOTSET') continue;
    const [d0, d1, kh, kw] = dims as number[];
    const group = node.attr('group', 'int') ?? 1;
    // Depthwise: one input and one output channel per group (W [C, 1, kH, kW]), the blocked kernel's other case.
    const depthwise = node.opType === 'Conv' && group > 1 && d1 === 1 && d0 === group && x.shape[1] === group;
    if (group !== 1 && !depthwise) continue;
    const pads = node.attr('pads', 'ints') ?? [0, 0, 0, 0];
    if (node.opType === 'Conv') {
      // W [M, C, kH, kW]
      if (depthwise ? d0! % b !== 0 : !fits(d0!, d1!, b)) continue;
      const activation = fusableActivation(graph, node);
      const y = rewriter.blockedConv(node, x, rewriter.blockWeights(w!, d0!, d1!, kh!, kw!, b), node.inputs[2], d0!, depthwise ? group : d1!, b, {
        kernel_shape: [kh!, kw!], pads, strides: node.attr('strides', 'ints') ?? [1, 1], dilations: node.attr('dilations', 'ints') ?? [1, 1], group,
      }, activation?.attributes ?? {});
      rewriter.replace(activation?.node ?? node, y);
      // The Conv fused into the blocked Conv with its activation: its output, which only the activation read, goes too.
      if (activation !== undefined) removeNode(graph, node);
    } else {
      // W [C_in, C_out, kH, kW]: the gradient dX = conv(dY, flip(W)^T) with pads k - 1 - p.
      const unit = (name: string) => (node.attr(name, 'ints') ?? [1, 1]).every((v) => v === 1);
      const outputPadding = node.attr('output_padding', 'ints') ?? [0, 0];
      if (!unit('strides') || !unit('dilations') || outputPadding.some((p) => p !== 0) || node.inputs[2] !== undefined) continue;
      const convPads = pads.map((p, i) => (i % 2 === 0 ? kh! : kw!) - 1 - p);
      if (convPads.some((p) => p < 0) || !fits(d1!, d0!, b)) continue;
      const flipped = rewriter.flipTransposed(w!);
      const y = rewriter.blockedConv(node, x, rewriter.blockWeights(flipped, d1!, d0!, kh!, kw!, b), undefined, d1!, d0!, b, {
        kernel_shape: [kh!, kw!], pads: convPads, strides: [1, 1], dilations: [1, 1],
      }, {});
      rewriter.replace(node, y);
    }
    lowered++;
  }
  if (lowered > 0) {
    skipReorderRoundTrips(graph);
    if (!model.opsetImports.some((o) => o.domain === NCHWC_DOMAIN)) model.opsetImports.push({ domain: NCHWC_DOMAIN, version: 1 });
    topologicalSort(graph);
  }
  return lowered;
}

/** Output channels in whole blocks; input channels in whole blocks, or fewer than one block (read as NCHW). */
function fits(outChannels: number, inChannels: number, b: number): boolean {
  return outChannels % b === 0 && (inChannels % b === 0 || inChannels < b);
}

/** The blocked Conv's attributes for an activation it computes itself. */
type ActivationAttributes = { activation?: string; activation_params?: Attribute };

/**
 * The Relu, or the Clip with constant scalar bounds, that is the only reader of a Conv's output (its output is not
 * a graph output either), with the blocked Conv's attributes that compute it.
 */
function fusableActivation(graph: Graph, conv: Node): { node: Node; attributes: ActivationAttributes } | undefined {
  const y = conv.outputs[0]!;
  if (y.uses.length !== 1 || graph.outputs.includes(y)) return undefined;
  const reader = y.uses[0]!.node;
  if (reader.domain !== '') return undefined;
  if (reader.opType === 'Relu') return { node: reader, attributes: { activation: 'Relu' } };
  if (reader.opType !== 'Clip' || reader.inputs.length !== 3) return undefined;
  const [lo, hi] = [scalarConstant(graph, reader.inputs[1]), scalarConstant(graph, reader.inputs[2])];
  if (lo === undefined || hi === undefined || !(lo <= hi)) return undefined;
  return { node: reader, attributes: { activation: 'Clip', activation_params: { type: 'floats', value: [lo, hi] } } };
}

/** The value of a one-element float32 initializer. */
function scalarConstant(graph: Graph, v: Value | undefined): number | undefined {
  const data = v === undefined ? undefined : graph.initializers.get(v.name);
  return data !== undefined && data.dtype === 'float32' && data.size === 1 ? Number(data.typed()[0]) : undefined;
}

/** ReorderInput(ReorderOutput(t)) -> t: the NCHW copy in between is left to its other readers, if any. */
function skipReorderRoundTrips(graph: Graph): void {
  for (const node of [...graph.nodes]) {
    if (node.domain !== NCHWC_DOMAIN || node.opType !== 'ReorderInput') continue;
    const back = node.inputs[0]!.producer;
    if (back?.domain !== NCHWC_DOMAIN || back.opType !== 'ReorderOutput' || (back.attr('channels_last', 'int') ?? 0) !== 0) continue;
    const blocked = back.inputs[0]!;
    const copy = node.outputs[0]!;
    if (graph.outputs.includes(copy)) continue;
    replaceAllUsesWith(copy, blocked);
    removeNode(graph, node);
    if (back.outputs[0]!.uses.length === 0 && !graph.outputs.includes(back.outputs[0]!)) removeNode(graph, back);
  }
}

/** The nchwc rewrites: blocked weight layouts and the blocked Conv between its reorders. */
class Rewriter extends GraphRewriter {
  constructor(graph: Graph) {
    super(graph, 'nchwc');
  }

  /** W [M, C, kH, kW] in the kernel's blocked order, keeping its logical dims: [M/B, C/B, kH, kW, B(c), B(m)], or [M/B, C, kH, kW, B(m)] when C < B. */
  blockWeights(w: Value, m: number, c: number, kh: number, kw: number, b: number): Value {
    const base = w.name;
    const split = c < b ? this.ints([m / b, b, c, kh, kw]) : this.ints([m / b, b, c / b, b, kh, kw]);
    const grouped = this.add('Reshape', [w, split], {}, this.fresh(base));
    const perm = c < b ? [0, 2, 3, 4, 1] : [0, 2, 4, 5, 3, 1];
    const moved = this.add('Transpose', [grouped], { perm }, this.fresh(base));
    return this.add('Reshape', [moved, this.ints([m, c, kh, kw])], {}, this.fresh(base, 'float32', [m, c, kh, kw]));
  }

  /** W [C_in, C_out, kH, kW] -> [C_out, C_in, kH, kW] with both kernel axes reversed. */
  flipTransposed(w: Value): Value {
    const [cIn, cOut, kh, kw] = w.shape as number[];
    const t = this.add('Transpose', [w], { perm: [1, 0, 2, 3] }, this.fresh(w.name));
    const min = -(2 ** 53);
    return this.add('Slice', [t, this.ints([-1, -1]), this.ints([min, min]), this.ints([2, 3]), this.ints([-1, -1])], {}, this.fresh(w.name, 'float32', [cOut!, cIn!, kh!, kw!]));
  }

  blockedConv(
    node: Node, x: Value, weights: Value, bias: Value | undefined, m: number, c: number, b: number,
    attributes: { kernel_shape: number[]; pads: number[]; strides: number[]; dilations: number[]; group?: number }, activation: ActivationAttributes,
  ): Value {
    const base = node.name || node.outputs[0]!.name;
    const input = c < b ? x : this.add('ReorderInput', [x], { channels_last: 0 }, this.fresh(base), NCHWC_DOMAIN);
    const conv = this.add('Conv', [input, weights, bias], { group: 1, ...attributes, ...activation }, this.fresh(base), NCHWC_DOMAIN);
    return this.add('ReorderOutput', [conv], { channels_last: 0, channels: m }, this.fresh(base), NCHWC_DOMAIN);
  }
}
