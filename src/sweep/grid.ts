import * as path from 'node:path';
import { UserError } from '../util/user-error';
import { isGeneratedData } from '../data/kinds';

/** A value of a `deepvision train` option in a sweep file: a flag's value, true for a bare flag, null/false to omit. */
type OptionValue = string | number | boolean | null | Record<string, string | number | boolean>;

/**
 * A sweep file: options shared by every run (`base`), a grid whose cartesian product makes runs, and/or explicit
 * runs. Keys are `deepvision train` options (`lr`, `augment`, `val-fraction`, `variant`, ...) plus `graph` (the
 * graph file) and `set` (an object of config values). Relative paths are resolved from the sweep file's folder (in
 * `set`, values that start with ./ or ../).
 */
export interface SweepSpec {
  name?: string;
  base?: Record<string, OptionValue>;
  grid?: Record<string, OptionValue[]>;
  runs?: ({ name?: string } & Record<string, OptionValue>)[];
}

export interface PlannedRun {
  name: string;
  options: Record<string, OptionValue>;
}

const PATH_OPTIONS = new Set(['graph', 'data', 'cache-dir']);

class SweepSpecError extends UserError {}

/** Expands a sweep file into its runs, in order: the grid's product (last key varying fastest), then the listed runs. */
export function planSweep(parsed: unknown, specDir: string): PlannedRun[] {
  if (typeof parsed !== 'object' || parsed === null) throw new SweepSpecError('a sweep file holds a JSON object with base, grid and/or runs');
  const spec = parsed as SweepSpec;
  const unknownKeys = Object.keys(spec).filter((k) => !['name', 'base', 'grid', 'runs', 'description'].includes(k));
  if (unknownKeys.length > 0) throw new SweepSpecError(`unknown sweep keys: ${unknownKeys.join(', ')} (expected base, grid, runs)`);
  const base = spec.base ?? {};
  const planned: PlannedRun[] = [];
  const grid = Object.entries(spec.grid ?? {});
  for (const [key, values] of grid) if (!Array.isArray(values) || values.length === 0) throw new SweepSpecError(`grid.${key} must be a non-empty list of values`);
  if (grid.length > 0) {
    let combos: Record<string, OptionValue>[] = [{}];
    for (const [key, values] of grid) combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
    for (const c of combos) planned.push({ name: nameFor(c), options: { ...base, ...c } });
  }
  for (const [i, r] of (spec.runs ?? []).entries()) {
    const { name, ...options } = r;
    planned.push({ name: name ?? nameFor(options), options: { ...base, ...options } });
  }
  if (planned.length === 0) throw new SweepSpecError('the sweep file has no runs: give a grid or a list of runs');
  const seen = new Set<string>();
  for (const p of planned) {
    if (seen.has(p.name)) throw new SweepSpecError(`two runs are named '${p.name}': give the listed runs distinct names`);
    seen.add(p.name);
    if (p.options.graph === undefined || p.options.graph === null) throw new SweepSpecError(`run '${p.name}' has no graph file (set "graph" in base, grid or the run)`);
    for (const key of Object.keys(p.options)) {
      const v = p.options[key];
      if (PATH_OPTIONS.has(key) && typeof v === 'string' && !isGeneratedData(v)) p.options[key] = path.resolve(specDir, v);
      // Config values written as relative paths ("./x", "../x": a backbone file) are the sweep file's too.
      if (key === 'set' && v !== null && typeof v === 'object') {
        p.options[key] = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x === 'string' && /^\.\.?\//.test(x) ? path.resolve(specDir, x) : x]));
      }
    }
  }
  return planned;
}

/** A folder-safe name from the values that define a run: "cnn_lr-0.01_augment-standard". */
function nameFor(values: Record<string, OptionValue>): string {
  const parts = Object.entries(values).map(([k, v]) => {
    if (k === 'graph' && typeof v === 'string') return path.basename(v).replace(/\.[cm]?[jt]s$/, '');
    if (v === null || v === false) return `no-${k}`;
    if (v === true) return k;
    if (typeof v === 'object') return Object.entries(v).map(([a, b]) => `${a}-${b}`).join('_');
    return `${k}-${v}`;
  });
  return parts.join('_').replace(/[^A-Za-z0-9._-]/g, '-') || 'run';
}

/** The `deepvision train` arguments of a run (graph first, then options; `out` is the run's folder). */
export function trainArguments(run: PlannedRun, outDir: string): string[] {
  const args: string[] = [String(run.options.graph)];
  for (const [key, value] of Object.entries(run.options)) {
    if (key === 'graph' || key === 'out' || value === null || value === false) continue;
    if (key === 'set') {
      if (typeof value !== 'object') throw new SweepSpecError(`run '${run.name}': "set" must be an object of config values`);
      for (const [k, v] of Object.entries(value)) args.push('--set', `${k}=${v}`);
      continue;
    }
    if (typeof value === 'object') throw new SweepSpecError(`run '${run.name}': option '${key}' must be a number, a string or a boolean`);
    args.push(`--${key}`);
    if (value !== true) args.push(String(value));
  }
  args.push('--out', outDir, '--no-progress');
  return args;
}
