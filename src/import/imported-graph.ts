import type { Model } from '../ir/model';
import { defaultOpset } from '../ir/model';
import type { Dim } from '../ir/shape';
import { TensorData } from '../ir/tensor';
import { OPS } from '../ops/registry';
import { UserError } from '../util/user-error';
import { ImportFormError, OpForm, opset17Form } from './op-forms';

/** A pretrained model read for import: the nodes that compute one value from the image input, in opset-17 form. */
export interface ImportedGraph {
  source: string;
  input: { name: string; shape: readonly Dim[] | undefined };
  /** The value the module returns. */
  output: string;
  nodes: { name: string; form: OpForm; outputs: (string | undefined)[] }[];
  /** Constant tensors the nodes use, by name (float weights of int8 models already dequantized). */
  initializers: Map<string, TensorData>;
  /** What the import changed, for the summary (quantization removed, Dropout as Identity). */
  notes: string[];
}

/** A model that cannot be imported: the message names the file and what is wrong. */
export class ImportError extends UserError {}

/**
 * Takes the part of `model` that computes `output` (default: its first output) from its image input. Int8 QDQ
 * models become float models: dequantized constant weights become float initializers and activation
 * QuantizeLinear/DequantizeLinear pairs are removed.
 */
export function importGraph(model: Model, source: string, output?: string): ImportedGraph {
  const graph = model.graph;
  const opset = defaultOpset(model) ?? 17;
  const initializers = new Map(graph.initializers);
  const notes: string[] = [];
  const alias = new Map<string, string>();
  const resolve = (name: string): string => {
    let n = name;
    while (alias.has(n)) n = alias.get(n)!;
    return n;
  };

  // Int8 QDQ: fold constant DequantizeLinear into float weights, drop activation Q/DQ pairs.
  const kept = [];
  let folded = 0;
  let pairs = 0;
  const producers = new Map(graph.nodes.flatMap((n) => n.outputs.filter((v) => v !== undefined).map((v) => [v!.name, n] as const)));
  for (const node of graph.nodes) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') throw new ImportError(`${source}: node '${node.name}' is ${node.domain}.${node.opType}, outside the standard ONNX domain; deepvision imports standard ops only`);
    if (node.opType === 'DequantizeLinear') {
      const x = node.inputs[0]!.name;
      const out = node.outputs[0]!.name;
      const q = producers.get(x);
      if (initializers.has(x)) {
        initializers.set(out, dequantize(node.inputs.map((v) => (v ? initializers.get(v.name) : undefined)), node.attributes.get('axis'), `${source}: ${node.name}`));
        folded++;
        continue;
      }
      if (q?.opType === 'QuantizeLinear') {
        alias.set(out, q.inputs[0]!.name);
        pairs++;
        continue;
      }
      throw new ImportError(`${source}: DequantizeLinear '${node.name}' of a value that is neither a constant nor quantized just before; deepvision imports float models and int8 QDQ models`);
    }
    if (node.opType === 'QuantizeLinear') continue; // its DequantizeLinear is aliased to its input
    kept.push(node);
  }
  if (folded > 0) notes.push(`int8 QDQ model: ${folded} quantized weights dequantized to float32, ${pairs} activation quantize/dequantize pairs removed`);

  const inputs = graph.inputs.filter((v) => !initializers.has(v.name));
  if (inputs.length !== 1) throw new ImportError(`${source}: a backbone needs exactly one image input; this model has ${inputs.length} (${inputs.map((v) => v.name).join(', ')})`);
  const target = resolve(output ?? graph.outputs[0]?.name ?? '');
  const producedBy = new Map(kept.flatMap((n) => n.outputs.filter((v) => v !== undefined).map((v) => [v!.name, n] as const)));
  if (!producedBy.has(target)) {
    throw new ImportError(`${source}: no value named '${output ?? target}' to cut at (outputs: ${graph.outputs.map((v) => v.name).join(', ')}; \`deepvision inspect ${source}\` lists cut points)`);
  }

  // The nodes `target` depends on, in the file's (topological) order.
  const needed = new Set<(typeof kept)[number]>();
  const stack = [target];
  while (stack.length > 0) {
    const node = producedBy.get(stack.pop()!);
    if (node === undefined || needed.has(node)) continue;
    needed.add(node);
    for (const v of node.inputs) if (v !== undefined) stack.push(resolve(v.name));
  }
  const unsupported = [...new Set([...needed].map((n) => n.opType).filter((op) => !(op in OPS)))];
  if (unsupported.length > 0) throw new ImportError(`${source}: deepvision cannot import or differentiate ${unsupported.join(', ')} (cut the model before ${unsupported.length === 1 ? 'it' : 'them'} with output: or --cut)`);

  const known = (name: string) => initializers.get(resolve(name));
  const nodes = kept.filter((n) => needed.has(n)).map((node) => {
    let form: OpForm;
    try {
      form = opset17Form(node, opset, known);
    } catch (err) {
      if (err instanceof ImportFormError) throw new ImportError(`${source}: node '${node.name}' (${node.opType}, opset ${opset}): ${err.message}`);
      throw err;
    }
    if (form.note !== undefined && !notes.includes(form.note)) notes.push(form.note);
    form.inputs = form.inputs.map((i) => (typeof i === 'string' ? resolve(i) : i));
    return { name: node.name, form, outputs: node.outputs.map((v) => v?.name) };
  });
  const used = new Set(nodes.flatMap((n) => n.form.inputs.filter((i): i is string => typeof i === 'string')));
  for (const name of [...initializers.keys()]) if (!used.has(name)) initializers.delete(name);
  return { source, input: { name: inputs[0]!.name, shape: inputs[0]!.shape }, output: target, nodes, initializers, notes };
}

/** (x - zero_point) * scale, per tensor or per `axis`. */
function dequantize(inputs: (TensorData | undefined)[], axisAttr: { type: string; value: unknown } | undefined, where: string): TensorData {
  const [x, scale, zeroPoint] = inputs;
  if (x === undefined || scale === undefined) throw new ImportError(`${where}: DequantizeLinear needs constant input and scale`);
  const values = x.toNumbers();
  const scales = scale.toNumbers();
  const zeros = zeroPoint?.toNumbers() ?? [0];
  const rank = x.dims.length;
  const axis = scales.length === 1 ? 0 : ((axisAttr?.type === 'int' ? (axisAttr.value as number) : 1) + rank) % rank;
  const inner = x.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = x.dims[axis] ?? 1;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const c = scales.length === 1 ? 0 : Math.floor(i / inner) % channels;
    out[i] = (values[i]! - (zeros[c] ?? zeros[0]!)) * scales[c]!;
  }
  return TensorData.fromTyped('float32', x.dims, out);
}
