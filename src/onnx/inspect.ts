import { isFloatingDType } from '../ir/dtype';
import type { Graph } from '../ir/graph';
import type { Model } from '../ir/model';
import { formatShape } from '../ir/shape';

export interface ModelReport {
  irVersion: number;
  producer: string;
  opsets: { domain: string; version: number }[];
  inputs: { name: string; type: string }[];
  outputs: { name: string; type: string }[];
  nodeCount: number;
  opHistogram: [string, number][];
  initializerCount: number;
  initializerBytes: number;
  /** Elements of weight-like initializers: not integer shape/index constants, not batch-norm running statistics. */
  parameterCount: number;
  metadata: Record<string, string>;
}

/** What `deepvision inspect` reports about any ONNX model. */
export function inspectModel(model: Model): ModelReport {
  const histogram = new Map<string, number>();
  countOps(model.graph, histogram);
  const g = model.graph;
  const runningStats = new Set<string>();
  for (const n of g.nodes) {
    if (n.opType === 'BatchNormalization') [3, 4].forEach((i) => n.inputs[i] && runningStats.add(n.inputs[i]!.name));
  }
  let parameterCount = 0;
  let initializerBytes = 0;
  for (const [name, t] of g.initializers) {
    initializerBytes += t.dtype === 'string' ? 0 : t.bytes.byteLength;
    const weightLike = isFloatingDType(t.dtype) || t.dtype === 'int8' || t.dtype === 'uint8' || t.dtype === 'int4' || t.dtype === 'uint4';
    if (weightLike && !runningStats.has(name)) parameterCount += t.size;
  }
  const typeOf = (v: { dtype?: string; shape?: readonly (number | string)[]; otherType?: unknown }) =>
    v.otherType ? 'non-tensor' : `${v.dtype ?? '?'} ${formatShape(v.shape)}`;
  const initializerNames = new Set(g.initializers.keys());
  return {
    irVersion: model.irVersion,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' ') || '(unknown)',
    opsets: model.opsetImports.map((o) => ({ domain: o.domain || 'ai.onnx', version: o.version })),
    inputs: g.inputs.filter((v) => !initializerNames.has(v.name)).map((v) => ({ name: v.name, type: typeOf(v) })),
    outputs: g.outputs.map((v) => ({ name: v.name, type: typeOf(v) })),
    nodeCount: [...histogram.values()].reduce((a, b) => a + b, 0),
    opHistogram: [...histogram].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
    initializerCount: g.initializers.size,
    initializerBytes,
    parameterCount,
    metadata: Object.fromEntries(model.metadata),
  };
}

function countOps(graph: Graph, histogram: Map<string, number>): void {
  for (const n of graph.nodes) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    histogram.set(key, (histogram.get(key) ?? 0) + 1);
    for (const a of n.attributes.values()) {
      if (a.type === 'graph') countOps(a.value, histogram);
      if (a.type === 'graphs') a.value.forEach((sub) => countOps(sub, histogram));
    }
  }
}

export function formatReport(file: string, r: ModelReport): string {
  const fmt = (n: number) => n.toLocaleString('en-US');
  const width = Math.max(4, ...[...r.inputs, ...r.outputs].map((v) => v.name.length)) + 2;
  const lines = [
    `${file}`,
    `  IR version ${r.irVersion}, produced by ${r.producer}`,
    `  Opsets: ${r.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}`,
    'Inputs:',
    ...r.inputs.map((v) => `  ${v.name.padEnd(width)}${v.type}`),
    'Outputs:',
    ...r.outputs.map((v) => `  ${v.name.padEnd(width)}${v.type}`),
    `Nodes: ${fmt(r.nodeCount)}`,
    ...r.opHistogram.map(([op, n]) => `  ${op.padEnd(28)}${String(n).padStart(6)}`),
    `Initializers: ${fmt(r.initializerCount)} (${(r.initializerBytes / 1e6).toFixed(2)} MB)`,
    `Parameters: ${fmt(r.parameterCount)} (weight-like initializer elements; shape constants and batch-norm running statistics excluded)`,
  ];
  const meta = Object.entries(r.metadata);
  if (meta.length > 0) lines.push('Metadata:', ...meta.map(([k, v]) => `  ${k}: ${v}`));
  return lines.join('\n');
}
