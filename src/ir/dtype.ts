/** Element types, named as in numpy/PyTorch and numbered as ONNX's TensorProto.DataType. */
const DTYPE_CODES = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9, float16: 10,
  float64: 11, uint32: 12, uint64: 13, complex64: 14, complex128: 15, bfloat16: 16, float8e4m3fn: 17,
  float8e4m3fnuz: 18, float8e5m2: 19, float8e5m2fnuz: 20, uint4: 21, int4: 22,
} as const;

export type DType = keyof typeof DTYPE_CODES;

const BY_CODE = new Map<number, DType>(Object.entries(DTYPE_CODES).map(([name, code]) => [code, name as DType]));

export function dtypeFromCode(code: number): DType {
  const dtype = BY_CODE.get(code);
  if (dtype === undefined) throw new Error(`unknown ONNX data type ${code}`);
  return dtype;
}

export function dtypeCode(dtype: DType): number {
  return DTYPE_CODES[dtype];
}

/** Bytes per element; 4-bit types report 0.5 (they are packed two per byte). Strings have no fixed size. */
export function dtypeBytes(dtype: DType): number {
  switch (dtype) {
    case 'bool': case 'uint8': case 'int8': case 'float8e4m3fn': case 'float8e4m3fnuz': case 'float8e5m2':
    case 'float8e5m2fnuz':
      return 1;
    case 'uint16': case 'int16': case 'float16': case 'bfloat16':
      return 2;
    case 'float32': case 'int32': case 'uint32':
      return 4;
    case 'float64': case 'int64': case 'uint64': case 'complex64':
      return 8;
    case 'complex128':
      return 16;
    case 'uint4': case 'int4':
      return 0.5;
    case 'string':
      return NaN;
  }
}

export function isFloatingDType(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16' || dtype.startsWith('float8');
}

function isIntegerDType(dtype: DType): boolean {
  return /^u?int\d+$/.test(dtype);
}
