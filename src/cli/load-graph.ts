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

/** The graphs/ folder shipped with deepvision (beside dist/ or src/). */
function bundledGraphsDir(): string {
  return path.join(__dirname, '..', '..', 'graphs');
}

/** The bundled graph file of a model name (graphs/<name>.ts), if deepvision ships one. */
function bundledGraphFile(modelName: string | undefined): string | undefined {
  if (modelName === undefined || !/^[a-z0-9][a-z0-9-]*$/.test(modelName)) return undefined;
  const file = path.join(bundledGraphsDir(), `${modelName}.ts`);
  return fs.existsSync(file) ? file : undefined;
}

function sameFile(a: string, b: string): boolean {
  try {
    return fs.realpathSync(a) === fs.realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * The graph file to rebuild a checkpoint's model from. Graph files are code and a checkpoint is data, so the file
 * a checkpoint names is never run on its word: only a file the user names (--graph), or the bundled graph of the
 * checkpoint's model name.
 */
export function graphFileForCheckpoint(checkpoint: string, metadata: Record<string, string>, explicit: string | undefined): string {
  if (explicit !== undefined) return explicit;
  const model = metadata['deepvision.model'];
  const recorded = metadata['deepvision.graph_file'];
  const bundled = bundledGraphFile(model);
  if (recorded && !(bundled !== undefined && sameFile(recorded, bundled))) {
    throw new UserError(`${checkpoint} was trained from the graph file ${recorded}; graph files are code, and deepvision does not run one because a checkpoint names it: pass --graph ${recorded} if you trust that file`);
  }
  if (bundled === undefined) throw new UserError(`${checkpoint} does not come from a bundled graph (model ${JSON.stringify(model ?? null)}): pass --graph FILE`);
  return bundled;
}
