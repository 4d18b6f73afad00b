import { DType, dtypeBytes } from './dtype';
import { numElements } from './shape';

export type NumericArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;

/**
 * A constant tensor held on the host: initializers, constants, parameter values. Its elements are kept as
 * little-endian bytes (ONNX's raw_data layout), so any element type round-trips unchanged; `typed()` gives a
 * typed-array view for the types JavaScript has.
 */
export class TensorData {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly bytes: Uint8Array;
  readonly strings: readonly string[] | undefined;

  constructor(dtype: DType, dims: readonly number[], bytes: Uint8Array, strings?: readonly string[]) {
    this.dtype = dtype;
    this.dims = dims;
    this.strings = strings;
    if (dtype === 'string') {
      if (strings === undefined || strings.length !== numElements(dims)) {
        throw new Error(`string tensor of shape [${dims.join(', ')}] needs ${numElements(dims)} strings`);
      }
      this.bytes = new Uint8Array(0);
      return;
    }
    const expected = Math.ceil(numElements(dims) * dtypeBytes(dtype));
    if (bytes.byteLength !== expected) {
      throw new Error(`${dtype} tensor of shape [${dims.join(', ')}] needs ${expected} bytes, got ${bytes.byteLength}`);
    }
    this.bytes = bytes;
  }

  get size(): number {
    return numElements(this.dims);
  }

  static fromArray(dtype: DType, dims: readonly number[], values: ArrayLike<number> | ArrayLike<bigint>): TensorData {
    const typed = allocTyped(dtype, values.length);
    if (typed instanceof BigInt64Array || typed instanceof BigUint64Array) {
      for (let i = 0; i < values.length; i++) typed[i] = BigInt(values[i]!);
    } else if (dtype === 'bool') {
      for (let i = 0; i < values.length; i++) typed[i] = values[i] ? 1 : 0;
    } else {
      for (let i = 0; i < values.length; i++) typed[i] = Number(values[i]!);
    }
    return TensorData.fromTyped(dtype, dims, typed);
  }

  /** Wraps a typed array without copying it. */
  static fromTyped(dtype: DType, dims: readonly number[], typed: NumericArray): TensorData {
    return new TensorData(dtype, dims, new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
  }

  static float32(dims: readonly number[], values: ArrayLike<number>): TensorData {
    return TensorData.fromTyped('float32', dims, Float32Array.from(values));
  }

  static int64(dims: readonly number[], values: ArrayLike<number>): TensorData {
    return TensorData.fromArray('int64', dims, values);
  }

  /** A typed-array view of the elements (copied once if the bytes are not aligned for the type). */
  typed(): NumericArray {
    const ctor = typedConstructor(this.dtype);
    const width = ctor.BYTES_PER_ELEMENT;
    let bytes = this.bytes;
    // Copy when unaligned (new Uint8Array(view) copies; Buffer#slice would only make another view).
    if (bytes.byteOffset % width !== 0) bytes = new Uint8Array(bytes);
    return new ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / width);
  }

  /** The elements as JavaScript numbers (int64 values beyond 2^53 lose precision). */
  toNumbers(): number[] {
    return Array.from(this.typed() as ArrayLike<number | bigint>, (v) => Number(v));
  }
}

type TypedConstructor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): NumericArray;
  new (length: number): NumericArray; BYTES_PER_ELEMENT: number };

function typedConstructor(dtype: DType): TypedConstructor {
  switch (dtype) {
    case 'float32': return Float32Array;
    case 'float64': return Float64Array;
    case 'int8': return Int8Array;
    case 'uint8': case 'bool': return Uint8Array;
    case 'int16': return Int16Array;
    case 'uint16': case 'float16': case 'bfloat16': return Uint16Array;
    case 'int32': return Int32Array;
    case 'uint32': return Uint32Array;
    case 'int64': return BigInt64Array;
    case 'uint64': return BigUint64Array;
    default: throw new Error(`no typed array holds ${dtype} elements`);
  }
}

export function allocTyped(dtype: DType, length: number): NumericArray {
  return new (typedConstructor(dtype))(length);
}
