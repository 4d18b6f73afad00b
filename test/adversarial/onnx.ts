/**
 * Malformed ONNX models, with the files and folders around them (external data), for tests of every command that
 * reads a model: `inspect`, `export`, and whatever comes next. Each case is generated in memory from a small valid
 * image model (or from a model the caller passes) and a fixed seed; writeCase puts one on disk in a temporary
 * folder. Nothing generated here is committed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { Rng } from '../../src/util/rng';

/** Something next to the model: file bytes, a folder, a named pipe, or a symbolic link to `target`. */
export type SideEntry = Uint8Array | { kind: 'folder' } | { kind: 'fifo' } | { kind: 'symlink'; target: string };

export interface MalformedCase {
  name: string;
  /** What is wrong with it, in words. */
  problem: string;
  model: Uint8Array;
  /** Entries to create beside the model, by path relative to its folder. */
  beside: Record<string, SideEntry>;
  /**
   * What deepvision's ONNX reader says about it (a pattern of its one error line), or 'reads' for a file that is
   * well-formed ONNX but that onnxruntime must refuse (an unknown op, for instance).
   */
  reader: RegExp | 'reads';
}

/** The image model every case is a broken variant of: input [batch, 3, 16, 16] -> logits [batch, 10]. */
export interface BaseOptions {
  inputDims?: (number | string)[];
  /** Replaces the op of the first node (GlobalAveragePool). */
  firstOp?: string;
  /** How the weight initializer 'w' [10, 3] stores its data. */
  weights?: { dims?: number[]; external?: Record<string, string> };
  /** Extra nodes, appended after the valid ones. */
  extraNodes?: onnx.INodeProto[];
  /** Rewires the Gemm to read this value instead of the flattened features. */
  gemmInput?: string;
  opset?: number;
  inputElemType?: number;
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;

export function baseModel(o: BaseOptions = {}): Uint8Array {
  const dims = o.inputDims ?? ['batch', 3, 16, 16];
  const weight: onnx.ITensorProto = { name: 'w', dataType: FLOAT, dims: o.weights?.dims ?? [10, 3] };
  if (o.weights?.external) {
    weight.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    weight.externalData = Object.entries(o.weights.external).map(([key, value]) => ({ key, value }));
  } else {
    weight.rawData = new Uint8Array(Float32Array.from({ length: 30 }, (_, i) => (i % 7) / 7 - 0.4).buffer);
  }
  const tensorType = (elemType: number, shape: (number | string)[]): onnx.ITypeProto => ({
    tensorType: { elemType, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } },
  });
  const proto = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: o.opset ?? 17 }],
    producerName: 'deepvision-adversarial',
    graph: {
      name: 'base',
      input: [{ name: 'input', type: tensorType(o.inputElemType ?? FLOAT, dims) }],
      initializer: [weight, { name: 'b', dataType: FLOAT, dims: [10], rawData: new Uint8Array(40) }],
      node: [
        { name: 'pool', opType: o.firstOp ?? 'GlobalAveragePool', input: ['input'], output: ['pooled'] },
        { name: 'flatten', opType: 'Flatten', input: ['pooled'], output: ['features'] },
        ...(o.extraNodes ?? []),
        {
          name: 'head', opType: 'Gemm', input: [o.gemmInput ?? 'features', 'w', 'b'], output: ['logits'],
          attribute: [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
        },
      ],
      output: [{ name: 'logits', type: tensorType(FLOAT, ['batch', 10]) }],
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}

/** Cuts of a valid model: most of it, half of it, a few bytes. */
export function truncations(valid: Uint8Array, label: string): MalformedCase[] {
  return [[valid.length - 1, 'all but the last byte'], [Math.floor(valid.length / 2), 'half'], [10, 'the first 10 bytes']].map(([length, what]) => ({
    name: `truncated-${label}-${length}`,
    problem: `${label} cut to ${what} (${length} of ${valid.length} bytes)`,
    model: valid.slice(0, length as number),
    beside: {},
    reader: /truncated|not an ONNX model/,
  }));
}

/** Every case: broken bytes, broken graphs, hostile dimensions, hostile external data. */
export function malformedOnnxCases(seed = 1): MalformedCase[] {
  const rng = new Rng(seed);
  const random = (n: number) => Uint8Array.from({ length: n }, () => rng.int(256));
  const external = (entries: Record<string, string>) => baseModel({ weights: { external: entries } });
  const noSide = {};
  return [
    { name: 'zero-bytes', problem: 'an empty file', model: new Uint8Array(0), beside: noSide, reader: /file is empty/ },
    ...[64, 4096, 65536].map((n): MalformedCase => ({
      name: `random-${n}`, problem: `${n} random bytes (seed ${seed})`, model: random(n), beside: noSide, reader: /not an ONNX model|truncated/,
    })),
    ...truncations(baseModel(), 'base'),
    {
      name: 'length-prefix-2gb', problem: 'a graph field that claims 2 GB and holds 4 bytes',
      model: concat([key(1, 0), varint(8), key(7, 2), varint(2 ** 31 - 1), new Uint8Array([1, 2, 3, 4])]), beside: noSide, reader: /truncated|not an ONNX model/,
    },
    {
      name: 'node-cycle', problem: 'Add reads the output of a Relu that reads the output of the Add',
      model: baseModel({
        extraNodes: [
          { name: 'add', opType: 'Add', input: ['features', 'loop'], output: ['sum'] },
          { name: 'relu', opType: 'Relu', input: ['sum'], output: ['loop'] },
        ],
        gemmInput: 'sum',
      }),
      beside: noSide, reader: /cycle/,
    },
    {
      name: 'duplicate-producer', problem: 'two nodes produce the same value',
      model: baseModel({ extraNodes: [{ name: 'again', opType: 'Relu', input: ['input'], output: ['features'] }] }),
      beside: noSide, reader: /produced twice/,
    },
    { name: 'unknown-op', problem: "an op that does not exist ('NoSuchOp' in the default domain)", model: baseModel({ firstOp: 'NoSuchOp' }), beside: noSide, reader: 'reads' },
    { name: 'unsupported-opset', problem: 'opset 99', model: baseModel({ opset: 99 }), beside: noSide, reader: /unsupported opset 99/ },
    { name: 'unknown-element-type', problem: 'input of element type 999', model: baseModel({ inputElemType: 999 }), beside: noSide, reader: /unknown element type 999/ },
    { name: 'dim-3e9', problem: 'an input that declares a dimension of 3e9', model: baseModel({ inputDims: ['batch', 3, 3e9, 16] }), beside: noSide, reader: /declares dimension 3000000000/ },
    { name: 'dim-2^60', problem: 'a dimension of 2^60, beyond exact doubles', model: baseModel({ inputDims: ['batch', 3, 16, 2 ** 60] }), beside: noSide, reader: /declares dimension/ },
    { name: 'dim-negative', problem: 'a dimension of -5', model: baseModel({ inputDims: ['batch', -5, 16, 16] }), beside: noSide, reader: /declares dimension -5/ },
    { name: 'initializer-dims-3e9', problem: 'a weight of dims [3e9, 3] holding 30 floats', model: baseModel({ weights: { dims: [3e9, 3] } }), beside: noSide, reader: /holds 120 bytes, expected/ },
    { name: 'deep-nesting', problem: 'If subgraphs nested 5000 deep', model: nestedModel(5000), beside: noSide, reader: /nested/ },
    { name: 'external-folder', problem: 'external data whose location is a folder', model: external({ location: 'weights' }), beside: { weights: { kind: 'folder' } }, reader: /'weights' is a folder/ },
    { name: 'external-dot', problem: "external data at '.', the model's own folder", model: external({ location: '.' }), beside: noSide, reader: /'\.' is a folder/ },
    { name: 'external-missing', problem: 'external data in a file that does not exist', model: external({ location: 'missing.bin' }), beside: noSide, reader: /'missing\.bin' does not exist/ },
    { name: 'external-traversal', problem: "external data at '../outside.bin'", model: external({ location: '../outside.bin' }), beside: noSide, reader: /leaves the model's folder/ },
    { name: 'external-absolute', problem: 'external data at /etc/passwd', model: external({ location: '/etc/passwd' }), beside: noSide, reader: /is absolute/ },
    {
      name: 'external-link-outside', problem: 'external data through a link to /etc/passwd',
      model: external({ location: 'w.bin' }), beside: { 'w.bin': { kind: 'symlink', target: '/etc/passwd' } }, reader: /through a link/,
    },
    {
      name: 'external-link-loop', problem: 'external data through a link to itself',
      model: external({ location: 'loop.bin' }), beside: { 'loop.bin': { kind: 'symlink', target: 'loop.bin' } }, reader: /ELOOP|loop of symbolic links/,
    },
    { name: 'external-fifo', problem: 'external data in a named pipe (reading it would wait forever)', model: external({ location: 'pipe.bin' }), beside: { 'pipe.bin': { kind: 'fifo' } }, reader: /not a regular file/ },
    { name: 'external-short', problem: 'external data file shorter than the tensor', model: external({ location: 'w.bin' }), beside: { 'w.bin': new Uint8Array(7) }, reader: /too short/ },
    { name: 'external-bad-offset', problem: "external data offset '1e3'", model: external({ location: 'w.bin', offset: '1e3' }), beside: { 'w.bin': new Uint8Array(2000) }, reader: /invalid offset or length/ },
    { name: 'external-huge-length', problem: 'external data length of 10^20 bytes', model: external({ location: 'w.bin', length: '100000000000000000000' }), beside: { 'w.bin': new Uint8Array(120) }, reader: /invalid offset or length/ },
    { name: 'external-no-location', problem: 'external data without a location', model: external({ offset: '0' }), beside: noSide, reader: /has no location/ },
  ];
}

/**
 * Writes a case into `dir` as `modelName` with its side entries. Returns the model's path, or a reason the case
 * cannot be made here (no mkfifo).
 */
export function writeCase(c: MalformedCase, dir: string, modelName = 'model.onnx'): { file: string } | { skipped: string } {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, entry] of Object.entries(c.beside)) {
    const target = path.join(dir, name);
    fs.rmSync(target, { recursive: true, force: true });
    if (entry instanceof Uint8Array) fs.writeFileSync(target, entry);
    else if (entry.kind === 'folder') fs.mkdirSync(target);
    else if (entry.kind === 'symlink') fs.symlinkSync(entry.target, target);
    else {
      const made = spawnSync('mkfifo', [target]);
      if (made.status !== 0) return { skipped: `mkfifo is not available (${made.error?.message ?? String(made.stderr).trim()})` };
    }
  }
  const file = path.join(dir, modelName);
  fs.writeFileSync(file, c.model);
  return { file };
}

// Protobuf by hand, for shapes onnx-proto's encoder would need deep recursion (or refuse) to produce.

function varint(n: number): Uint8Array {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

function key(field: number, wireType: number): Uint8Array {
  return varint(field * 8 + wireType);
}

function text(field: number, s: string): Uint8Array {
  const bytes = Buffer.from(s, 'utf8');
  return concat([key(field, 2), varint(bytes.length), bytes]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/**
 * A model whose graph holds an If whose then_branch holds an If ... `depth` levels deep. Each level's nested message
 * is written last in its parent, so the whole file is the levels' headers in order followed by the innermost graph;
 * the lengths are computed inside out first (linear time, no recursion).
 */
function nestedModel(depth: number): Uint8Array {
  const heads: Uint8Array[] = [];
  let inner = 0; // bytes of the graph one level down; the innermost graph is empty
  for (let level = 0; level < depth; level++) {
    const attrHead = concat([text(1, 'then_branch'), key(20, 0), varint(onnx.AttributeProto.AttributeType.GRAPH), key(6, 2), varint(inner)]);
    const attrLength = attrHead.length + inner;
    const nodeHead = concat([text(4, 'If'), key(5, 2), varint(attrLength)]);
    const nodeLength = nodeHead.length + attrLength;
    const graphHead = concat([key(1, 2), varint(nodeLength)]);
    heads.push(concat([graphHead, nodeHead, attrHead]));
    inner = graphHead.length + nodeLength;
  }
  const opset = concat([key(2, 0), varint(17)]);
  return concat([key(1, 0), varint(8), key(8, 2), varint(opset.length), opset, key(7, 2), varint(inner), ...heads.reverse()]);
}
