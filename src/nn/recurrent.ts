/**
 * Recurrent layers with PyTorch's semantics, gate order and parameter names (`weight_ih_l0`, `bias_hh_l1`, ...),
 * so a torch.nn.LSTM / GRU / LSTMCell / GRUCell state_dict maps onto them key for key. They are unrolled over
 * time into standard ONNX ops (Gemm, Split, Sigmoid, Tanh, Mul, Add, Where, Concat, Reshape) rather than ONNX's
 * LSTM/GRU ops, which have no gradient rule here and are missing from some execution providers: the unrolled graph
 * differentiates with the ordinary rules and runs wherever the forward does. The sequence length is therefore a
 * build-time number; the batch may be symbolic.
 */
import * as F from '../dsl/functional';
import { Tensor } from '../dsl/builder';
import { isFloatingDType } from '../ir/dtype';
import { Dim, dimsCompatible, formatShape } from '../ir/shape';
import { Init, uniform } from './init';
import { Module } from './module';
import { Parameter } from './parameter';

export interface RecurrentOptions {
  /** Stacked layers (default 1); layer k's parameters end in `_l<k>`. */
  numLayers?: number;
  /** With false, no bias_ih / bias_hh parameters (default true). */
  bias?: boolean;
  /**
   * Input [N, T, F] and output [N, T, H] when true (the default here, unlike PyTorch's false: deepvision puts the
   * batch first everywhere); [T, N, F] and [T, N, H] when false. h and c are [layers, N, H] either way.
   */
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training graphs (PyTorch's `dropout`). */
  dropout?: number;
}

export interface RecurrentForwardOptions {
  /** Initial hidden state [layers, N, H] (default zeros). */
  h0?: Tensor;
  /**
   * [N, T] (or [T, N] when not batchFirst), float or bool, 1 for real steps and 0 for padding: the equivalent of
   * pack_padded_sequence. Where it is 0 the state is carried over unchanged and the output is 0, so the final
   * state is each sequence's state at its last real step, and padding gets no gradient.
   */
  mask?: Tensor;
}

export interface LSTMForwardOptions extends RecurrentForwardOptions {
  /** Initial cell state [layers, N, H] (default zeros); give h0 and c0 together or neither, as PyTorch's hx. */
  c0?: Tensor;
}

export interface LSTMOutput {
  /** The last layer's hidden state at every step: [N, T, H] ([T, N, H] when not batchFirst). */
  output: Tensor;
  /** Final hidden state of every layer, [layers, N, H]. */
  h: Tensor;
  /** Final cell state of every layer, [layers, N, H]. */
  c: Tensor;
}

export interface GRUOutput {
  output: Tensor;
  h: Tensor;
}

/** PyTorch's initialization of every recurrent weight and bias: uniform(-1/sqrt(hidden), 1/sqrt(hidden)). */
function recurrentInit(hiddenSize: number): Init {
  const bound = 1 / Math.sqrt(hiddenSize);
  return uniform(-bound, bound);
}

function checkSizes(kind: string, inputSize: number, hiddenSize: number): void {
  for (const [name, v] of [['inputSize', inputSize], ['hiddenSize', hiddenSize]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${kind}: ${name} must be a positive integer, got ${v}`);
  }
}

/** One layer's parameters, as the properties weight_ih_l<k> etc. of the module hold them. */
interface LayerWeights {
  weightIh: Parameter;
  weightHh: Parameter;
  biasIh: Parameter | undefined;
  biasHh: Parameter | undefined;
}

/** The part LSTM and GRU share: parameters, input and state checks, and the loop over layers and time. */
abstract class RecurrentStack extends Module {
  readonly numLayers: number;
  readonly batchFirst: boolean;
  readonly dropout: number;
  protected readonly layerWeights: LayerWeights[] = [];

  constructor(kind: string, readonly inputSize: number, readonly hiddenSize: number, gates: number, options: RecurrentOptions) {
    super();
    checkSizes(kind, inputSize, hiddenSize);
    this.numLayers = options.numLayers ?? 1;
    this.batchFirst = options.batchFirst ?? true;
    this.dropout = options.dropout ?? 0;
    if (!Number.isInteger(this.numLayers) || this.numLayers < 1) throw new Error(`${kind}: numLayers must be a positive integer, got ${this.numLayers}`);
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new Error(`${kind}: dropout must be in [0, 1), got ${this.dropout}`);
    const init = recurrentInit(hiddenSize);
    // Own properties in PyTorch's state_dict order, so the parameters are named and listed as torch.nn.LSTM's.
    const self = this as unknown as Record<string, Parameter>;
    for (let k = 0; k < this.numLayers; k++) {
      const layerInput = k === 0 ? inputSize : hiddenSize;
      const weightIh = self[`weight_ih_l${k}`] = new Parameter([gates * hiddenSize, layerInput], init);
      const weightHh = self[`weight_hh_l${k}`] = new Parameter([gates * hiddenSize, hiddenSize], init);
      let biasIh: Parameter | undefined;
      let biasHh: Parameter | undefined;
      if (options.bias !== false) {
        biasIh = self[`bias_ih_l${k}`] = new Parameter([gates * hiddenSize], init);
        biasHh = self[`bias_hh_l${k}`] = new Parameter([gates * hiddenSize], init);
      }
      this.layerWeights.push({ weightIh, weightHh, biasIh, biasHh });
    }
  }

  /** The input as [N, T, F] with T static, and the mask as bool [N, T] pieces of [N, 1], one per step. */
  protected prepareInput(op: string, x: Tensor, mask: Tensor | undefined): { input: Tensor; steps: number; batch: Dim; stepMasks: Tensor[] | undefined } {
    const b = x.builder;
    const layout = this.batchFirst ? '[N, T, F]' : '[T, N, F]';
    if (x.rank !== 3 || !isFloatingDType(x.dtype)) throw b.error(op, `input must be a float tensor ${layout}, got ${x.dtype}${formatShape(x.shape)}`);
    const input = this.batchFirst ? x : F.transpose(x, [1, 0, 2]);
    const [batch, steps, features] = input.shape as [Dim, Dim, Dim];
    if (typeof steps !== 'number' || steps < 1) {
      throw b.error(op, `the sequence length (axis ${this.batchFirst ? 1 : 0} of ${layout}) must be a static positive number, got ${x.dtype}${formatShape(x.shape)}${this.batchFirst ? '' : ' (batchFirst is false)'}`);
    }
    if (features !== this.inputSize) throw b.error(op, `input has ${features} features, the layer expects inputSize ${this.inputSize} (input ${x.dtype}${formatShape(x.shape)}, ${layout})`);
    if (mask === undefined) return { input, steps, batch, stepMasks: undefined };
    const maskLayout = this.batchFirst ? '[N, T]' : '[T, N]';
    const batchFirstMask = mask.rank === 2 && !this.batchFirst ? F.transpose(mask, [1, 0]) : mask;
    const [maskBatch, maskSteps] = batchFirstMask.shape as [Dim, Dim];
    if (mask.rank !== 2 || maskSteps !== steps || !dimsCompatible(maskBatch, batch)) {
      throw b.error(op, `mask must be ${maskLayout} = ${formatShape(this.batchFirst ? [batch, steps] : [steps, batch])} like the input, got ${mask.dtype}${formatShape(mask.shape)}`);
    }
    const valid = mask.dtype === 'bool' ? batchFirstMask : F.greater(batchFirstMask, 0);
    return { input, steps, batch, stepMasks: steps === 1 ? [valid] : F.split(valid, steps, 1) };
  }

  /** An initial state [layers, N, H] as one [N, H] tensor per layer. */
  protected statePerLayer(op: string, name: string, state: Tensor, x: Tensor, batch: Dim): Tensor[] {
    const b = x.builder;
    const expected = [this.numLayers, batch, this.hiddenSize];
    const ok = state.rank === 3 && state.dtype === x.dtype && expected.every((d, i) => dimsCompatible(state.shape[i]!, d));
    if (!ok) throw b.error(op, `${name} must be ${x.dtype}[layers, N, H] = ${formatShape(expected)}, got ${state.dtype}${formatShape(state.shape)}`);
    if (this.numLayers === 1) return [F.squeeze(state, [0])];
    return F.split(state, this.numLayers, 0).map((s) => F.squeeze(s, [0]));
  }

  /** [layers, N, H] from one [N, H] tensor per layer. */
  protected stackLayers(states: Tensor[]): Tensor {
    const stacked = states.map((s) => F.unsqueeze(s, [0]));
    return stacked.length === 1 ? stacked[0]! : F.concat(stacked, 0);
  }

  /**
   * Runs every layer over the sequence. `step` advances one layer by one step from its precomputed input
   * projection (x_t W_ih^T + biases, [N, gates*H]); the state is any tuple of [N, H] tensors, undefined while it
   * is still the zero initial state (so step 0 skips the recurrent GEMM instead of multiplying zeros).
   */
  protected runLayers<S extends (Tensor | undefined)[]>(
    input: Tensor, steps: number, stepMasks: Tensor[] | undefined, initial: S[],
    inputBias: (layer: LayerWeights) => Tensor | undefined,
    step: (gates: Tensor, state: S, layer: LayerWeights) => S,
  ): { output: Tensor; finals: S[] } {
    const hidden = this.hiddenSize;
    const gates = this.layerWeights[0]!.weightIh.shape[0]!;
    let layerInput = input;
    const finals: S[] = [];
    this.layerWeights.forEach((layer, k) => {
      // One product projects every time step's input at once ([N, T, F] x W_ih^T, a single GEMM over the N*T
      // rows, and so is its weight gradient); the loop is left with h x W_hh^T.
      const projected = F.linear(layerInput, layer.weightIh, inputBias(layer));
      // Reshapes use 0 (copy the batch dim) rather than -1, so that a symbolic batch stays known to shape inference.
      const perStep = steps === 1 ? [F.reshape(projected, [0, gates])] : F.split(F.reshape(projected, [0, steps * gates]), steps, 1);
      let state = initial[k]!;
      const outputs: Tensor[] = [];
      perStep.forEach((stepGates, t) => {
        const next = step(stepGates, state, layer);
        const h = next[0]!;
        const valid = stepMasks?.[t];
        if (valid === undefined) {
          state = next;
          outputs.push(h);
          return;
        }
        // Padding: keep the previous state (zeros before the first real step) and output zeros.
        state = next.map((s, i) => F.where(valid, s!, state[i] ?? 0)) as S;
        outputs.push(F.where(valid, h, 0));
      });
      finals.push(state);
      // [N, T*H] with step t in columns t*H..(t+1)*H-1: the row-major layout of [N, T, H], so no transpose.
      let joined = outputs.length === 1 ? outputs[0]! : F.concat(outputs, 1);
      if (k < this.numLayers - 1 && this.dropout > 0) joined = F.dropout(joined, this.dropout);
      layerInput = F.reshape(joined, [0, steps, hidden]);
    });
    return { output: this.batchFirst ? layerInput : F.transpose(layerInput, [1, 0, 2]), finals };
  }
}

/** The next LSTM state from the gate pre-activations of the input (with both biases) and the previous state. */
function lstmStep(inputGates: Tensor, h: Tensor | undefined, c: Tensor | undefined, weightHh: Parameter): [Tensor, Tensor] {
  const b = inputGates.builder;
  // Gemm adds the input part as its C operand: one node per step for all four gates.
  const gates = h === undefined ? inputGates : b.op('Gemm', [h, F.asTensor(weightHh, b), inputGates], { transB: 1 }, 'lstmCell');
  const [i, f, g, o] = F.split(gates, 4, 1) as [Tensor, Tensor, Tensor, Tensor];
  const gatedInput = F.mul(F.sigmoid(i), F.tanh(g));
  const cNext = c === undefined ? gatedInput : F.add(F.mul(F.sigmoid(f), c), gatedInput);
  return [F.mul(F.sigmoid(o), F.tanh(cNext)), cNext];
}

/**
 * The next GRU state, PyTorch's formulation: r, z = sigmoid(x W_i{r,z} + b_i{r,z} + h W_h{r,z} + b_h{r,z}),
 * n = tanh(x W_in + b_in + r * (h W_hn + b_hn)), h' = (1 - z) * n + z * h, computed as n + z * (h - n).
 */
function gruStep(inputGates: Tensor, h: Tensor | undefined, weightHh: Parameter, biasHh: Parameter | undefined, hiddenSize: number): Tensor {
  const b = inputGates.builder;
  const bias = biasHh === undefined ? undefined : F.asTensor(biasHh, b);
  // With a zero state h W_hh^T vanishes and only b_hh remains.
  const recurrent = h === undefined ? bias : b.op('Gemm', [h, F.asTensor(weightHh, b), bias], { transB: 1 }, 'gruCell');
  const [inputRz, inputN] = F.split(inputGates, [2 * hiddenSize, hiddenSize], -1) as [Tensor, Tensor];
  const [recurrentRz, recurrentN] = recurrent === undefined ? [undefined, undefined] : F.split(recurrent, [2 * hiddenSize, hiddenSize], -1) as [Tensor, Tensor];
  const rz = F.sigmoid(recurrentRz === undefined ? inputRz : F.add(inputRz, recurrentRz));
  const [r, z] = F.split(rz, 2, 1) as [Tensor, Tensor];
  const n = F.tanh(recurrentN === undefined ? inputN : F.add(inputN, F.mul(r, recurrentN)));
  return h === undefined ? F.sub(n, F.mul(z, n)) : F.add(n, F.mul(z, F.sub(h, n)));
}

/**
 * Long short-term memory, as torch.nn.LSTM: gates i, f, g, o stacked in that order in weight_ih_l<k>
 * [4H, F or H], weight_hh_l<k> [4H, H], bias_ih_l<k> and bias_hh_l<k> [4H].
 * forward(x [N, T, F], { h0, c0, mask }) -> { output [N, T, H], h [layers, N, H], c [layers, N, H] };
 * forward(x, mask) is short for forward(x, { mask }).
 */
export class LSTM extends RecurrentStack {
  constructor(inputSize: number, hiddenSize: number, options: RecurrentOptions = {}) {
    super('LSTM', inputSize, hiddenSize, 4, options);
  }

  forward(x: Tensor, optionsOrMask: LSTMForwardOptions | Tensor = {}): LSTMOutput {
    const b = x.builder;
    const options = optionsOrMask instanceof Tensor ? { mask: optionsOrMask } : optionsOrMask;
    const { input, steps, batch, stepMasks } = this.prepareInput('lstm', x, options.mask);
    if ((options.h0 === undefined) !== (options.c0 === undefined)) throw b.error('lstm', 'give h0 and c0 together, or neither for zero initial states');
    const h0 = options.h0 && this.statePerLayer('lstm', 'h0', options.h0, input, batch);
    const c0 = options.c0 && this.statePerLayer('lstm', 'c0', options.c0, input, batch);
    const initial = this.layerWeights.map((_, k): [Tensor | undefined, Tensor | undefined] => [h0?.[k], c0?.[k]]);
    const { output, finals } = this.runLayers(input, steps, stepMasks, initial,
      // Both biases enter the gates the same way: add them once into the input projection.
      (layer) => (layer.biasIh === undefined ? undefined : F.add(layer.biasIh, layer.biasHh!)),
      (gates, [h, c], layer) => lstmStep(gates, h, c, layer.weightHh));
    return { output, h: this.stackLayers(finals.map((s) => s[0]!)), c: this.stackLayers(finals.map((s) => s[1]!)) };
  }
}

/**
 * Gated recurrent unit, as torch.nn.GRU: gates r, z, n stacked in that order in weight_ih_l<k> [3H, F or H],
 * weight_hh_l<k> [3H, H], bias_ih_l<k> and bias_hh_l<k> [3H]; b_hn stays inside r * (h W_hn + b_hn).
 * forward(x [N, T, F], { h0, mask }) -> { output [N, T, H], h [layers, N, H] }; forward(x, mask) is short for
 * forward(x, { mask }).
 */
export class GRU extends RecurrentStack {
  constructor(inputSize: number, hiddenSize: number, options: RecurrentOptions = {}) {
    super('GRU', inputSize, hiddenSize, 3, options);
  }

  forward(x: Tensor, optionsOrMask: RecurrentForwardOptions | Tensor = {}): GRUOutput {
    const options = optionsOrMask instanceof Tensor ? { mask: optionsOrMask } : optionsOrMask;
    const { input, steps, batch, stepMasks } = this.prepareInput('gru', x, options.mask);
    const h0 = options.h0 && this.statePerLayer('gru', 'h0', options.h0, input, batch);
    const initial = this.layerWeights.map((_, k): [Tensor | undefined] => [h0?.[k]]);
    const { output, finals } = this.runLayers(input, steps, stepMasks, initial,
      (layer) => (layer.biasIh === undefined ? undefined : F.asTensor(layer.biasIh, x.builder)),
      (gates, [h], layer): [Tensor | undefined] => [gruStep(gates, h, layer.weightHh, layer.biasHh, this.hiddenSize)]);
    return { output, h: this.stackLayers(finals.map((s) => s[0]!)) };
  }
}

/** Parameters and checks shared by the single-step cells. */
abstract class RecurrentCell extends Module {
  readonly weight_ih: Parameter;
  readonly weight_hh: Parameter;
  readonly bias_ih: Parameter | undefined;
  readonly bias_hh: Parameter | undefined;

  constructor(kind: string, readonly inputSize: number, readonly hiddenSize: number, gates: number, options: { bias?: boolean }) {
    super();
    checkSizes(kind, inputSize, hiddenSize);
    const init = recurrentInit(hiddenSize);
    this.weight_ih = new Parameter([gates * hiddenSize, inputSize], init);
    this.weight_hh = new Parameter([gates * hiddenSize, hiddenSize], init);
    this.bias_ih = options.bias === false ? undefined : new Parameter([gates * hiddenSize], init);
    this.bias_hh = options.bias === false ? undefined : new Parameter([gates * hiddenSize], init);
  }

  protected checkInputs(op: string, x: Tensor, states: [string, Tensor | undefined][]): void {
    const b = x.builder;
    if (x.rank !== 2 || !isFloatingDType(x.dtype) || x.dim(1) !== this.inputSize) {
      throw b.error(op, `input must be a float tensor [N, ${this.inputSize}], got ${x.dtype}${formatShape(x.shape)}`);
    }
    for (const [name, s] of states) {
      if (s === undefined) continue;
      const ok = s.rank === 2 && s.dtype === x.dtype && dimsCompatible(s.dim(0), x.dim(0)) && s.dim(1) === this.hiddenSize;
      if (!ok) throw b.error(op, `${name} must be ${x.dtype}[N, H] = ${formatShape([x.dim(0), this.hiddenSize])}, got ${s.dtype}${formatShape(s.shape)}`);
    }
  }
}

/**
 * One LSTM step, as torch.nn.LSTMCell (for step-wise decoders): parameters weight_ih [4H, F], weight_hh [4H, H],
 * bias_ih, bias_hh [4H], gates i, f, g, o. forward(x [N, F], h [N, H]?, c [N, H]?) -> { h, c }, each [N, H];
 * leaving out h and c starts from zeros.
 */
export class LSTMCell extends RecurrentCell {
  constructor(inputSize: number, hiddenSize: number, options: { bias?: boolean } = {}) {
    super('LSTMCell', inputSize, hiddenSize, 4, options);
  }

  forward(x: Tensor, h?: Tensor, c?: Tensor): { h: Tensor; c: Tensor } {
    const b = x.builder;
    this.checkInputs('lstmCell', x, [['h', h], ['c', c]]);
    if ((h === undefined) !== (c === undefined)) throw b.error('lstmCell', 'give h and c together, or neither for zero states');
    const bias = this.bias_ih === undefined ? undefined : F.add(this.bias_ih, this.bias_hh!);
    const inputGates = b.op('Gemm', [x, F.asTensor(this.weight_ih, b), bias], { transB: 1 }, 'lstmCell');
    const [hNext, cNext] = lstmStep(inputGates, h, c, this.weight_hh);
    return { h: hNext, c: cNext };
  }
}

/**
 * One GRU step, as torch.nn.GRUCell: parameters weight_ih [3H, F], weight_hh [3H, H], bias_ih, bias_hh [3H],
 * gates r, z, n. forward(x [N, F], h [N, H]?) -> h' [N, H]; leaving out h starts from zeros.
 */
export class GRUCell extends RecurrentCell {
  constructor(inputSize: number, hiddenSize: number, options: { bias?: boolean } = {}) {
    super('GRUCell', inputSize, hiddenSize, 3, options);
  }

  forward(x: Tensor, h?: Tensor): Tensor {
    const b = x.builder;
    this.checkInputs('gruCell', x, [['h', h]]);
    const inputGates = b.op('Gemm', [x, F.asTensor(this.weight_ih, b), this.bias_ih && F.asTensor(this.bias_ih, b)], { transB: 1 }, 'gruCell');
    return gruStep(inputGates, h, this.weight_hh, this.bias_hh, this.hiddenSize);
  }
}
