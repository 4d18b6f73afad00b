import { onnx } from 'onnx-proto';
import type { Attribute } from '../ir/attribute';
import { dtypeCode } from '../ir/dtype';
import type { Graph, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { UNKNOWN_DIM } from '../ir/shape';
import type { TensorData } from '../ir/tensor';
import { writeFileAtomic } from '../util/atomic-write';
import { UserError } from '../util/user-error';
import { int64ForEncode } from './long';

/** Protobuf messages cannot exceed 2 GiB; larger models need external data, which deepvision does not write. */
const MAX_PROTO_BYTES = 2 ** 31 - 1;

export function encodeModel(model: Model): Uint8Array {
  const proto = onnx.ModelProto.create({
    irVersion: model.irVersion,
    opsetImport: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: model.modelVersion,
    docString: model.docString,
    graph: graphToProto(model.graph),
    metadataProps: [...model.metadata].map(([key, value]) => ({ key, value })),
    functions: model.functions,
    trainingInfo: model.trainingInfo,
  });
  const writer = onnx.ModelProto.encode(proto);
  const bytes = writer.finish();
  if (bytes.byteLength > MAX_PROTO_BYTES) throw new UserError(`the model is ${bytes.byteLength} bytes, more than the 2 GiB a single ONNX file can hold`);
  return bytes;
}

/** Writes the model atomically: an interrupted write leaves any previous file intact. */
export function writeModelFile(model: Model, file: string): number {
  const bytes = encodeModel(model);
  writeFileAtomic(file, bytes);
  return bytes.byteLength;
}

function graphToProto(graph: Graph): onnx.IGraphProto {
  const listed = new Set<string>([...graph.inputs, ...graph.outputs].map((v) => v.name));
  for (const name of graph.initializers.keys()) listed.add(name);
  // value_info read from a file is written back as it was (in file order); inferred types of intermediate values
  // are added after it, so other tools see the shapes deepvision checked.
  const valueInfo: onnx.IValueInfoProto[] = [];
  for (const name of graph.valueInfoNames) {
    const v = graph.values.get(name);
    if (v !== undefined) valueInfo.push(valueInfoProto(v));
  }
  for (const node of graph.nodes) {
    for (const v of node.outputs) {
      if (v === undefined || listed.has(v.name) || graph.valueInfoNames.has(v.name)) continue;
      if (v.dtype !== undefined && v.shape !== undefined) valueInfo.push(valueInfoProto(v));
    }
  }
  return {
    name: graph.name,
    docString: graph.docString,
    node: graph.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      docString: n.docString,
      input: n.inputs.map((v) => v?.name ?? ''),
      output: n.outputs.map((v) => v?.name ?? ''),
      attribute: [...n.attributes].map(([name, a]) => attributeToProto(name, a)),
    })),
    initializer: [...graph.initializers].map(([name, t]) => tensorToProto(t, name)),
    sparseInitializer: graph.sparseInitializers,
    input: graph.inputs.map(valueInfoProto),
    output: graph.outputs.map(valueInfoProto),
    valueInfo,
    quantizationAnnotation: graph.quantizationAnnotation,
  };
}

function valueInfoProto(v: Value): onnx.IValueInfoProto {
  const info: onnx.IValueInfoProto = { name: v.name, docString: v.docString };
  if (v.otherType) info.type = v.otherType;
  else if (v.dtype !== undefined) {
    info.type = {
      tensorType: {
        elemType: dtypeCode(v.dtype),
        shape: v.shape === undefined ? undefined : {
          dim: v.shape.map((d) => typeof d === 'number' ? { dimValue: d } : d === UNKNOWN_DIM ? {} : { dimParam: d }),
        },
      },
    };
  }
  return info;
}

/** Tensors are written as raw_data (strings, which have no raw form, as string_data). */
function tensorToProto(t: TensorData, name = ''): onnx.ITensorProto {
  const proto: onnx.ITensorProto = { name, dataType: dtypeCode(t.dtype), dims: t.dims.map(int64ForEncode) };
  if (t.dtype === 'string') proto.stringData = (t.strings ?? []).map((s) => Buffer.from(s, 'utf8'));
  else proto.rawData = t.bytes;
  return proto;
}

function attributeToProto(name: string, a: Attribute): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  const text = (s: string) => Buffer.from(s, 'utf8');
  switch (a.type) {
    case 'float': return { name, type: T.FLOAT, f: a.value };
    case 'int': return { name, type: T.INT, i: int64ForEncode(a.value) };
    case 'string': return { name, type: T.STRING, s: text(a.value) };
    case 'tensor': return { name, type: T.TENSOR, t: tensorToProto(a.value) };
    case 'graph': return { name, type: T.GRAPH, g: graphToProto(a.value) };
    case 'floats': return { name, type: T.FLOATS, floats: a.value };
    case 'ints': return { name, type: T.INTS, ints: a.value.map(int64ForEncode) };
    case 'strings': return { name, type: T.STRINGS, strings: a.value.map(text) };
    case 'tensors': return { name, type: T.TENSORS, tensors: a.value.map((t) => tensorToProto(t)) };
    case 'graphs': return { name, type: T.GRAPHS, graphs: a.value.map(graphToProto) };
    case 'opaque': return { ...a.value, name };
  }
}
