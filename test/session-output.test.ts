/** outputOf: a session output the caller relies on, or one error naming it and what the run gave. */
import * as ort from 'onnxruntime-node';
import { outputOf } from '../src/portable/session-output';

test('an output that is there comes back; one that is missing is named with the outputs the run has', () => {
  const loss = new ort.Tensor('float32', Float32Array.from([1.5]), []);
  expect(outputOf({ loss }, 'loss')).toBe(loss);
  expect(() => outputOf({ loss }, 'logits', 'the evaluation graph')).toThrow("the evaluation graph has no output 'logits' (it gave 'loss')");
  expect(() => outputOf({}, 'logits')).toThrow("the model has no output 'logits' (it gave none)");
});
