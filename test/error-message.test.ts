/** The pages' error text for whatever a failed call threw: never empty, so an error box never shows nothing. */
import { errorMessage } from '../web-demo/src/error-message';

test('an Error gives its message, else its name; a string is itself; anything else is named as unexplained', () => {
  expect(errorMessage(new Error('the file is gone'))).toBe('the file is gone');
  expect(errorMessage(Object.assign(new Error(''), { name: 'OperationError' }))).toBe('OperationError');
  expect(errorMessage({ message: 'device lost' })).toBe('device lost');
  expect(errorMessage('failed to call OrtRun()')).toBe('failed to call OrtRun()');
  expect(errorMessage(undefined)).toBe('an unexplained failure (undefined)');
  expect(errorMessage('')).toBe('an unexplained failure (empty)');
  expect(errorMessage(7)).toBe('an unexplained failure (7)');
});
