import { InvalidArgumentError } from 'commander';
import { MAX_BEAM } from '../portable/search-limits';
import { MAX_INPUT_SIDE } from '../data/input-size';

/**
 * Argument parsers for numeric options (commander's argParser): a value of the wrong type or range is refused
 * with commander's own one-line error ("option '-k <n>' argument 'abc' is invalid. ...").
 */
function parser(what: string, ok: (n: number) => boolean): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !ok(n)) throw new InvalidArgumentError(`expected ${what}.`);
    return n;
  };
}

export const positiveInteger = parser('a positive integer', (n) => Number.isSafeInteger(n) && n > 0);
/** A model's input side in pixels. */
export const imageSide = parser(`a size in pixels from 1 to ${MAX_INPUT_SIDE}`, (n) => Number.isSafeInteger(n) && n > 0 && n <= MAX_INPUT_SIDE);
/** A beam width: 1 (greedy) up to the widest beam searched. */
export const beamWidth = parser(`a beam width from 1 to ${MAX_BEAM}`, (n) => Number.isSafeInteger(n) && n > 0 && n <= MAX_BEAM);
export const nonNegativeInteger = parser('a non-negative integer', (n) => Number.isSafeInteger(n) && n >= 0);
export const positiveNumber = parser('a positive number', (n) => Number.isFinite(n) && n > 0);
export const nonNegativeNumber = parser('a number >= 0', (n) => Number.isFinite(n) && n >= 0);
/** A fraction strictly between 0 and 1 (a held-out share, a momentum). */
export const openFraction = parser('a number between 0 and 1 (exclusive)', (n) => Number.isFinite(n) && n > 0 && n < 1);
const port = parser('a port number from 0 to 65535', (n) => Number.isInteger(n) && n >= 0 && n <= 65535);
/** SGD momentum: 0 (none) up to, not including, 1. */
export const momentum = parser('a number from 0 up to (not including) 1', (n) => Number.isFinite(n) && n >= 0 && n < 1);
