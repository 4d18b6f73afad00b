import { Graph, Node, removeNode, Value } from '../ir/graph';
import { TensorData } from '../ir/tensor';

/**
 * Folds each inference-mode BatchNormalization into the Conv or Gemm that feeds it, when that layer's weights are
 * initializers and nothing else reads its output: y = s * (W x + b - mean) + beta, s = scale / sqrt(var + eps),
 * becomes (s W) x + (s (b - mean) + beta). One multiply-add per element less at inference and fewer nodes.
 * Guarantees: the BN's output value keeps its name and uses; unfoldable BNs are left as they are.
 */
export function foldBatchNorm(graph: Graph): number {
  let folded = 0;
  for (const bn of [...graph.nodes]) {
    if (bn.opType !== 'BatchNormalization' || bn.domain !== '' || (bn.attr('training_mode', 'int') ?? 0) !== 0) continue;
    if (bn.outputs.slice(1).some((v) => v !== undefined)) continue;
    const x = bn.inputs[0];
    const layer = x?.producer;
    if (x === undefined || layer === undefined || x.uses.length !== 1 || graph.outputs.includes(x)) continue;
    const axis = outputChannelAxis(layer);
    if (axis === undefined) continue;
    const stats = bn.inputs.slice(1, 5).map((v) => (v === undefined ? undefined : constantFloats(graph, v)));
    if (stats.some((s) => s === undefined)) continue;
    const [scale, beta, mean, variance] = stats as Float32Array[];
    const weight = constantFloats(graph, layer.inputs[1]);
    if (weight === undefined || layer.inputs[1]!.uses.length !== 1) continue;
    const channels = scale!.length;
    const eps = bn.attr('epsilon', 'float') ?? 1e-5;
    const s = Float64Array.from(scale!, (g, c) => g / Math.sqrt(variance![c]! + eps));
    const weightValue = layer.inputs[1]!;
    const dims = graph.initializers.get(weightValue.name)!.dims;
    if (dims[axis] !== channels) continue;

    const biasValue = layer.inputs[2];
    const oldBias = biasValue === undefined ? new Float32Array(channels) : constantFloats(graph, biasValue);
    if (oldBias === undefined || (biasValue !== undefined && biasValue.uses.length !== 1) || oldBias.length !== channels) continue;
    if (layer.opType === 'Gemm' && biasValue !== undefined && (layer.attr('beta', 'float') ?? 1) !== 1) continue;

    graph.initializers.set(weightValue.name, TensorData.fromTyped('float32', dims, scaleAlong(weight, dims, axis, s)));
    const bias = Float32Array.from(oldBias, (b, c) => s[c]! * (b - mean![c]!) + beta![c]!);
    if (biasValue !== undefined) {
      graph.initializers.set(biasValue.name, TensorData.fromTyped('float32', [channels], bias));
    } else {
      const name = freshName(graph, `${weightValue.name}.folded_bias`);
      const value = graph.addValue(new Value(name, 'float32', [channels]));
      graph.initializers.set(name, TensorData.fromTyped('float32', [channels], bias));
      while (layer.inputs.length < 2) layer.addInput(undefined);
      layer.addInput(value);
      if (layer.opType === 'Gemm') layer.attributes.set('beta', { type: 'float', value: 1 });
    }
    // The layer now produces the BN's output value directly.
    const y = bn.outputs[0]!;
    layer.outputs[layer.outputs.indexOf(x)] = y;
    y.producer = layer;
    graph.values.delete(x.name);
    removeNode(graph, bn);
    folded++;
  }
  return folded;
}

/** The weight axis that indexes output channels, or undefined for layers this pass does not fold into. */
function outputChannelAxis(layer: Node): number | undefined {
  if (layer.domain !== '') return undefined;
  if (layer.opType === 'Conv') return 0;
  if (layer.opType === 'Gemm' && (layer.attr('transA', 'int') ?? 0) === 0) return (layer.attr('transB', 'int') ?? 0) === 1 ? 0 : 1;
  return undefined;
}

function constantFloats(graph: Graph, v: Value | undefined): Float32Array | undefined {
  if (v === undefined) return undefined;
  const t = graph.initializers.get(v.name);
  if (t === undefined || t.dtype !== 'float32' || graph.inputs.includes(v)) return undefined;
  return Float32Array.from(t.typed() as Float32Array);
}

function scaleAlong(data: Float32Array, dims: readonly number[], axis: number, s: Float64Array): Float32Array {
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = dims[axis]!;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! * s[Math.floor(i / inner) % channels]!;
  return out;
}

function freshName(graph: Graph, base: string): string {
  let name = base;
  for (let i = 1; graph.values.has(name); i++) name = `${base}_${i}`;
  return name;
}
