import type { Model } from '../ir/model';
import { defaultOpset } from '../ir/model';
import type { Dim } from '../ir/shape';
import { TensorData } from '../ir/tensor';
import { SHAPE_RULES } from '../ops/registry';
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
 * models become float models: dequantized constant weights become float initializers and each activation
 * QuantizeLinear/DequantizeLinear pair a Clip to the range it represents (the same values, rounding aside).
 */
export function importGraph(model: Model, source: string, output?: string): ImportedGraph {
  const graph = model.graph;
  const opset = defaultOpset(model) ?? 17;
  const initializers = new Map(graph.initializers);
  const notes: string[] = [];

  // Int8 QDQ: fold constant DequantizeLinear into float weights; an activation Q/DQ pair becomes the clamp to the
  // range it can represent (quantizers drop a ReLU or ReLU6 before a pair whose range already clamps to it).
  const kept = [];
  let folded = 0;
  let pairs = 0;
  /** Activation DequantizeLinear nodes that become a Clip of the QuantizeLinear's input. */
  const clamps = new Map<(typeof graph.nodes)[number], { input: string; low: number; high: number }>();
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
        const range = quantizedRange(q.inputs.map((v) => (v ? initializers.get(v.name) : undefined)), `${source}: ${q.name}`);
        clamps.set(node, { input: q.inputs[0]!.name, ...range });
        kept.push(node);
        pairs++;
        continue;
      }
      throw new ImportError(`${source}: DequantizeLinear '${node.name}' of a value that is neither a constant nor quantized just before; deepvision imports float models and int8 QDQ models`);
    }
    if (node.opType === 'QuantizeLinear') continue; // its DequantizeLinear becomes the clamp of its input
    kept.push(node);
  }
  if (folded > 0) notes.push(`int8 QDQ model: ${folded} quantized weights dequantized to float32, ${pairs} activation quantize/dequantize pairs replaced by the clamp to their range`);

  const inputs = graph.inputs.filter((v) => !initializers.has(v.name));
  if (inputs.length !== 1) throw new ImportError(`${source}: a backbone needs exactly one image input; this model has ${inputs.length} (${inputs.map((v) => v.name).join(', ')})`);
  const target = output ?? graph.outputs[0]?.name ?? '';
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
    const clamp = clamps.get(node);
    if (clamp !== undefined) stack.push(clamp.input);
    else for (const v of node.inputs) if (v !== undefined) stack.push(v.name);
  }
  const unsupported = [...new Set([...needed].filter((n) => !clamps.has(n)).map((n) => n.opType).filter((op) => !(op in SHAPE_RULES)))];
  if (unsupported.length > 0) throw new ImportError(`${source}: deepvision cannot import or differentiate ${unsupported.join(', ')} (cut the model before ${unsupported.length === 1 ? 'it' : 'them'} with output: or --cut)`);

  const known = (name: string) => initializers.get(name);
  const nodes = kept.filter((n) => needed.has(n)).map((node) => {
    const clamp = clamps.get(node);
    if (clamp !== undefined) {
      const form: OpForm = { opType: 'Clip', inputs: [clamp.input, TensorData.float32([], [clamp.low]), TensorData.float32([], [clamp.high])], attributes: new Map() };
      return { name: node.name, form, outputs: node.outputs.map((v) => v?.name) };
    }
    let form: OpForm;
    try {
      form = opset17Form(node, opset, known);
    } catch (err) {
      if (err instanceof ImportFormError) throw new ImportError(`${source}: node '${node.name}' (${node.opType}, opset ${opset}): ${err.message}`);
      throw err;
    }
    if (form.note !== undefined && !notes.includes(form.note)) notes.push(form.note);
    return { name: node.name, form, outputs: node.outputs.map((v) => v?.name) };
  });
  const used = new Set(nodes.flatMap((n) => n.form.inputs.filter((i): i is string => typeof i === 'string')));
  for (const name of [...initializers.keys()]) if (!used.has(name)) initializers.delete(name);
  return { source, input: { name: inputs[0]!.name, shape: inputs[0]!.shape }, output: target, nodes, initializers, notes };
}

/** The integer range of each quantized type a QuantizeLinear can produce (its zero point's type; uint8 without one). */
const QUANTIZED_RANGE: Partial<Record<string, [number, number]>> = {
  uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767],
};

/**
 * The float range a per-tensor QuantizeLinear represents, [(qmin - zero_point) * scale, (qmax - zero_point) * scale]:
 * what a Q/DQ pair computes, rounding aside. Its scale and zero point must be constant scalars of valid types.
 */
function quantizedRange(inputs: (TensorData | undefined)[], where: string): { low: number; high: number } {
  const [, scale, zeroPoint] = inputs;
  const zeroType = zeroPoint?.dtype ?? 'uint8';
  const range = QUANTIZED_RANGE[zeroType];
  if (range === undefined) throw new ImportError(`${where}: QuantizeLinear's zero point is ${zeroType}; deepvision imports 8- and 16-bit integer quantization`);
  if (scale === undefined || scale.size !== 1 || (zeroPoint !== undefined && zeroPoint.size !== 1)) {
    throw new ImportError(`${where}: QuantizeLinear of an activation needs a constant per-tensor scale and zero point (one value each)`);
  }
  const s = scale.toNumbers()[0]!;
  const z = zeroPoint?.toNumbers()[0] ?? 0;
  if (!(Number.isFinite(s) && s > 0)) throw new ImportError(`${where}: QuantizeLinear's scale is ${s}, not a positive finite number`);
  return { low: (range[0] - z) * s, high: (range[1] - z) * s };
}

/**
 * (x - zero_point) * scale, per tensor or per `axis`. A scale or zero point that does not fit x (another count,
 * another type, a value that is not finite) is refused: it would make weights NaN or garbage, and training would
 * blame the learning rate.
 */
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
  if (scales.length !== 1 && scales.length !== channels) throw new ImportError(`${where}: DequantizeLinear has ${scales.length} scales for ${channels} channels (axis ${axis} of [${x.dims.join(', ')}])`);
  if (zeroPoint !== undefined && (zeroPoint.dtype !== x.dtype || (zeros.length !== 1 && zeros.length !== scales.length))) {
    throw new ImportError(`${where}: DequantizeLinear's zero point is ${zeroPoint.dtype} [${zeroPoint.dims.join(', ')}], but the input is ${x.dtype} with ${scales.length} scale${scales.length === 1 ? '' : 's'}`);
  }
  if (!scales.every(Number.isFinite)) throw new ImportError(`${where}: DequantizeLinear has a scale that is not a finite number`);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const c = scales.length === 1 ? 0 : Math.floor(i / inner) % channels;
    out[i] = (values[i]! - (zeros[c] ?? zeros[0]!)) * scales[c]!;
  }
  return TensorData.fromTyped('float32', x.dims, out);
}
