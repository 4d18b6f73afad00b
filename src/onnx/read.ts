import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import type { Attribute } from '../ir/attribute';
import { DType, dtypeBytes, dtypeFromCode } from '../ir/dtype';
import { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { Dim, numElements, UNKNOWN_DIM } from '../ir/shape';
import { allocTyped, TensorData } from '../ir/tensor';
import { OnnxFormatError } from './errors';
import { int64ToBigInt, int64ToNumber, LongLike } from './long';

/** IR versions and default-domain opsets deepvision reads (those of onnx 1.2 to 1.18, as onnxruntime 1.30 runs). */
export const READ_IR_VERSIONS = { min: 3, max: 11 } as const;
export const READ_OPSETS = { min: 7, max: 23 } as const;

export interface ReadOptions {
  /** Folder that external-data paths are resolved in; they may not leave it. Defaults to the model's folder. */
  baseDir?: string;
  /** Name of the source in error messages. */
  source?: string;
}

/** Reads an ONNX file into the IR, with its external data (restricted to the file's own folder). */
export function readModelFile(file: string): Model {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new OnnxFormatError(file, `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return decodeModel(bytes, { baseDir: path.dirname(path.resolve(file)), source: file });
}

export function decodeModel(bytes: Uint8Array, options: ReadOptions = {}): Model {
  const source = options.source ?? 'model';
  if (bytes.byteLength === 0) throw new OnnxFormatError(source, 'file is empty, not an ONNX model');
  let proto: onnx.ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (err) {
    const why = (err as Error).message;
    const hint = /index out of range/.test(why) ? 'the file is truncated or is not an ONNX model' : 'not an ONNX model';
    throw new OnnxFormatError(source, `${hint} (protobuf decoding failed: ${why})`);
  }
  const irVersion = int64ToNumber(proto.irVersion);
  if (!proto.graph) throw new OnnxFormatError(source, 'not an ONNX model: it has no graph');
  if (irVersion === 0) throw new OnnxFormatError(source, 'not an ONNX model: it has no IR version');
  if (irVersion < READ_IR_VERSIONS.min || irVersion > READ_IR_VERSIONS.max) {
    throw new OnnxFormatError(source,
      `unsupported ONNX IR version ${irVersion} (deepvision reads IR versions ${READ_IR_VERSIONS.min} to ${READ_IR_VERSIONS.max})`);
  }
  const opsetImports = proto.opsetImport.map((o) => ({ domain: o.domain ?? '', version: int64ToNumber(o.version) }));
  for (const o of opsetImports) {
    if ((o.domain === '' || o.domain === 'ai.onnx') && (o.version < READ_OPSETS.min || o.version > READ_OPSETS.max)) {
      throw new OnnxFormatError(source,
        `unsupported opset ${o.version} of the default ONNX domain (deepvision reads opsets ${READ_OPSETS.min} to ${READ_OPSETS.max})`);
    }
  }
  const context: ReadContext = { source, baseDir: options.baseDir };
  const graph = readGraph(proto.graph, context, undefined);
  return {
    irVersion,
    opsetImports,
    producerName: proto.producerName ?? '',
    producerVersion: proto.producerVersion ?? '',
    domain: proto.domain ?? '',
    modelVersion: int64ToNumber(proto.modelVersion),
    docString: proto.docString ?? '',
    metadata: new Map(proto.metadataProps.map((p) => [p.key ?? '', p.value ?? ''])),
    graph,
    functions: proto.functions,
    trainingInfo: proto.trainingInfo,
  };
}

interface ReadContext {
  source: string;
  baseDir: string | undefined;
}

/** Looks a name up in a graph and then in the graphs around it (subgraphs may use outer values). */
type Scope = (name: string) => Value | undefined;

function readGraph(g: onnx.IGraphProto, ctx: ReadContext, outer: Scope | undefined): Graph {
  const graph = new Graph(g.name ?? '');
  graph.docString = g.docString ?? '';
  const fail = (problem: string): never => {
    throw new OnnxFormatError(ctx.source, `graph '${graph.name}': ${problem}`);
  };
  const define = (name: string): Value => {
    const existing = graph.values.get(name);
    if (existing) return existing;
    return graph.addValue(new Value(name));
  };

  for (const t of g.initializer ?? []) {
    const name = t.name ?? '';
    if (!name) fail('an initializer has no name');
    if (graph.initializers.has(name)) fail(`two initializers are named '${name}'`);
    const data = readTensor(t, ctx);
    graph.initializers.set(name, data);
    const v = define(name);
    v.dtype = data.dtype;
    v.shape = data.dims;
  }
  for (const vi of g.input ?? []) graph.inputs.push(applyValueInfo(define(vi.name ?? ''), vi, ctx));

  // Every node output exists before any input is linked, so a node list that is not in topological order still
  // reads; a name that nothing defines means the file is truncated or inconsistent.
  for (const n of g.node ?? []) {
    for (const out of n.output ?? []) {
      if (!out) continue;
      if (graph.values.get(out)?.producer || graph.initializers.has(out)) {
        fail(`value '${out}' is produced twice`);
      }
      define(out);
    }
  }
  const scope: Scope = (name) => graph.values.get(name) ?? outer?.(name);
  for (const [i, n] of (g.node ?? []).entries()) {
    const node = new Node(n.opType ?? '', n.name ?? '', n.domain ?? '');
    if (!node.opType) fail(`node #${i} has no op type`);
    node.docString = n.docString ?? '';
    for (const name of n.input ?? []) {
      if (!name) {
        node.addInput(undefined);
        continue;
      }
      const v = scope(name);
      if (!v) fail(`node '${node.name || node.opType}' uses '${name}', which no input, initializer or node defines (truncated or inconsistent file)`);
      node.addInput(v);
    }
    for (const name of n.output ?? []) node.addOutput(name ? graph.values.get(name) : undefined);
    for (const a of n.attribute ?? []) {
      if (!a.name) fail(`an attribute of node '${node.name}' has no name`);
      node.attributes.set(a.name!, readAttribute(a, ctx, scope));
    }
    graph.addNode(node);
  }
  for (const vi of g.valueInfo ?? []) {
    const v = graph.values.get(vi.name ?? '');
    if (!v) continue; // value_info about a name the graph never uses carries no information
    applyValueInfo(v, vi, ctx);
    graph.valueInfoNames.add(v.name);
  }
  for (const vi of g.output ?? []) {
    const v = scope(vi.name ?? '');
    if (!v) fail(`graph output '${vi.name}' is not produced by any node (truncated or inconsistent file)`);
    graph.outputs.push(applyValueInfo(v!, vi, ctx));
  }
  graph.sparseInitializers = g.sparseInitializer ?? [];
  graph.quantizationAnnotation = g.quantizationAnnotation ?? [];
  return graph;
}

function applyValueInfo(v: Value, vi: onnx.IValueInfoProto, ctx: ReadContext): Value {
  v.docString = vi.docString ?? v.docString;
  const type = vi.type;
  if (!type) return v;
  if (type.tensorType) {
    const elemType = type.tensorType.elemType ?? 0;
    if (elemType !== 0) v.dtype = safeDType(elemType, ctx, `value '${v.name}'`);
    const shape = type.tensorType.shape;
    if (shape) v.shape = (shape.dim ?? []).map(readDim);
  } else {
    v.otherType = type;
  }
  return v;
}

function readDim(d: onnx.TensorShapeProto.IDimension): Dim {
  const which = (d as { value?: string }).value;
  if (which === 'dimValue' || (which === undefined && d.dimValue !== undefined && d.dimValue !== null)) {
    return int64ToNumber(d.dimValue as number | LongLike);
  }
  if (d.dimParam) return d.dimParam;
  return UNKNOWN_DIM;
}

function safeDType(code: number, ctx: ReadContext, what: string): DType {
  try {
    return dtypeFromCode(code);
  } catch {
    throw new OnnxFormatError(ctx.source, `${what} has unknown element type ${code}`);
  }
}

function readAttribute(a: onnx.IAttributeProto, ctx: ReadContext, scope: Scope): Attribute {
  const T = onnx.AttributeProto.AttributeType;
  const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
  if (a.refAttrName) return { type: 'opaque', value: a };
  switch (a.type) {
    case T.FLOAT: return { type: 'float', value: a.f ?? 0 };
    case T.INT: return { type: 'int', value: int64ToNumber(a.i as number | LongLike) };
    case T.STRING: return { type: 'string', value: text(a.s) };
    case T.TENSOR: return { type: 'tensor', value: readTensor(a.t ?? {}, ctx) };
    case T.GRAPH: return { type: 'graph', value: readGraph(a.g ?? {}, ctx, scope) };
    case T.FLOATS: return { type: 'floats', value: [...(a.floats ?? [])] };
    case T.INTS: return { type: 'ints', value: (a.ints ?? []).map((i) => int64ToNumber(i as number | LongLike)) };
    case T.STRINGS: return { type: 'strings', value: (a.strings ?? []).map(text) };
    case T.TENSORS: return { type: 'tensors', value: (a.tensors ?? []).map((t) => readTensor(t, ctx)) };
    case T.GRAPHS: return { type: 'graphs', value: (a.graphs ?? []).map((g) => readGraph(g, ctx, scope)) };
    default: return { type: 'opaque', value: a };
  }
}

/** Converts a TensorProto, whichever field holds its data, to little-endian bytes. */
export function readTensor(t: onnx.ITensorProto, ctx: ReadContext): TensorData {
  const name = t.name ? `tensor '${t.name}'` : 'a tensor';
  const dtype = safeDType(t.dataType ?? 0, ctx, name);
  const dims = (t.dims ?? []).map((d) => int64ToNumber(d as number | LongLike));
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new OnnxFormatError(ctx.source, `${name} has invalid dims [${dims}]`);
  if (t.segment) throw new OnnxFormatError(ctx.source, `${name} is segmented, which deepvision does not read`);
  const count = numElements(dims);
  const expectedBytes = dtype === 'string' ? 0 : Math.ceil(count * dtypeBytes(dtype));
  const check = (got: number, unit: string) => {
    if (got !== (unit === 'bytes' ? expectedBytes : count)) {
      throw new OnnxFormatError(ctx.source, `${name} of shape [${dims}] (${dtype}) holds ${got} ${unit}, expected ${unit === 'bytes' ? expectedBytes : count}`);
    }
  };

  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const bytes = readExternalData(t, ctx, name, expectedBytes);
    return new TensorData(dtype, dims, bytes);
  }
  if (dtype === 'string') {
    const strings = (t.stringData ?? []).map((s) => Buffer.from(s).toString('utf8'));
    check(strings.length, 'elements');
    return new TensorData(dtype, dims, new Uint8Array(0), strings);
  }
  if (t.rawData && t.rawData.byteLength > 0) {
    check(t.rawData.byteLength, 'bytes');
    return new TensorData(dtype, dims, new Uint8Array(t.rawData)); // a copy, not a view into the file buffer
  }
  const typedField = typedFieldOf(t, dtype);
  if (typedField === undefined) {
    throw new OnnxFormatError(ctx.source, `${name}: ${dtype} data in typed fields is not supported; store it as raw_data`);
  }
  const { values, perElement } = typedField;
  check(values.length / perElement, 'elements');
  const out = allocTyped(dtype === 'complex64' ? 'float32' : dtype === 'complex128' ? 'float64' : dtype, values.length);
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    for (let i = 0; i < values.length; i++) out[i] = int64ToBigInt(values[i] as number | LongLike);
    if (out instanceof BigUint64Array) for (let i = 0; i < values.length; i++) out[i] = BigInt.asUintN(64, out[i]!);
  } else {
    for (let i = 0; i < values.length; i++) out[i] = values[i] as number;
  }
  return new TensorData(dtype, dims, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
}

/** Which TensorProto field holds elements of a type when raw_data is not used (onnx.proto3's table). */
function typedFieldOf(t: onnx.ITensorProto, dtype: DType): { values: ArrayLike<unknown>; perElement: number } | undefined {
  switch (dtype) {
    case 'float32': return { values: t.floatData ?? [], perElement: 1 };
    case 'complex64': return { values: t.floatData ?? [], perElement: 2 };
    case 'float64': return { values: t.doubleData ?? [], perElement: 1 };
    case 'complex128': return { values: t.doubleData ?? [], perElement: 2 };
    case 'int64': return { values: t.int64Data ?? [], perElement: 1 };
    case 'uint32': return { values: (t.uint64Data ?? []).map((v) => int64ToNumber(v as number | LongLike)), perElement: 1 };
    case 'uint64': return { values: t.uint64Data ?? [], perElement: 1 };
    case 'int32': case 'int16': case 'int8': case 'uint16': case 'uint8': case 'bool': case 'float16': case 'bfloat16':
      return { values: t.int32Data ?? [], perElement: 1 };
    default: return undefined;
  }
}

/**
 * Reads external data. The location must be a relative path inside the model's folder: absolute paths,
 * `..` escapes and symbolic links that lead outside are refused before anything is opened.
 */
function readExternalData(t: onnx.ITensorProto, ctx: ReadContext, name: string, expectedBytes: number): Uint8Array {
  const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.get('location');
  const fail = (problem: string): never => {
    throw new OnnxFormatError(ctx.source, `${name}: external data ${problem}`);
  };
  if (!location) fail('has no location');
  if (ctx.baseDir === undefined) fail(`'${location}' cannot be read: the model was not loaded from a file`);
  if (path.isAbsolute(location!) || /^[a-zA-Z]:[\\/]/.test(location!)) fail(`path '${location}' is absolute; only paths inside the model's folder are allowed`);
  const base = fs.realpathSync(ctx.baseDir!);
  const target = path.resolve(base, location!);
  const inside = (p: string) => p === base || p.startsWith(base + path.sep);
  if (!inside(target)) fail(`path '${location}' leaves the model's folder`);
  let real: string;
  try {
    real = fs.realpathSync(target);
  } catch {
    return fail(`file '${location}' does not exist`);
  }
  if (!inside(real)) fail(`path '${location}' leads outside the model's folder through a link`);
  const offset = Number(entries.get('offset') ?? 0);
  const length = entries.has('length') ? Number(entries.get('length')) : expectedBytes;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) fail('has an invalid offset or length');
  if (length !== expectedBytes) fail(`length ${length} does not match the tensor's ${expectedBytes} bytes`);
  const size = fs.statSync(real).size;
  if (offset + length > size) fail(`'${location}' is ${size} bytes, too short for offset ${offset} + length ${length}`);
  const out = new Uint8Array(length);
  const fd = fs.openSync(real, 'r');
  try {
    fs.readSync(fd, out, 0, length, offset);
  } finally {
    fs.closeSync(fd);
  }
  return out;
}
