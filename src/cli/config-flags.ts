import type { ConfigValue, ModelDefinition } from '../model/definition';
import { parseConfigAssignment } from '../model/definition';
import { UserError } from './errors';

/** The repeatable `--set key=value` option of build and train. */
export function collectAssignments(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Parses `--set key=value` assignments against a model's config keys (typed after their defaults). */
export function configFromFlags(definition: ModelDefinition, assignments: readonly string[]): Record<string, ConfigValue> {
  const config: Record<string, ConfigValue> = {};
  for (const assignment of assignments) {
    try {
      const [key, value] = parseConfigAssignment(definition, assignment);
      config[key] = value;
    } catch (err) {
      throw new UserError((err as Error).message);
    }
  }
  return config;
}
