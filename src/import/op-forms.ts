import type { Attribute } from '../ir/attribute';
import type { Node } from '../ir/graph';
import { TensorData } from '../ir/tensor';

/**
 * A node of an imported model in the form the builder emits (opset 17): its op type, its inputs (a value of the
 * imported graph by name, a constant made here, or an omitted optional input) and its attributes.
 */
export interface OpForm {
  opType: string;
  inputs: (string | TensorData | undefined)[];
  attributes: Map<string, Attribute>;
  /** Said once in the module's summary (a Dropout imported as Identity, for instance). */
  note?: string;
}

/** Why an imported node cannot be brought to opset 17; the caller names the node and the file. */
export class ImportFormError extends Error {}

type Converter = (node: Node, opset: number, form: OpForm, known: (name: string) => TensorData | undefined) => void;

const FLOAT_MAX = 3.4028234663852886e38;

/** Moves an ints attribute to an int64 input at `index` (ops whose axes or sizes became inputs). */
function attributeToInput(name: string, index: number): Converter {
  return (_node, _opset, form) => {
    const a = form.attributes.get(name);
    form.attributes.delete(name);
    while (form.inputs.length < index) form.inputs.push(undefined);
    if (a !== undefined) {
      if (a.type !== 'ints') throw new ImportFormError(`attribute ${name} is ${a.type}, expected ints`);
      form.inputs[index] = TensorData.int64([a.value.length], a.value);
    }
  };
}

/** Moves a constant int64 input to an ints attribute (Reduce* of opset 18, whose axes became an input). */
function inputToAttribute(name: string, index: number): Converter {
  return (_node, _opset, form, known) => {
    const input = form.inputs[index];
    form.inputs.length = Math.min(form.inputs.length, index);
    if (input === undefined) return;
    const data = typeof input === 'string' ? known(input) : input;
    if (data === undefined) throw new ImportFormError(`input ${index} (${name}) must be a constant to be imported`);
    form.attributes.set(name, { type: 'ints', value: data.toNumbers() });
  };
}

/**
 * Per op type, the changes between the opset a model was written in and opset 17, as (first opset without the old
 * form, converter). Ops absent here have the same form in every opset deepvision reads (7 to 23).
 */
const CHANGES: Record<string, [number, Converter][]> = {
  // Opset 11 made min and max inputs.
  Clip: [[11, (_node, _opset, form) => {
    const min = form.attributes.get('min');
    const max = form.attributes.get('max');
    form.attributes.delete('min');
    form.attributes.delete('max');
    form.inputs[1] = TensorData.float32([], [min?.type === 'float' ? min.value : -FLOAT_MAX]);
    form.inputs[2] = TensorData.float32([], [max?.type === 'float' ? max.value : FLOAT_MAX]);
  }], [Infinity, (_node, _opset, form, known) => {
    // Some exporters write the bounds as [1]-shaped tensors; the op takes scalars.
    for (const slot of [1, 2]) {
      const input = form.inputs[slot];
      const data = typeof input === 'string' ? known(input) : input;
      if (data !== undefined && data.size === 1 && data.dims.length > 0) form.inputs[slot] = TensorData.fromArray(data.dtype, [], data.toNumbers());
    }
  }]],
  // Opset 13 made split sizes and axes inputs.
  Split: [[13, attributeToInput('split', 1)], [18, (_node, _opset, form) => {
    if (form.attributes.has('num_outputs')) throw new ImportFormError('Split with num_outputs (opset 18) is not supported; re-export the model with explicit split sizes');
  }]],
  // Opset 10 made starts, ends and axes inputs.
  Slice: [[10, (node, opset, form, known) => {
    for (const [name, index] of [['starts', 1], ['ends', 2], ['axes', 3]] as const) attributeToInput(name, index)(node, opset, form, known);
  }]],
  Squeeze: [[13, attributeToInput('axes', 1)]],
  Unsqueeze: [[13, attributeToInput('axes', 1)]],
  ReduceSum: [[13, attributeToInput('axes', 1)]],
  ReduceMean: [[18, inputToAttribute('axes', 1)]],
  ReduceMax: [[18, inputToAttribute('axes', 1)]],
  ReduceProd: [[18, inputToAttribute('axes', 1)]],
  ReduceSumSquare: [[18, inputToAttribute('axes', 1)]],
  // Opset 11 made pads and the fill value inputs.
  Pad: [[11, (_node, _opset, form) => {
    const pads = form.attributes.get('pads');
    const value = form.attributes.get('value');
    form.attributes.delete('pads');
    form.attributes.delete('value');
    if (pads?.type !== 'ints') throw new ImportFormError('Pad without a pads attribute');
    form.inputs[1] = TensorData.int64([pads.value.length], pads.value);
    if (value?.type === 'float' && value.value !== 0) form.inputs[2] = TensorData.float32([], [value.value]);
  }]],
  // Opset 9 dropped `spatial` (always 1 since); opset 14's training_mode is an inference model's 0.
  BatchNormalization: [[9, (_node, _opset, form) => {
    const spatial = form.attributes.get('spatial');
    if (spatial?.type === 'int' && spatial.value === 0) throw new ImportFormError('BatchNormalization with spatial=0 (per-element statistics) is not supported');
    form.attributes.delete('spatial');
  }], [Infinity, (_node, _opset, form) => {
    const training = form.attributes.get('training_mode');
    if (training?.type === 'int' && training.value !== 0) throw new ImportFormError('BatchNormalization in training mode: import an inference model');
    form.attributes.delete('training_mode');
  }]],
  // Softmax before opset 13 flattened to 2-D at `axis` (default 1); the same as opset 13's only on the last axis.
  Softmax: [[13, (node, _opset, form) => coercedAxis(node, form)]],
  LogSoftmax: [[13, (node, _opset, form) => coercedAxis(node, form)]],
};

function coercedAxis(node: Node, form: OpForm): void {
  const rank = node.inputs[0]?.shape?.length;
  const axis = form.attributes.get('axis');
  const value = axis?.type === 'int' ? axis.value : 1;
  if (rank === undefined || !(value === rank - 1 || value === -1)) {
    throw new ImportFormError(`${node.opType} before opset 13 on other than the last axis of a tensor of known rank is not supported`);
  }
  form.attributes.set('axis', { type: 'int', value: -1 });
}

/** The opset-17 form of a node written for `opset`. Dropout becomes Identity: imported backbones run as at inference. */
export function opset17Form(node: Node, opset: number, known: (name: string) => TensorData | undefined): OpForm {
  const form: OpForm = {
    opType: node.opType,
    inputs: node.inputs.map((v) => v?.name),
    attributes: new Map(node.attributes),
  };
  if (node.opType === 'Dropout') {
    return { opType: 'Identity', inputs: [form.inputs[0]], attributes: new Map(), note: 'Dropout imported as Identity (the backbone runs as at inference)' };
  }
  for (const [since, convert] of CHANGES[node.opType] ?? []) {
    if (opset < since) convert(node, opset, form, known);
  }
  return form;
}
