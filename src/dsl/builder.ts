import { Attribute, AttributeValue, toAttribute } from '../ir/attribute';
import type { DType } from '../ir/dtype';
import { Graph, Node, Value } from '../ir/graph';
import { Model, WRITE_IR_VERSION, WRITE_OPSET } from '../ir/model';
import { Dim, formatShape, Shape } from '../ir/shape';
import { TensorData } from '../ir/tensor';
import { inferContextFor } from '../ops/infer-context';
import { OpType, SHAPE_RULES } from '../ops/registry';
import { ShapeError } from '../ops/types';

/** Training graphs run dropout and batch statistics; eval graphs do not. */
export type BuildMode = 'train' | 'eval';

/** A shape or type error found while building, naming the DSL op and the module it was called in. */
export class GraphBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphBuildError';
  }
}

export interface EmitOptions {
  /** The DSL function that emits the node, for error messages (`conv2d`). */
  op: string;
  /** Number of outputs (default 1). */
  outputs?: number;
}

/** One call of a module's forward while building. */
export interface ModuleCall {
  path: string;
  type: string;
  depth: number;
  outputShapes: Shape[];
  /** Elements of the parameters the module declares itself (not its children's). */
  ownParameters: number;
  hasChildren: boolean;
}

let active: GraphBuilder | undefined;

/** The builder whose graph DSL calls currently add to (set while a model's forward runs). */
export function activeBuilder(): GraphBuilder {
  if (active === undefined) throw new GraphBuildError('DSL ops can only be used while a graph is being built (inside buildModel or GraphBuilder.run)');
  return active;
}

/** A handle on a value of the graph being built: what DSL code passes between ops. */
export class Tensor {
  constructor(readonly builder: GraphBuilder, readonly value: Value) {}

  get name(): string {
    return this.value.name;
  }

  get dtype(): DType {
    return this.value.dtype!;
  }

  get shape(): Shape {
    return this.value.shape!;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Size of an axis (negative axes count from the end). */
  dim(axis: number): Dim {
    const d = this.shape[axis < 0 ? axis + this.rank : axis];
    if (d === undefined) throw new Error(`axis ${axis} is out of range for ${this.toString()}`);
    return d;
  }

  toString(): string {
    return `Tensor '${this.name}' ${this.dtype}${formatShape(this.shape)}`;
  }
}

/**
 * What a module owns and the builder binds to a tensor of the graph being built: a parameter or a buffer
 * (nn/parameter.ts). The DSL sees only this, so that it sits below the modules.
 */
export interface Bindable {
  readonly name: string;
}

/**
 * Builds one ONNX graph: every node is shape-checked as it is added, so a mismatch fails at the call that
 * caused it. Node names follow the module path (`/features.0/Conv`), as PyTorch's exporter names them.
 */
export class GraphBuilder {
  readonly graph: Graph;
  readonly mode: BuildMode;
  /** Values whose contents are known at build time (constants), for shape rules such as Reshape's. */
  private readonly known = new Map<string, TensorData>();
  /** Outputs of Shape nodes, as the (possibly symbolic) dims they will hold. */
  private readonly shapeValues = new Map<string, Dim[]>();
  private readonly scopes: string[] = [];
  private readonly nameCounts = new Map<string, number>();
  private readonly smallConstants = new Map<string, Tensor>();
  /** Tensors standing for parameters and buffers of modules, by the object that declares them. */
  private readonly bindings = new Map<Bindable, Tensor>();
  /** Module calls in the order they started, with their output shapes: the rows of a model summary. */
  readonly moduleCalls: ModuleCall[] = [];
  /** New values of state tensors (batch-norm running statistics) computed by a training graph. */
  readonly stateUpdates = new Map<string, Tensor>();
  /** What modules changed while building, for the summary (an imported model's quantization removed, say). */
  readonly notes = new Set<string>();
  /** The ONNX files modules imported (OnnxModule backbones), so that a runtime can check it loads each. */
  readonly importedModels = new Set<string>();
  /**
   * Scalar terms a model adds to its training loss while its forward runs (regularizers such as Show, Attend and
   * Tell's attention penalty), by name. Only a training graph adds them to its loss (losses.addTrainingLoss).
   */
  readonly trainingLosses = new Map<string, Tensor>();

  constructor(name: string, mode: BuildMode = 'eval') {
    this.graph = new Graph(name);
    this.mode = mode;
  }

  get training(): boolean {
    return this.mode === 'train';
  }

  /** Runs `fn` with this builder active, so DSL calls inside it add to this graph. */
  run<T>(fn: () => T): T {
    const previous = active;
    active = this;
    try {
      return fn();
    } finally {
      active = previous;
    }
  }

  /** The current module path ('' at the top level). */
  get scope(): string {
    return this.scopes[this.scopes.length - 1] ?? '';
  }

  withScope<T>(path: string, fn: () => T): T {
    this.scopes.push(path);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  input(name: string, dtype: DType, shape: Shape): Tensor {
    const v = this.graph.addValue(new Value(name, dtype, shape));
    this.graph.inputs.push(v);
    return new Tensor(this, v);
  }

  /** A named tensor stored in the model (a parameter or buffer of an inference graph). */
  initializer(name: string, data: TensorData): Tensor {
    const v = this.graph.addValue(new Value(name, data.dtype, data.dims));
    this.graph.initializers.set(name, data);
    this.known.set(name, data);
    return new Tensor(this, v);
  }

  /** A constant (shapes, axes, scalars); small ones are shared across the graph. */
  constant(data: TensorData): Tensor {
    const small = data.size <= 16 && data.dtype !== 'string';
    const key = small ? `${data.dtype}[${data.dims}]:${Buffer.from(data.bytes).toString('hex')}` : '';
    const cached = small ? this.smallConstants.get(key) : undefined;
    if (cached) return cached;
    const t = this.initializer(this.uniqueName('/const/Constant'), data);
    if (small) this.smallConstants.set(key, t);
    return t;
  }

  scalar(value: number, dtype: DType = 'float32'): Tensor {
    return this.constant(TensorData.fromArray(dtype, [], [value]));
  }

  ints(values: readonly number[]): Tensor {
    return this.constant(TensorData.int64([values.length], values));
  }

  /** Makes `key` (a Parameter or Buffer) stand for `t` in this graph. */
  bind(key: Bindable, t: Tensor): void {
    this.bindings.set(key, t);
  }

  bound(key: Bindable): Tensor | undefined {
    return this.bindings.get(key);
  }

  /** The build-time value of a tensor, when it is a constant. */
  knownValue(t: Tensor): TensorData | undefined {
    return this.known.get(t.name);
  }

  /**
   * Adds a node of a registered op, infers its outputs and returns them. Attributes may be plain values
   * (undefined ones are left out); integers become int attributes, so pass `floatAttr(1)` for a float 1.0.
   */
  emit(opType: OpType, inputs: readonly (Tensor | undefined)[], attributes: Record<string, AttributeValue | undefined>, options: EmitOptions): Tensor[] {
    const node = new Node(opType, this.uniqueName(`${this.scope ? `/${this.scope}` : ''}/${opType}`));
    node.origin = { op: options.op, scope: this.scope };
    // Trailing omitted optional inputs are dropped rather than written as empty names (ONNX allows both, but some
    // onnxruntime kernels, e.g. Squeeze, only handle the first form).
    let count = inputs.length;
    while (count > 0 && inputs[count - 1] === undefined) count--;
    for (const t of inputs.slice(0, count)) {
      if (t !== undefined && t.builder !== this) throw this.error(options.op, `input '${t.name}' belongs to another graph`);
      node.addInput(t?.value);
    }
    for (const [key, value] of Object.entries(attributes)) {
      if (value !== undefined) node.attributes.set(key, toAttribute(value) as Attribute);
    }
    const outputCount = options.outputs ?? 1;
    for (let i = 0; i < outputCount; i++) node.outputs.push(undefined);
    let types;
    try {
      types = SHAPE_RULES[opType].infer(inferContextFor(node, (name) => this.known.get(name), (name) => this.shapeValues.get(name)));
    } catch (err) {
      if (err instanceof ShapeError) {
        const shapes = inputs.map((t) => (t === undefined ? '-' : `${t.dtype}[${t.shape.join(', ')}]`)).join(', ');
        throw this.error(options.op, `${err.message} (${opType} inputs: ${shapes})`);
      }
      throw err;
    }
    node.outputs.length = 0;
    const outputs = types.slice(0, outputCount).map((type, i) => {
      const v = this.graph.addValue(new Value(`${node.name}_output_${i}`, type.dtype, type.shape));
      node.addOutput(v);
      return new Tensor(this, v);
    });
    this.graph.addNode(node);
    if (opType === 'Shape' && node.attributes.size === 0 && inputs[0]) this.shapeValues.set(outputs[0]!.name, [...inputs[0].shape]);
    if (opType === 'Constant') {
      const value = node.attr('value', 'tensor');
      if (value) this.known.set(outputs[0]!.name, value);
    }
    return outputs;
  }

  /** Emits a single-output op. */
  op(opType: OpType, inputs: readonly (Tensor | undefined)[], attributes: Record<string, AttributeValue | undefined>, dslName: string): Tensor {
    return this.emit(opType, inputs, attributes, { op: dslName })[0]!;
  }

  /** An error about a DSL call, in the form `conv2d 'block2.conv': ...`. */
  error(op: string, message: string): GraphBuildError {
    return new GraphBuildError(`${op} '${this.scope || this.graph.name}': ${message}`);
  }

  /** Marks a tensor as a graph output under the given name. */
  output(name: string, t: Tensor): Tensor {
    let v = t.value;
    const renamable = v.producer !== undefined && !this.graph.outputs.includes(v) && !this.graph.values.has(name);
    if (renamable) {
      this.graph.values.delete(v.name);
      v.name = name;
      this.graph.values.set(name, v);
    } else {
      v = this.withScope('', () => this.op('Identity', [t], {}, 'output')).value;
      this.graph.values.delete(v.name);
      v.name = name;
      this.graph.values.set(name, v);
    }
    this.graph.outputs.push(v);
    return new Tensor(this, v);
  }

  /** The finished model, with deepvision's IR version and opset. */
  toModel(options: { docString?: string; metadata?: Record<string, string> } = {}): Model {
    return {
      irVersion: WRITE_IR_VERSION,
      opsetImports: [{ domain: '', version: WRITE_OPSET }],
      producerName: 'deepvision',
      producerVersion: PRODUCER_VERSION,
      domain: 'ai.deepvision',
      modelVersion: 1,
      docString: options.docString ?? '',
      metadata: new Map(Object.entries(options.metadata ?? {})),
      graph: this.graph,
      functions: [],
      trainingInfo: [],
    };
  }

  private uniqueName(base: string): string {
    const n = this.nameCounts.get(base) ?? 0;
    this.nameCounts.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  }
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const PRODUCER_VERSION: string = (require('../../package.json') as { version: string }).version;
