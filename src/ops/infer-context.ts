import type { Node } from '../ir/graph';
import type { TensorData } from '../ir/tensor';
import { Dim, formatShape } from '../ir/shape';
import { InferContext, ShapeError, TypeInfo } from './types';

/** An InferContext over an IR node; `constantOf` tells which input values are known at build time. */
export function inferContextFor(
  node: Node, constantOf: (name: string) => TensorData | undefined, shapeOf: (name: string) => Dim[] | undefined = () => undefined,
): InferContext {
  const inputs = node.inputs.map((v) => (v?.dtype !== undefined && v.shape !== undefined ? { dtype: v.dtype, shape: v.shape } : undefined));
  const fail = (message: string): never => {
    throw new ShapeError(message);
  };
  const attr = node.attributes;
  return {
    opType: node.opType,
    inputs,
    outputCount: node.outputs.length,
    input(index: number, role: string): TypeInfo {
      const t = inputs[index];
      if (t === undefined) return fail(`${role} (input ${index}) is missing or has no known shape`);
      return t;
    },
    optionalInput: (index) => inputs[index],
    constant: (index) => {
      const v = node.inputs[index];
      return v === undefined ? undefined : constantOf(v.name);
    },
    shapeValue: (index) => {
      const v = node.inputs[index];
      if (v === undefined) return undefined;
      const c = constantOf(v.name);
      return c !== undefined ? c.toNumbers() : shapeOf(v.name);
    },
    int(name, fallback) {
      return this.optionalInt(name) ?? fallback;
    },
    optionalInt(name) {
      const a = attr.get(name);
      if (a === undefined) return undefined;
      if (a.type !== 'int') fail(`attribute ${name} must be an integer`);
      return a.value as number;
    },
    float(name, fallback) {
      const a = attr.get(name);
      if (a === undefined) return fallback;
      if (a.type !== 'float' && a.type !== 'int') fail(`attribute ${name} must be a number`);
      return a.value as number;
    },
    string(name, fallback) {
      const a = attr.get(name);
      if (a === undefined) return fallback;
      if (a.type !== 'string') fail(`attribute ${name} must be a string`);
      return a.value as string;
    },
    ints(name) {
      const a = attr.get(name);
      if (a === undefined) return undefined;
      if (a.type !== 'ints') fail(`attribute ${name} must be a list of integers`);
      return a.value as number[];
    },
    tensor(name) {
      const a = attr.get(name);
      if (a === undefined) return undefined;
      if (a.type !== 'tensor') fail(`attribute ${name} must be a tensor`);
      return a.value as TensorData;
    },
    fail,
  };
}

export function describe(t: TypeInfo | undefined): string {
  return t === undefined ? '?' : `${t.dtype}${formatShape(t.shape)}`;
}
