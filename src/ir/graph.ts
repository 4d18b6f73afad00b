import type { onnx } from 'onnx-proto';
import type { DType } from './dtype';
import type { Shape } from './shape';
import type { TensorData } from './tensor';

/** A node attribute, tagged with its ONNX attribute type. */
export type Attribute =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: TensorData }
  | { type: 'graph'; value: Graph }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensors'; value: TensorData[] }
  | { type: 'graphs'; value: Graph[] }
  /** Kinds deepvision does not interpret (sparse tensors, type protos, attribute references): kept as read. */
  | { type: 'opaque'; value: onnx.IAttributeProto };

/**
 * A named tensor flowing through the graph. It knows its producer and its uses, so passes can rewrite the graph
 * without searching it. Element type and shape are known for everything the DSL builds; values read from other
 * tools' files may lack them.
 */
export class Value {
  name: string;
  dtype: DType | undefined;
  shape: Shape | undefined;
  producer: Node | undefined;
  readonly uses: { node: Node; index: number }[] = [];
  docString = '';
  /** The ONNX type of a value that is not a plain tensor (sequence, map, optional, sparse), kept as read. */
  otherType: onnx.ITypeProto | undefined;

  constructor(name: string, dtype?: DType, shape?: Shape) {
    this.name = name;
    this.dtype = dtype;
    this.shape = shape;
  }
}

export class Node {
  name: string;
  readonly opType: string;
  readonly domain: string;
  /** Inputs in order; `undefined` marks an omitted optional input (an empty name in ONNX). */
  readonly inputs: (Value | undefined)[] = [];
  readonly outputs: (Value | undefined)[] = [];
  readonly attributes = new Map<string, Attribute>();
  docString = '';
  /** The DSL call that made this node and the module it was made in, for error messages and summaries. */
  origin: { op: string; scope: string } | undefined;

  constructor(opType: string, name: string, domain = '') {
    this.opType = opType;
    this.name = name;
    this.domain = domain;
  }

  addInput(value: Value | undefined): void {
    if (value !== undefined) value.uses.push({ node: this, index: this.inputs.length });
    this.inputs.push(value);
  }

  addOutput(value: Value | undefined): void {
    if (value !== undefined) value.producer = this;
    this.outputs.push(value);
  }

  attr<T extends Attribute['type']>(name: string, type: T): Extract<Attribute, { type: T }>['value'] | undefined {
    const a = this.attributes.get(name);
    if (a === undefined) return undefined;
    if (a.type !== type) throw new Error(`${this.opType} '${this.name}': attribute ${name} is ${a.type}, expected ${type}`);
    return a.value as never;
  }
}

export class Graph {
  name: string;
  docString = '';
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly nodes: Node[] = [];
  /** Constant tensors by value name (ONNX initializers). */
  readonly initializers = new Map<string, TensorData>();
  /** Every value of this graph by name: inputs, initializers, node outputs. */
  readonly values = new Map<string, Value>();
  /** Value names that carried an explicit value_info entry in the file read (kept so a re-write keeps them). */
  readonly valueInfoNames = new Set<string>();
  /** Sparse initializers and quantization annotations are not interpreted; kept as read. */
  sparseInitializers: onnx.ISparseTensorProto[] = [];
  quantizationAnnotation: onnx.ITensorAnnotation[] = [];

  constructor(name: string) {
    this.name = name;
  }

  /** Adds a value under a fresh name; throws on a clash so that two tensors never share a name. */
  addValue(value: Value): Value {
    if (this.values.has(value.name)) throw new Error(`graph '${this.name}' already has a value named '${value.name}'`);
    this.values.set(value.name, value);
    return value;
  }

  addNode(node: Node): Node {
    this.nodes.push(node);
    return node;
  }
}

/** Makes every node that reads `from` read `to` instead (graph outputs are left to the caller). */
export function replaceAllUsesWith(from: Value, to: Value): void {
  for (const use of from.uses) {
    use.node.inputs[use.index] = to;
    to.uses.push(use);
  }
  from.uses.length = 0;
}

/**
 * Removes nodes from the graph (one node, or many in one sweep of the node list): their inputs forget these uses,
 * and the outputs they still produce leave `graph.values` (an output already handed to another producer stays).
 * Whatever still reads those outputs is the caller's to rewire first.
 */
export function removeNode(graph: Graph, nodes: Node | Iterable<Node>): void {
  const doomed = new Set(nodes instanceof Node ? [nodes] : nodes);
  if (doomed.size === 0) return;
  for (const node of doomed) {
    for (const input of node.inputs) {
      if (input === undefined) continue;
      for (let i = input.uses.length - 1; i >= 0; i--) if (doomed.has(input.uses[i]!.node)) input.uses.splice(i, 1);
    }
    for (const output of node.outputs) if (output !== undefined && output.producer === node) graph.values.delete(output.name);
  }
  // Compacted in place: a spread of a large node list into splice() would overflow the stack.
  let kept = 0;
  for (const node of graph.nodes) if (!doomed.has(node)) graph.nodes[kept++] = node;
  graph.nodes.length = kept;
}
