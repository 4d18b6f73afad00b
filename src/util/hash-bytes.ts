import type { Hash } from 'node:crypto';

/** The most bytes handed to one Hash.update: it refuses more than 2^31 - 1 ("data is too long"). */
const HASH_CHUNK = 1 << 28;

/** Feeds `bytes` to `hash` in pieces, so that a split of several gigabytes hashes like a small one. */
export function updateHash(hash: Hash, bytes: Uint8Array, chunk = HASH_CHUNK): Hash {
  for (let at = 0; at < bytes.length; at += chunk) hash.update(bytes.subarray(at, Math.min(bytes.length, at + chunk)));
  return hash;
}
