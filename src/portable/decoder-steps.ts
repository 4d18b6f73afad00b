/**
 * A captioner's exported decoder-step model as the search's step function, for onnxruntime-node and -web alike (it
 * imports only onnxruntime-common's types; the caller passes its runtime's Tensor class).
 *
 * The contract between a captioner's two generation models, whatever the decoder:
 * - the encoder takes `input` (images) and returns the decoder's starting state: any named tensors;
 * - the step model takes `token` (int64 [batch]) and those tensors by name, and returns `log_probs` [batch, V], for
 *   each recurrent input X its new value `X_next` (h, c), and optionally `attention` [batch, regions]. Inputs with
 *   no `X_next` (features, attention keys) are the image's and pass unchanged from step to step.
 * Each state tensor has one axis whose dimension is named `batch` (h and c of an LSTM: [layers, batch, H]): beams
 * are rows along it.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import type { StepModel } from './caption-search';
import type { TensorClass } from './tensor-class';
export type { TensorClass };

export type DecoderState = Record<string, Tensor>;

/** The step model's state inputs (all but `token`) and, for each, the axis named `batch` (-1 where none is). */
function stepStateAxes(session: InferenceSession): Map<string, number> {
  const axes = new Map<string, number>();
  for (const meta of session.inputMetadata) {
    if (meta.name === 'token') continue;
    axes.set(meta.name, meta.isTensor ? meta.shape.indexOf('batch') : -1);
  }
  return axes;
}

/** Checks that a session has the step model's inputs and outputs; returns what is wrong, or undefined. */
export function stepModelProblem(session: InferenceSession, initialState: readonly string[]): string | undefined {
  if (!session.inputNames.includes('token')) return "the captioner's step model has no input `token`";
  if (!session.outputNames.includes('log_probs')) return "the captioner's step model has no output `log_probs`";
  const state = session.inputNames.filter((n) => n !== 'token');
  const missing = state.filter((n) => !initialState.includes(n));
  if (missing.length > 0) return `the captioner's step model needs ${missing.join(', ')}, which its encoder does not return`;
  // Beams are rows along the batch axis: a state without one could not be reordered, only silently mixed up.
  const axes = stepStateAxes(session);
  const unbatched = state.filter((n) => axes.get(n)! < 0);
  if (unbatched.length > 0) return `the captioner's step model's inputs ${unbatched.join(', ')} have no dimension named 'batch'`;
  // A recurrent state whose next value is named otherwise would be fed its first value at every step.
  const next = session.outputNames.filter((n) => n.endsWith('_next'));
  if (next.length === 0) return "the captioner's step model returns no next state (outputs named <input>_next)";
  const orphans = next.filter((n) => !state.includes(n.slice(0, -'_next'.length)));
  if (orphans.length > 0) return `the captioner's step model's outputs ${orphans.join(', ')} match no input`;
  return undefined;
}

export function decoderSteps(session: InferenceSession, vocabularySize: number, TensorOf: TensorClass): StepModel<DecoderState> {
  const axes = stepStateAxes(session);
  const recurrent = [...axes.keys()].filter((n) => session.outputNames.includes(`${n}_next`));
  const withAttention = session.outputNames.includes('attention');
  return {
    vocabularySize,
    async step(tokens, state) {
      const feeds: DecoderState = { token: new TensorOf('int64', BigInt64Array.from(tokens, BigInt), [tokens.length]) };
      for (const name of axes.keys()) feeds[name] = state[name]!;
      const out = await session.run(feeds);
      const next: DecoderState = { ...state };
      for (const name of recurrent) next[name] = out[`${name}_next`]!;
      return {
        logProbs: out.log_probs!.data as Float32Array,
        state: next,
        ...(withAttention ? { attention: out.attention!.data as Float32Array } : {}),
      };
    },
    select(state, rows) {
      const picked: DecoderState = {};
      for (const [name, t] of Object.entries(state)) if (axes.has(name)) picked[name] = gatherRows(t, rows, axes.get(name)!, TensorOf);
      return picked;
    },
  };
}

/** The rows `rows` (in that order, repeats allowed) of a float tensor along `axis`. */
function gatherRows(t: Tensor, rows: readonly number[], axis: number, TensorOf: TensorClass): Tensor {
  const dims = [...t.dims];
  const data = t.data as Float32Array;
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const count = dims[axis]!;
  const bad = rows.find((r) => !Number.isInteger(r) || r < 0 || r >= count);
  if (bad !== undefined) throw new RangeError(`row ${bad} of a state with ${count} rows along axis ${axis}`);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(outer * rows.length * inner);
  for (let o = 0; o < outer; o++) {
    rows.forEach((r, i) => out.set(data.subarray((o * count + r) * inner, (o * count + r + 1) * inner), (o * rows.length + i) * inner));
  }
  dims[axis] = rows.length;
  return new TensorOf('float32', out, dims);
}
