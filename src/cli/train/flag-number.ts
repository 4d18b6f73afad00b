import { UserError } from '../errors';

/** The number a flag's text gives, refused with a one-line error naming the flag when `check` rejects it. */
export function flagNumber(name: string, value: string, check: (n: number) => boolean = Number.isFinite): number {
  const n = Number(value);
  if (value === '' || !check(n)) throw new UserError(`--${name} got '${value}', which is not valid here`);
  return n;
}

export const positiveInt = (n: number) => Number.isInteger(n) && n > 0;
export const nonNegativeInt = (n: number) => Number.isInteger(n) && n >= 0;

/** A whole number from `min` to `max`, each refusal naming the flag. */
export function wholeNumberUpTo(name: string, value: string, min: number, max: number): number {
  const n = flagNumber(name, value, (x) => Number.isInteger(x) && x >= min);
  if (n > max) throw new UserError(`--${name} got ${value}, more than the ${max} supported`);
  return n;
}

/** A positive whole number, or undefined when the flag is not given; `max` is its ceiling, named in the refusal. */
export function optionalPositiveInt(name: string, value: string | undefined, max?: number): number | undefined {
  if (value === undefined) return undefined;
  const n = flagNumber(name, value, positiveInt);
  if (max !== undefined && n > max) throw new UserError(`--${name} got ${value}, more than the ${max} supported`);
  return n;
}
