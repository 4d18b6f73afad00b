import { GraphBuilder } from '../dsl/builder';
import type { Model } from '../ir/model';
import type { Dim } from '../ir/shape';
import { cutFeatures } from './cut-acceptance';
import { emitImportedGraph } from './emit-imported-graph';
import { importGraph } from './imported-graph';

/**
 * Ops the classifier may read the pooled features through: reshapes, and the Clip an int8 model's quantize/dequantize
 * pair imports as (the clamp to its range, which the pooled features already had).
 */
const RESHAPES = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Clip']);

/** A value of a pretrained model worth cutting at for transfer learning, with its shape for one image. */
export interface CutPoint {
  name: string;
  shape: Dim[];
  why: string;
}

/**
 * Good places to cut a pretrained classifier for a new head: the input of its last Gemm/MatMul (the pooled feature
 * vector) and its last 4-D feature map (for spatial heads such as attention); a graph output that merely renames
 * one of them (an Identity) is named instead. Only values transfer accepts are listed (cut-acceptance.ts). Throws
 * what the import throws when the model cannot be imported.
 */
export function findCutPoints(model: Model, source: string): CutPoint[] {
  const g = model.graph;
  // The output that needs the most of the model (the classifier's logits, usually).
  const imported = g.outputs.map((v) => importGraph(model, source, v.name)).sort((a, b) => b.nodes.length - a.nodes.length)[0]
    ?? importGraph(model, source);
  const b = new GraphBuilder('cut-points');
  const declared = imported.input.shape ?? [];
  const x = b.input('input', 'float32', declared.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 1 : 224)));
  const values = b.run(() => emitImportedGraph(b, imported, x, () => undefined));
  // A graph output that is an Identity of a value names it better (`features` rather than `Flatten_103`).
  const alias = new Map<string, string>();
  for (const n of g.nodes) {
    const out = n.outputs[0]?.name;
    if (n.opType === 'Identity' && out !== undefined && g.outputs.some((v) => v.name === out)) alias.set(n.inputs[0]!.name, out);
  }
  const named = (name: string) => alias.get(name) ?? name;
  const accepted = (name: string) => {
    const shape = values.get(name)?.shape;
    return shape !== undefined && cutFeatures(shape) !== undefined;
  };
  const producers = new Map(imported.nodes.flatMap((n) => n.outputs.filter((o): o is string => o !== undefined).map((o) => [o, n] as const)));
  const points: CutPoint[] = [];
  const last = [...imported.nodes].reverse();
  const classifier = last.find((n) => n.form.opType === 'Gemm' || n.form.opType === 'MatMul');
  const features = classifier?.form.inputs[0];
  if (typeof features === 'string' && values.has(features)) {
    // Transfer refuses a value without a fixed size per image (the ONNX zoo's int8 MobileNetV2 reshapes its pooled
    // features to a shape computed at run time): then the value that reshape reads is the cut.
    let cut: string | undefined = features;
    const through: string[] = [];
    while (cut !== undefined && !accepted(cut)) {
      const reshape = producers.get(cut);
      const input = reshape?.form.inputs[0];
      cut = reshape !== undefined && RESHAPES.has(reshape.form.opType) && typeof input === 'string' ? input : undefined;
      if (cut !== undefined) through.push(reshape!.form.opType);
    }
    const op = classifier!.form.opType;
    if (cut !== undefined) {
      const why = through.length === 0 ? `input of the last ${op} (pooled features)` : `pooled features (the last ${op} reads them through ${through.join(', ')})`;
      points.push({ name: named(cut), shape: [...values.get(cut)!.shape], why });
    }
  }
  const spatialMap = (name: string | undefined): name is string => {
    const shape = name === undefined ? undefined : values.get(name)?.shape;
    return shape !== undefined && shape.length === 4 && Number(shape[2]) * Number(shape[3]) > 1 && accepted(name!);
  };
  // Without a Gemm/MatMul, the classifier is the last convolution (SqueezeNet's): the map it reads is the features.
  const lastConv = last.find((n) => n.form.opType === 'Conv');
  const convInput = classifier === undefined && typeof lastConv?.form.inputs[0] === 'string' ? lastConv.form.inputs[0] : undefined;
  const map = spatialMap(convInput) ? convInput : last.flatMap((n) => n.outputs).find(spatialMap);
  if (map !== undefined) {
    points.push({ name: named(map), shape: [...values.get(map)!.shape], why: convInput === map ? 'input of the last Conv (a convolutional classifier)' : 'last 4-D feature map' });
  }
  return points;
}
