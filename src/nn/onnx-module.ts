import * as path from 'node:path';
import { GraphBuilder, Tensor } from '../dsl/builder';
import { asTensor } from '../dsl/functional';
import type { Dim } from '../ir/shape';
import type { TensorData } from '../ir/tensor';
import type { Init } from './init';
import { Module } from './module';
import { Buffer, Parameter } from './parameter';
import { decodeModel } from '../onnx/read';
import { cutFeatures } from '../import/cut-acceptance';
import { emitImportedGraph } from '../import/emit-imported-graph';
import { ImportedGraph, importGraph, ImportError } from '../import/imported-graph';
import { describeReadFailure, FileReadError, readRegularFile } from '../util/regular-file';

export interface OnnxModuleOptions {
  /** The value the module returns: any value of the model (`features`, a feature map); default its first output. */
  output?: string;
  /**
   * Which pretrained parameters train: false (the default: a frozen backbone), true (all), or names and name
   * prefixes, as the initializers are named in the file or as the parameters are named in the module, or
   * `{ last: K }`: the weights of the last K layers with weights (convolutions, Gemm, ...) before the cut.
   */
  trainable?: boolean | readonly string[] | { last: number };
}

/** Input slots whose float initializers are weights (trainable parameters); other constants stay constants. */
const WEIGHT_SLOTS: Partial<Record<string, readonly number[]>> = {
  Conv: [1, 2], ConvTranspose: [1, 2], Gemm: [0, 1, 2], MatMul: [0, 1], BatchNormalization: [1, 2],
  Add: [0, 1], Sub: [0, 1], Mul: [0, 1], Div: [0, 1],
};
/** Batch-norm running statistics: imported backbones keep them frozen (batch norm runs in eval mode). */
const STATISTICS_SLOTS: Partial<Record<string, readonly number[]>> = { BatchNormalization: [3, 4] };

/**
 * A pretrained ONNX model (a torchvision export, the ONNX Model Zoo, your own) used as a module of a deepvision
 * model: its weights become parameters named after the module and the initializer (`backbone.conv_0.weight`), so
 * they appear in summaries and checkpoints; its nodes are added to the graph being built, shape-checked like any
 * DSL op; gradients flow through it. Batch norm runs with the pretrained statistics.
 */
export class OnnxModule extends Module {
  readonly imported: ImportedGraph;
  /** The ONNX file, as an absolute path. */
  readonly file: string;
  private readonly tensors: [string, Parameter][] = [];
  private readonly byInitializer = new Map<string, Parameter>();

  constructor(file: string, readonly options: OnnxModuleOptions = {}) {
    super();
    const resolved = path.resolve(file);
    this.file = resolved;
    let bytes: Uint8Array;
    try {
      bytes = readRegularFile(resolved, { what: 'ONNX model' });
    } catch (err) {
      throw new ImportError(`cannot read backbone ${file}: ${err instanceof FileReadError ? err.reason.replace(/^cannot read the ONNX model: /, '') : describeReadFailure(err)}`);
    }
    this.imported = importGraph(decodeModel(bytes, { baseDir: path.dirname(resolved), source: file }), file, options.output);
    const roles = initializerRoles(this.imported);
    const lastLayers = lastLayerWeights(this.imported, roles, options.trainable);
    const taken = new Set<string>();
    for (const [name, role] of roles) {
      const data = this.imported.initializers.get(name)!;
      const key = uniqueKey(name, taken);
      const init: Init = { describe: 'pretrained', fill: () => Float32Array.from(data.typed() as Float32Array) };
      const p = role === 'statistics' ? new Buffer(data.dims, init) : new Parameter(data.dims, init, { trainable: lastLayers?.has(name) ?? this.isTrainable(name, key) });
      this.tensors.push([key, p]);
      this.byInitializer.set(name, p);
    }
  }

  private isTrainable(initializer: string, key: string): boolean {
    const t = this.options.trainable ?? false;
    if (typeof t === 'boolean') return t;
    if (!Array.isArray(t)) return false;
    return t.some((prefix) => initializer.startsWith(prefix) || key.startsWith(prefix));
  }

  override ownTensors(): [string, Parameter][] {
    return this.tensors;
  }

  /** What the import changed (quantization removed, Dropout as Identity), for summaries. */
  get notes(): readonly string[] {
    return this.imported.notes;
  }

  /** The input shape the model declares ([N, 3, 224, 224] for the bundled backbones), if it declares one. */
  get declaredInputShape(): readonly Dim[] | undefined {
    return this.imported.input.shape;
  }

  /** The shape of the module's output for an input of `shape`, computed by building it once on the side. */
  outputShape(shape: readonly Dim[]): Dim[] {
    const b = new GraphBuilder('probe');
    const x = b.input('input', 'float32', shape);
    for (const [name, p] of this.byInitializer) b.bind(p, b.initializer(`probe.${name}`, this.imported.initializers.get(name)!));
    return [...b.run(() => this.emitInto(b, x)).shape];
  }

  /**
   * How many values per image the module's output has for an input of `shape`: what a linear head on it reads. A
   * cut whose size per image is not fixed is refused here, naming it, by the rule `deepvision inspect` recommends
   * cuts by (cut-acceptance.ts).
   */
  featuresPerImage(shape: readonly Dim[]): number {
    const out = this.outputShape(shape);
    const n = cutFeatures(out);
    if (n === undefined) {
      const source = this.imported.source;
      throw new ImportError(`${source}: the value '${this.imported.output}' is [${out.join(', ')}] for one image, not a fixed size, so a head cannot read it (\`deepvision inspect ${source}\` lists cut points that work)`);
    }
    return n;
  }

  forward(x: Tensor): Tensor {
    return this.emitInto(x.builder, x);
  }

  private emitInto(b: GraphBuilder, x: Tensor): Tensor {
    const declared = this.imported.input.shape;
    if (declared !== undefined && (declared.length !== x.shape.length || (typeof declared[1] === 'number' && typeof x.shape[1] === 'number' && declared[1] !== x.shape[1]))) {
      throw new ImportError(`${this.imported.source} takes input [${declared.join(', ')}], got [${x.shape.join(', ')}]`);
    }
    for (const note of this.imported.notes) b.notes.add(`${this.path || this.imported.source}: ${note}`);
    b.importedModels.add(this.file);
    const values = emitImportedGraph(b, this.imported, x, (name) => {
      const p = this.byInitializer.get(name);
      return p !== undefined ? asTensor(p, b) : undefined;
    });
    return values.get(this.imported.output)!;
  }
}

/** Which initializers are weights (parameters) and which batch-norm statistics (frozen buffers); the rest stay constants. */
function initializerRoles(g: ImportedGraph): Map<string, 'weight' | 'statistics'> {
  const roles = new Map<string, 'weight' | 'statistics'>();
  for (const { form } of g.nodes) {
    form.inputs.forEach((input, slot) => {
      if (typeof input !== 'string') return;
      const data = g.initializers.get(input);
      if (data === undefined || data.dtype !== 'float32') return;
      if (STATISTICS_SLOTS[form.opType]?.includes(slot)) roles.set(input, 'statistics');
      else if (WEIGHT_SLOTS[form.opType]?.includes(slot) && data.size > 1 && !roles.has(input)) roles.set(input, 'weight');
    });
  }
  return roles;
}

/** With `{ last: K }`, the weight initializers of the last K nodes that have weights; else undefined. */
function lastLayerWeights(g: ImportedGraph, roles: Map<string, 'weight' | 'statistics'>, trainable: OnnxModuleOptions['trainable']): Set<string> | undefined {
  if (trainable === undefined || typeof trainable === 'boolean' || Array.isArray(trainable)) return undefined;
  const { last } = trainable as { last: number };
  if (!Number.isInteger(last) || last < 0) throw new ImportError(`${g.source}: trainable { last: ${last} } must be a whole number of layers`);
  const layers = g.nodes.map((n) => n.form.inputs.filter((i): i is string => typeof i === 'string' && roles.get(i) === 'weight')).filter((w) => w.length > 0);
  return new Set(layers.slice(layers.length - Math.min(last, layers.length)).flat());
}

/** A parameter name from an initializer name: dots kept (torchvision's `features.0.0.weight`), other symbols as `_`. */
function uniqueKey(name: string, taken: Set<string>): string {
  const base = name.replace(/[^A-Za-z0-9_.]/g, '_').replace(/^\.+|\.+$/g, '') || 'tensor';
  let key = base;
  for (let i = 1; taken.has(key); i++) key = `${base}_${i}`;
  taken.add(key);
  return key;
}
