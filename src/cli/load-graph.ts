import * as fs from 'node:fs';
import * as path from 'node:path';
import { createJiti } from 'jiti';
import { isModelDefinition, ModelDefinition } from '../model/definition';
import { UserError } from './errors';

/**
 * The file graph files get for `import ... from 'deepvision'`: this very package, so that the graph's modules
 * and the CLI share one copy of the library (its classes and the active-builder state).
 */
function packageEntry(): string {
  for (const candidate of ['index.js', 'index.ts']) {
    const file = path.join(__dirname, '..', candidate);
    if (fs.existsSync(file)) return file;
  }
  throw new Error(`deepvision's entry point is missing beside ${__dirname}`);
}

/**
 * Loads a model definition from a TypeScript (or JavaScript) graph file anywhere on disk, compiled on the fly
 * by jiti. The file must `export default defineModel({...})`.
 */
export function loadGraphFile(file: string): ModelDefinition {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new UserError(`graph file not found: ${file}`);
  if (!/\.(ts|mts|cts|js|mjs|cjs)$/.test(abs)) throw new UserError(`graph file must be a .ts or .js file: ${file}`);
  const jiti = createJiti(__filename, {
    alias: { deepvision: packageEntry() },
    // Plain JavaScript (the built package) is loaded by Node itself, so the graph and the CLI share it.
    tryNative: true,
    fsCache: false,
    moduleCache: true,
  });
  let loaded: unknown;
  try {
    loaded = jiti(abs);
  } catch (err) {
    const e = err as Error;
    if (e.name === 'GraphBuildError' || e.name === 'UserError') throw err;
    throw new UserError(`cannot load graph file ${file}: ${firstLines(e.message)}`);
  }
  const exported = (loaded as { default?: unknown }).default ?? loaded;
  if (!isModelDefinition(exported)) {
    throw new UserError(`graph file ${file} must \`export default defineModel({ name, defaults, inputs, create })\` (import defineModel from 'deepvision')`);
  }
  return exported;
}

function firstLines(message: string): string {
  return message.split('\n').slice(0, 6).join('\n');
}
