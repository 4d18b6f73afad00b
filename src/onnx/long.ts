/**
 * protobufjs gives 64-bit integers as Long objects (or plain numbers when `long` is absent) and accepts
 * numbers or {low, high} pairs when encoding. These helpers convert at that boundary.
 */
export interface LongLike {
  low: number;
  high: number;
  unsigned?: boolean;
  toString(): string;
}

export function int64ToNumber(v: number | LongLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : Number(int64ToBigInt(v));
}

export function int64ToBigInt(v: number | LongLike | null | undefined): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(v);
  const bits = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned ? bits : BigInt.asIntN(64, bits);
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/**
 * An int64 for the encoder. Numbers at or beyond ±2^63 (INT64_MAX read back as a double is 2^63) saturate to the
 * int64 range instead of wrapping around, so sentinel values such as Slice's "to the end" survive a round trip.
 */
export function int64ForEncode(v: number): number | { low: number; high: number; unsigned: boolean } {
  if (Number.isSafeInteger(v)) return v;
  let b = BigInt(Math.trunc(v));
  if (b > INT64_MAX) b = INT64_MAX;
  if (b < INT64_MIN) b = INT64_MIN;
  const u = BigInt.asUintN(64, b);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: false };
}
