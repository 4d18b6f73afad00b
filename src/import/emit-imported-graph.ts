import type { GraphBuilder, Tensor } from '../dsl/builder';
import type { AttributeValue } from '../ir/attribute';
import type { TensorData } from '../ir/tensor';
import type { OpType } from '../ops/registry';
import type { ImportedGraph } from './imported-graph';

/**
 * Adds the nodes of an imported graph to `b`, reading `x` as its image input; `parameter` gives the tensor bound to
 * an initializer that is a parameter (others become constants). Returns every value by its name in the file.
 */
export function emitImportedGraph(b: GraphBuilder, g: ImportedGraph, x: Tensor, parameter: (initializer: string) => Tensor | undefined): Map<string, Tensor> {
  const values = new Map<string, Tensor>([[g.input.name, x]]);
  const constants = new Map<TensorData, Tensor>();
  const operand = (input: string | TensorData | undefined): Tensor | undefined => {
    if (input === undefined) return undefined;
    if (typeof input !== 'string') {
      if (!constants.has(input)) constants.set(input, b.constant(input));
      return constants.get(input);
    }
    const known = values.get(input);
    if (known !== undefined) return known;
    const t = parameter(input) ?? b.constant(g.initializers.get(input)!);
    values.set(input, t);
    return t;
  };
  for (const node of g.nodes) {
    const { form } = node;
    const count = Math.max(1, node.outputs.reduce((n, o, i) => (o !== undefined ? i + 1 : n), 0));
    const attributes: Record<string, AttributeValue> = Object.fromEntries(form.attributes);
    const outputs = b.emit(form.opType as OpType, form.inputs.map(operand), attributes, { op: `onnx ${form.opType} '${node.name}'`, outputs: count });
    node.outputs.forEach((name, i) => name !== undefined && values.set(name, outputs[i]!));
  }
  return values;
}
