import type { Attribute } from './graph';
import type { TensorData } from './tensor';

export type { Attribute };

/** Attribute values as written in the DSL: plain numbers, strings and arrays, typed by their JavaScript type. */
export type AttributeValue = number | string | number[] | string[] | TensorData | Attribute;

/** Integer-valued attributes must be written as whole numbers; anything else in a numeric slot is a float. */
export function toAttribute(value: AttributeValue, asFloat = false): Attribute {
  if (typeof value === 'number') return asFloat || !Number.isInteger(value) ? { type: 'float', value } : { type: 'int', value };
  if (typeof value === 'string') return { type: 'string', value };
  if (Array.isArray(value)) {
    if (value.length > 0 && typeof value[0] === 'string') return { type: 'strings', value: value as string[] };
    const nums = value as number[];
    return asFloat || nums.some((v) => !Number.isInteger(v)) ? { type: 'floats', value: nums } : { type: 'ints', value: nums };
  }
  if ('type' in value && 'value' in value) return value;
  return { type: 'tensor', value: value as TensorData };
}

/** A float attribute, for values that happen to be whole numbers (Gemm's alpha = 1.0). */
export function floatAttr(value: number): Attribute {
  return { type: 'float', value };
}
