/**
 * The taught model as one ONNX file, assembled in the page without a protobuf library: the feature model's graph
 * (its `features` output dropped) followed by the head's nodes and output, with the trained parameters as
 * initializers; and a fine-tuned whole model, its state inputs bound to initializers the same way. Works on the
 * wire format's top level only (field tags and lengths), so any valid model's bytes pass through untouched; Node's
 * export-teach runs the same code to check the result against the eval model.
 */

/** A float32 initializer to add. */
export interface SpliceTensor {
  name: string;
  dims: readonly number[];
  data: Float32Array;
}

// Field numbers of onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const VALUE_INFO_NAME = 1;
const GRAPH_OUTPUT = 12;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_NAME = 8;
const TENSOR_RAW_DATA = 9;
const FLOAT = 1;

interface Field {
  number: number;
  /** The whole field, tag included. */
  bytes: Uint8Array;
  /** For length-delimited fields: the payload. */
  payload?: Uint8Array;
}

/**
 * `backbone` with `head`'s nodes, constants and outputs appended to its graph, and `tensors` as initializers. The
 * backbone's own graph outputs are dropped: the result computes the head's outputs (`logits`) from the backbone's
 * input. The head's graph inputs are dropped too: they are the backbone's output value, read by name, and the
 * parameters given in `tensors`.
 */
export function spliceHead(backbone: Uint8Array, head: Uint8Array, tensors: readonly SpliceTensor[]): Uint8Array<ArrayBuffer> {
  const model = fields(backbone, 'the feature model');
  const graphs = model.filter((f) => f.number === MODEL_GRAPH);
  if (graphs.length !== 1) throw new Error(`the feature model has ${graphs.length} graphs`);
  const headGraphs = fields(head, 'the head model').filter((f) => f.number === MODEL_GRAPH);
  if (headGraphs.length !== 1) throw new Error(`the head model has ${headGraphs.length} graphs`);
  const body: Uint8Array[] = fields(graphs[0]!.payload!, 'the feature model\'s graph').filter((f) => f.number !== GRAPH_OUTPUT).map((f) => f.bytes);
  const keep = new Set([GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_OUTPUT]);
  for (const f of fields(headGraphs[0]!.payload!, 'the head model\'s graph')) if (keep.has(f.number)) body.push(f.bytes);
  for (const t of tensors) body.push(lengthDelimited(GRAPH_INITIALIZER, tensorProto(t)));
  const graph = lengthDelimited(MODEL_GRAPH, concat(body));
  return concat(model.map((f) => (f.number === MODEL_GRAPH ? graph : f.bytes)));
}

/**
 * `model` with the graph inputs named in `tensors` turned into initializers holding their values: a graph that takes
 * its parameters as inputs (the page's fine-tuned whole model) becomes one that takes only the image.
 */
export function bindInputs(model: Uint8Array, tensors: readonly SpliceTensor[]): Uint8Array<ArrayBuffer> {
  const top = fields(model, 'the model');
  const graphs = top.filter((f) => f.number === MODEL_GRAPH);
  if (graphs.length !== 1) throw new Error(`the model has ${graphs.length} graphs`);
  const bound = new Set(tensors.map((t) => t.name));
  const body: Uint8Array[] = [];
  const inputs = new Set<string>();
  for (const f of fields(graphs[0]!.payload!, 'the model\'s graph')) {
    if (f.number === GRAPH_INPUT) {
      const name = fields(f.payload!, 'a graph input').find((g) => g.number === VALUE_INFO_NAME);
      const text = name?.payload === undefined ? '' : new TextDecoder().decode(name.payload);
      inputs.add(text);
      if (bound.has(text)) continue;
    }
    body.push(f.bytes);
  }
  const unknown = [...bound].filter((name) => !inputs.has(name));
  if (unknown.length > 0) throw new Error(`the model has no input ${unknown.slice(0, 3).map((n) => `'${n}'`).join(', ')} to bind`);
  for (const t of tensors) body.push(lengthDelimited(GRAPH_INITIALIZER, tensorProto(t)));
  const graph = lengthDelimited(MODEL_GRAPH, concat(body));
  return concat(top.map((f) => (f.number === MODEL_GRAPH ? graph : f.bytes)));
}

/** The top-level fields of a message, in order. */
function fields(bytes: Uint8Array, what: string): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= bytes.length || shift > 63) throw new Error(`${what} is not a valid ONNX protobuf`);
      const b = bytes[at++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
  };
  while (at < bytes.length) {
    const start = at;
    const tag = varint();
    const wire = tag % 8;
    let payload: Uint8Array | undefined;
    if (wire === 0) varint();
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const length = varint();
      payload = bytes.subarray(at, at + length);
      at += length;
    } else throw new Error(`${what} is not a valid ONNX protobuf (wire type ${wire})`);
    if (at > bytes.length) throw new Error(`${what} is truncated`);
    out.push({ number: Math.floor(tag / 8), bytes: bytes.subarray(start, at), ...(payload ? { payload } : {}) });
  }
  return out;
}

function tensorProto(t: SpliceTensor): Uint8Array {
  const size = t.dims.reduce((a, b) => a * b, 1);
  if (size !== t.data.length) throw new Error(`initializer '${t.name}' has ${t.data.length} values for dims [${t.dims}]`);
  const parts: Uint8Array[] = t.dims.map((d) => concat([varintBytes(TENSOR_DIMS * 8), varintBytes(d)]));
  parts.push(concat([varintBytes(TENSOR_DATA_TYPE * 8), varintBytes(FLOAT)]));
  parts.push(lengthDelimited(TENSOR_NAME, new TextEncoder().encode(t.name)));
  // raw_data is little-endian; so is every platform onnxruntime-web runs on, so the floats' bytes go as they are.
  parts.push(lengthDelimited(TENSOR_RAW_DATA, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)));
  return concat(parts);
}

function lengthDelimited(field: number, payload: Uint8Array): Uint8Array {
  return concat([varintBytes(field * 8 + 2), varintBytes(payload.length), payload]);
}

function varintBytes(value: number): Uint8Array {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
