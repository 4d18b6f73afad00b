/**
 * The code checks `npm test` runs (npm run check:code) catch what they are there for: dependency-cruiser an import
 * that runs up the layers and a cycle, ESLint a promise nobody awaits, knip a file nothing imports. Each is shown one
 * deliberately broken piece of code, with this repository's own configuration where it has one.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const bin = (name: string) => path.join(ROOT, 'node_modules', '.bin', name);

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-code-checks-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A small project in `dir`: the given files, and a tsconfig like ours. */
function project(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'commonjs', target: 'ES2022' }, include: ['src'] }));
}

test('dependency-cruiser refuses an import from a lower layer to a higher one, and a cycle', () => {
  const dir = path.join(tmp, 'layers');
  project(dir, {
    'src/ir/graph.ts': "import { main } from '../cli/main';\nexport const graph = main;\n",
    'src/cli/main.ts': 'export const main = 1;\n',
    'src/util/a.ts': "import { b } from './b';\nexport const a = () => b;\n",
    'src/util/b.ts': "import { a } from './a';\nexport const b = () => a;\n",
  });
  fs.copyFileSync(path.join(ROOT, '.dependency-cruiser.cjs'), path.join(dir, '.dependency-cruiser.cjs'));
  const r = spawnSync(bin('depcruise'), ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd: dir, encoding: 'utf8' });
  expect(r.status).not.toBe(0);
  expect(r.stdout).toMatch(/error layers: ir: src\/ir\/graph\.ts → src\/cli\/main\.ts/);
  expect(r.stdout).toMatch(/error no-cycles: src\/util\/a\.ts →\s+src\/util\/b\.ts →\s+src\/util\/a\.ts/);
  // The repository itself passes.
  const own = spawnSync(bin('depcruise'), ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd: ROOT, encoding: 'utf8' });
  expect(own.stdout).toMatch(/no dependency violations found/);
}, 120_000);

test('ESLint (our configuration) refuses a floating promise and a promise passed where a callback returns nothing', () => {
  const code = [
    'async function save(): Promise<void> {}',
    'export function onClick(): void {',
    '  save();',
    '  [1, 2].forEach(async () => save());',
    '}',
    '',
  ].join('\n');
  // Linted as the text of an existing source file, so that the type-aware rules have its project; in a child
  // process, as ESLint loads its configuration with import(), which jest's module sandbox does not offer.
  const script = `const { ESLint } = require('eslint');
    new ESLint({ cwd: process.cwd() }).lintText(process.argv[1], { filePath: process.argv[2] })
      .then(([r]) => console.log(JSON.stringify(r.messages.map((m) => m.line + ': ' + m.ruleId))));`;
  const r = spawnSync(process.execPath, ['-e', script, code, path.join(ROOT, 'src', 'util', 'user-error.ts')], { cwd: ROOT, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual([
    '3: @typescript-eslint/no-floating-promises',
    '4: @typescript-eslint/no-misused-promises',
  ]);
}, 120_000);

test('knip reports a file that nothing imports', () => {
  const dir = path.join(tmp, 'unused');
  project(dir, {
    'package.json': JSON.stringify({ name: 'probe', version: '1.0.0', main: 'src/index.ts' }),
    'src/index.ts': "import { used } from './used';\nexport const value = used;\n",
    'src/used.ts': 'export const used = 1;\n',
    'src/forgotten.ts': 'export const forgotten = 2;\n',
  });
  const r = spawnSync(bin('knip'), ['--no-progress', '--no-config-hints'], { cwd: dir, encoding: 'utf8' });
  expect(r.status).not.toBe(0);
  expect(r.stdout).toMatch(/Unused files \(1\)\s+src\/forgotten\.ts/);
}, 120_000);
