import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli } from './exported-model';

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * Trains graphs/captioner.ts small (embedding 16, hidden 32) on 1,500 16x16 shapes for three epochs (about 7 s;
 * 69 % next-word top-1, captions like "a medium white cross in the center on a white background") in `dir`/NAME,
 * and exports it to `modelsDir`/NAME. Deterministic (seed 0). Peaked word probabilities keep the beam's ranking far
 * from ties, so that two runtimes' float rounding cannot change a caption.
 */
export function trainAndExportCaptioner(dir: string, modelsDir: string, name = 'captioner'): { runDir: string; modelDir: string } {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  const runDir = path.join(dir, `${name}-run`);
  const train = cli(dir, 'train', path.join(ROOT, 'graphs', 'captioner.ts'), '--data', 'shapes', '--image-size', '16', '--train-size', '1500', '--val-size', '60',
    '--epochs', '3', '--lr', '0.01', '--set', 'embedding=16', '--set', 'hidden=32', '--bleu-images', '8', '--seed', '0', '--threads', '1', '--no-progress', '--out', runDir);
  if (train.status !== 0) throw new Error(`training the captioner failed:\n${train.stdout}\n${train.stderr}`);
  const modelDir = path.join(modelsDir, name);
  const exported = cli(dir, 'export', runDir, '--out', modelDir);
  if (exported.status !== 0) throw new Error(`exporting the captioner failed:\n${exported.stdout}\n${exported.stderr}`);
  return { runDir, modelDir };
}
