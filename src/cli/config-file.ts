import * as fs from 'node:fs';
import type { Command } from 'commander';
import { UserError } from './errors';
import { FileReadError, readRegularText } from '../util/regular-file';

/**
 * `--config FILE`: a JSON object of option values ({"epochs": 30, "lr": 0.01, "hflip": 0.5}), keys written as on
 * the command line (`crop-padding`) or in camelCase (`cropPadding`). Options given on the command line win.
 */
export function applyConfigFile(command: Command, file: string): void {
  let values: unknown;
  try {
    values = JSON.parse(readRegularText(file, { what: 'config file', maxBytes: 16 * 1024 * 1024 }));
  } catch (err) {
    if (err instanceof FileReadError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code ? `cannot read config file ${file}: ${code}` : `config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof values !== 'object' || values === null || Array.isArray(values)) throw new UserError(`config file ${file} must hold a JSON object of option values`);
  const known = new Map(command.options.map((o) => [o.attributeName(), o]));
  for (const [rawKey, value] of Object.entries(values)) {
    const key = rawKey.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const option = known.get(key);
    if (option === undefined || key === 'config') throw new UserError(`config file ${file}: unknown option '${rawKey}' (see --help)`);
    if (command.getOptionValueSource(key) === 'cli') continue;
    let v: unknown = value;
    if (option.isBoolean()) {
      if (typeof value !== 'boolean') throw new UserError(`config file ${file}: '${rawKey}' must be true or false`);
    } else if (option.variadic || Array.isArray(option.defaultValue)) {
      v = (Array.isArray(value) ? value : [value]).map(String);
    } else {
      if (typeof value === 'object' && value !== null) throw new UserError(`config file ${file}: '${rawKey}' must be a number or a string`);
      v = String(value);
      if (option.argChoices && !option.argChoices.includes(v as string)) throw new UserError(`config file ${file}: '${rawKey}' must be one of ${option.argChoices.join(', ')}`);
    }
    command.setOptionValueWithSource(key, v, 'config');
  }
}
