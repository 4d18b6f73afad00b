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
import { describeReadFailure, FileReadError, O_NONBLOCK, readRegularFile } from '../util/regular-file';

/** IR versions and default-domain opsets deepvision reads (those of onnx 1.2 to 1.18, as onnxruntime 1.30 runs). */
const READ_IR_VERSIONS = { min: 3, max: 11 } as const;
const READ_OPSETS = { min: 7, max: 23 } as const;

/**
 * The largest dimension a value may declare. ONNX allows int64, but no tensor JavaScript (or a browser) can
 * allocate has a dimension of 2^31 or more, and a larger number in a file is damage or a trap (a dimension of
 * 3e9 used to reach `new Float32Array` as a RangeError).
 */
const MAX_DECLARED_DIM = 2 ** 31 - 1;

/** How deeply subgraphs (If, Loop, Scan bodies) may nest; real models use a few levels. */
const MAX_SUBGRAPH_DEPTH = 64;

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
    bytes = readRegularFile(file, { what: 'ONNX model' });
  } catch (err) {
    if (err instanceof FileReadError) throw new OnnxFormatError(file, err.reason.replace(/^cannot read the ONNX model:/, 'cannot read file:'));
    throw new OnnxFormatError(file, `cannot read file: ${describeReadFailure(err)}`);
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
    // protobufjs decodes nested messages recursively: a file of deeply nested graphs exhausts the stack.
    if (err instanceof RangeError && /call stack/.test(err.message)) throw new OnnxFormatError(source, 'not an ONNX model deepvision can read: its messages are nested too deeply');
    const why = (err as Error).message;
    const hint = /index out of range/.test(why) ? 'the file is truncated or is not an ONNX model' : 'not an ONNX model';
    throw new OnnxFormatError(source, `${hint} (protobuf decoding failed: ${why.split('\n')[0]})`);
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
  const context: ReadContext = { source, baseDir: options.baseDir, depth: 0 };
  const graph = readGraph(proto.graph, context, undefined);
  return {
    irVersion,
    opsetImports,
    producerName: proto.producerName,
    producerVersion: proto.producerVersion,
    domain: proto.domain,
    modelVersion: int64ToNumber(proto.modelVersion),
    docString: proto.docString,
    metadata: new Map(proto.metadataProps.map((p) => [p.key ?? '', p.value ?? ''])),
    graph,
    functions: proto.functions,
    trainingInfo: proto.trainingInfo,
  };
}

interface ReadContext {
  source: string;
  baseDir: string | undefined;
  /** How many graphs enclose the one being read (0 or absent: the main graph). */
  depth?: number;
}

/** Looks a name up in a graph and then in the graphs around it (subgraphs may use outer values). */
type Scope = (name: string) => Value | undefined;

function readGraph(g: onnx.IGraphProto, ctx: ReadContext, outer: Scope | undefined): Graph {
  const graph = new Graph(g.name ?? '');
  graph.docString = g.docString ?? '';
  const fail = (problem: string): never => {
    throw new OnnxFormatError(ctx.source, `graph '${graph.name}': ${problem}`);
  };
  if ((ctx.depth ?? 0) > MAX_SUBGRAPH_DEPTH) fail(`subgraphs are nested more than ${MAX_SUBGRAPH_DEPTH} deep`);
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
  const produced = new Set<string>([...graph.initializers.keys(), ...graph.inputs.map((v) => v.name)]);
  for (const n of g.node ?? []) {
    for (const out of n.output ?? []) {
      if (!out) continue;
      if (produced.has(out)) fail(`value '${out}' is produced twice`);
      produced.add(out);
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
      node.attributes.set(a.name!, readAttribute(a, { ...ctx, depth: (ctx.depth ?? 0) + 1 }, scope));
    }
    graph.addNode(node);
  }
  const cycle = findCycle(graph);
  if (cycle !== undefined) fail(`its nodes form a cycle, so it cannot run (nodes on the cycle or after it: ${cycle})`);
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

/**
 * Names a few nodes on or downstream of a cycle, or undefined when the nodes can be ordered (Kahn's algorithm: iterative, so a long
 * chain of nodes cannot exhaust the stack). Edges are direct inputs; values from enclosing graphs are not edges.
 */
function findCycle(graph: Graph): string | undefined {
  const waiting = new Map<Node, number>();
  const own = new Set(graph.nodes);
  for (const node of graph.nodes) {
    waiting.set(node, node.inputs.filter((v) => v?.producer !== undefined && own.has(v.producer)).length);
  }
  const ready = graph.nodes.filter((n) => waiting.get(n) === 0);
  let ordered = 0;
  while (ready.length > 0) {
    const node = ready.pop()!;
    ordered++;
    for (const out of node.outputs) {
      for (const use of out?.uses ?? []) {
        if (!own.has(use.node)) continue;
        const left = waiting.get(use.node)! - 1;
        waiting.set(use.node, left);
        if (left === 0) ready.push(use.node);
      }
    }
  }
  if (ordered === graph.nodes.length) return undefined;
  const stuck = graph.nodes.filter((n) => waiting.get(n)! > 0).map((n) => `'${n.name || n.opType}'`);
  return stuck.length > 3 ? `${stuck.slice(0, 3).join(', ')} and ${stuck.length - 3} more` : stuck.join(', ');
}

function applyValueInfo(v: Value, vi: onnx.IValueInfoProto, ctx: ReadContext): Value {
  v.docString = vi.docString ?? v.docString;
  const type = vi.type;
  if (!type) return v;
  if (type.tensorType) {
    const elemType = type.tensorType.elemType ?? 0;
    if (elemType !== 0) v.dtype = safeDType(elemType, ctx, `value '${v.name}'`);
    const shape = type.tensorType.shape;
    if (shape) v.shape = (shape.dim ?? []).map((d) => readDim(d, ctx, v.name));
  } else {
    v.otherType = type;
  }
  return v;
}

function readDim(d: onnx.TensorShapeProto.IDimension, ctx: ReadContext, valueName: string): Dim {
  const which = (d as { value?: string }).value;
  if (which === 'dimValue' || (which === undefined && d.dimValue !== undefined && d.dimValue !== null)) {
    const n = int64ToNumber(d.dimValue as number | LongLike);
    if (n === -1) return UNKNOWN_DIM; // some converters write -1 for "unknown" rather than leaving the dimension empty
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_DECLARED_DIM) {
      throw new OnnxFormatError(ctx.source, `value '${valueName}' declares dimension ${n}, not a size from 0 to ${MAX_DECLARED_DIM}`);
    }
    return n;
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
 * `..` escapes and symbolic links that lead outside are refused before anything is opened, and only a regular
 * file is read (a folder, a device or a named pipe is refused: reading a pipe would wait forever).
 */
function readExternalData(t: onnx.ITensorProto, ctx: ReadContext, name: string, expectedBytes: number): Uint8Array {
  const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.get('location');
  const fail = (problem: string): never => {
    throw new OnnxFormatError(ctx.source, `${name}: external data ${problem}`);
  };
  if (!location) return fail('has no location');
  if (ctx.baseDir === undefined) fail(`'${location}' cannot be read: the model was not loaded from a file`);
  if (location.includes('\0')) fail('path contains a NUL character');
  if (path.isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location)) fail(`path '${location}' is absolute; only paths inside the model's folder are allowed`);
  let base: string;
  try {
    base = fs.realpathSync(ctx.baseDir!);
  } catch (err) {
    return fail(`'${location}' cannot be read: the model's folder ${ctx.baseDir}: ${describeReadFailure(err)}`);
  }
  const target = path.resolve(base, location);
  const inside = (p: string) => p === base || p.startsWith(base + path.sep);
  if (!inside(target)) fail(`path '${location}' leaves the model's folder`);
  let real: string;
  try {
    real = fs.realpathSync(target);
  } catch (err) {
    return fail((err as NodeJS.ErrnoException).code === 'ENOENT' ? `file '${location}' does not exist` : `file '${location}' cannot be read: ${describeReadFailure(err)}`);
  }
  if (!inside(real)) fail(`path '${location}' leads outside the model's folder through a link`);
  const offset = parseByteCount(entries.get('offset') ?? '0');
  const length = entries.has('length') ? parseByteCount(entries.get('length')!) : expectedBytes;
  if (offset === undefined || length === undefined) fail(`has an invalid offset or length ('${entries.get('offset') ?? ''}', '${entries.get('length') ?? ''}')`);
  if (length !== expectedBytes) fail(`length ${length} does not match the tensor's ${expectedBytes} bytes`);
  let fd: number | undefined;
  try {
    // Opened before it is measured, so the size checked is that of the file read (not of one swapped in later);
    // non-blocking so that opening a named pipe returns at once and is then refused as not a regular file.
    fd = fs.openSync(real, fs.constants.O_RDONLY | O_NONBLOCK);
    const stat = fs.fstatSync(fd);
    if (stat.isDirectory()) fail(`'${location}' is a folder, not a file`);
    if (!stat.isFile()) fail(`'${location}' is not a regular file`);
    if (offset! + length! > stat.size) fail(`'${location}' is ${stat.size} bytes, too short for offset ${offset} + length ${length}`);
    const out = new Uint8Array(length!);
    let done = 0;
    while (done < length!) {
      const n = fs.readSync(fd, out, done, length! - done, offset! + done);
      if (n === 0) fail(`'${location}' ended after ${done} of ${length} bytes (it changed while being read)`);
      done += n;
    }
    return out;
  } catch (err) {
    if (err instanceof OnnxFormatError) throw err;
    return fail(`file '${location}' cannot be read: ${describeReadFailure(err)}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** A byte offset or length as written in external_data: decimal digits only, at most 2^53 - 1. */
function parseByteCount(text: string): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}
