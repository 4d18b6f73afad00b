import type { Model } from '../ir/model';
import { decodeModel } from '../onnx/read';
import { encodeModel } from '../onnx/write';

/**
 * The bytes of `model` after a rewrite pass for one provider's sessions: the pass runs on a copy (`model` and the
 * artifacts on disk stay as they are) and returns how many nodes it rewrote; with none, the plain encoding.
 */
export function rewrittenBytes(model: Model, pass: (copy: Model) => number): { bytes: Uint8Array; rewritten: number } {
  const bytes = encodeModel(model);
  const copy = decodeModel(bytes);
  const rewritten = pass(copy);
  return rewritten === 0 ? { bytes, rewritten } : { bytes: encodeModel(copy), rewritten };
}
