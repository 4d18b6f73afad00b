import { Attribute, Graph, Node, removeNode, Value } from '../ir/graph';
import { TensorData } from '../ir/tensor';

/**
 * The edits that lowering passes share: add nodes and int64 constants under fresh names (`<base>/<tag>_<n>`), make
 * a new node produce an existing value (so that its readers and graph outputs keep their names) and drop the old one.
 */
export class GraphRewriter {
  private count = 0;

  constructor(protected readonly graph: Graph, private readonly tag: string) {}

  protected fresh(base: string, dtype: Value['dtype'] = 'float32', shape?: Value['shape']): Value {
    let name: string;
    do name = `${base}/${this.tag}_${this.count++}`; while (this.graph.values.has(name));
    return this.graph.addValue(new Value(name, dtype, shape));
  }

  protected ints(values: number[]): Value {
    const v = this.fresh(`${this.tag}_shape`, 'int64', [values.length]);
    this.graph.initializers.set(v.name, TensorData.int64([values.length], values));
    return v;
  }

  /** Numbers and arrays of them become int attributes; pass an Attribute for any other type. */
  protected add(opType: string, inputs: (Value | undefined)[], attributes: Record<string, number | number[] | string | Attribute>, output: Value, domain = ''): Value {
    const node = new Node(opType, output.name, domain);
    for (const input of inputs) node.addInput(input);
    node.addOutput(output);
    for (const [key, value] of Object.entries(attributes)) {
      node.attributes.set(key, typeof value === 'string' ? { type: 'string', value } : Array.isArray(value) ? { type: 'ints', value } : typeof value === 'number' ? { type: 'int', value } : value);
    }
    this.graph.addNode(node);
    return output;
  }

  /** Makes the node that produced `fresh` produce `old`'s value instead, and drops `old`'s producer. */
  replace(oldProducer: Node, fresh: Value): void {
    const old = oldProducer.outputs[0]!;
    const producer = fresh.producer!;
    producer.outputs[producer.outputs.indexOf(fresh)] = old;
    old.producer = producer;
    this.graph.values.delete(fresh.name);
    removeNode(this.graph, oldProducer);
  }
}
