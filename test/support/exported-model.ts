import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'deepvision.js');

/** A small user model with everything export rewrites: Conv + BatchNorm (folded), Dropout (removed), Linear. */
export const EXPORT_GRAPH = `
import { defineModel, nn, F, Tensor } from 'deepvision';

class SmallNet extends nn.Module {
  features = new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { padding: 1 }), new nn.BatchNorm2d(8), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Conv2d(8, 16, 3, { padding: 1 }), new nn.BatchNorm2d(16), new nn.ReLU(), new nn.MaxPool2d(2),
  );
  dropout = new nn.Dropout(0.3);
  head = new nn.Linear(16 * 4 * 4, 10);
  forward(x: Tensor): Tensor {
    return this.head.forward(this.dropout.forward(F.flatten(this.features.forward(x))));
  }
}

export default defineModel({
  name: 'small',
  defaults: { numClasses: 10 },
  inputs: () => [{ name: 'input', shape: ['batch', 3, 16, 16] }],
  create: () => new SmallNet(),
});
`;

export function cli(cwd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 120000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Trains the small model for ten quick epochs (about 4 s; 35 % validation top-1, chance is 10 %) on 16x16 shapes (in `dir`/run) and exports it to `dir`/models/small.
 * Returns the folders. Deterministic (seed 0).
 */
export function trainAndExport(dir: string): { runDir: string; modelsDir: string; modelDir: string } {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  fs.writeFileSync(path.join(dir, 'small.ts'), EXPORT_GRAPH);
  const runDir = path.join(dir, 'run');
  const train = cli(dir, 'train', 'small.ts', '--data', 'shapes', '--image-size', '16', '--train-size', '4000', '--val-size', '300',
    '--epochs', '10', '--lr', '0.005', '--no-progress', '--out', runDir);
  if (train.status !== 0) throw new Error(`training failed:\n${train.stdout}\n${train.stderr}`);
  const modelsDir = path.join(dir, 'models');
  const modelDir = path.join(modelsDir, 'small');
  const exported = cli(dir, 'export', runDir, '--out', modelDir);
  if (exported.status !== 0) throw new Error(`export failed:\n${exported.stdout}\n${exported.stderr}`);
  return { runDir, modelsDir, modelDir };
}
