import { Graph, Node, Value } from '../ir/graph';
import { TensorData } from '../ir/tensor';
import { toFloat16Bits } from '../util/float16';

/**
 * Stores the large float32 initializers as float16, each followed by a Cast back to float32: the file (and the
 * browser's download) halves while every execution provider still computes in float32 (onnxruntime-web's wasm
 * provider has no float16 Conv). ORT folds the Casts once when the session is created. Small tensors (biases,
 * shape constants) stay float32: they are not worth a node each. Returns the number of tensors converted.
 */
export function storeWeightsAsFloat16(graph: Graph, minElements = 256): number {
  let converted = 0;
  const casts: Node[] = [];
  for (const [name, data] of [...graph.initializers]) {
    const value = graph.values.get(name);
    if (data.dtype !== 'float32' || data.size < minElements || value === undefined || graph.inputs.includes(value)) continue;
    const source = data.typed() as Float32Array;
    const bits = new Uint16Array(source.length);
    for (let i = 0; i < source.length; i++) bits[i] = toFloat16Bits(source[i]!);
    const halfName = uniqueName(graph, `${name}.float16`);
    const half = graph.addValue(new Value(halfName, 'float16', data.dims));
    graph.initializers.set(halfName, TensorData.fromTyped('float16', data.dims, bits));
    graph.initializers.delete(name);
    const cast = new Node('Cast', uniqueNodeName(graph, `${name}.to_float32`));
    cast.attributes.set('to', { type: 'int', value: 1 });
    cast.addInput(half);
    cast.addOutput(value);
    casts.push(cast);
    converted++;
  }
  // Casts first: they read only initializers, so the graph stays topologically sorted.
  graph.nodes.unshift(...casts);
  return converted;
}

function uniqueName(graph: Graph, base: string): string {
  let name = base;
  for (let i = 1; graph.values.has(name); i++) name = `${base}_${i}`;
  return name;
}

function uniqueNodeName(graph: Graph, base: string): string {
  const taken = new Set(graph.nodes.map((n) => n.name));
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  return name;
}
