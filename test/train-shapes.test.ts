/**
 * The CNN of graphs/cnn.ts learns the shapes data set: a short seeded run (4 epochs, about 2.5 minutes on 2 cores)
 * must pass 90 % validation accuracy (chance: 10 %).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import cnn from '../graphs/cnn';
import { generateShapes } from '../src/data/shapes';
import { train } from '../src/train/trainer';

test('the shapes CNN reaches more than 90 % validation accuracy in a short run', async () => {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-shapes-'));
  try {
    const result = await train({
      definition: cnn,
      train: generateShapes({ count: 10000, imageSize: 32, seed: 0 }),
      val: generateShapes({ count: 2000, imageSize: 32, seed: 1 }),
      epochs: 4, batchSize: 64, optimizer: { kind: 'adam' }, learningRate: 0.003,
      schedule: { kind: 'cosine', totalSteps: 4 * 157 }, warmupSteps: 100, seed: 0, threads: 2, outDir,
    });
    const last = result.history[result.history.length - 1]!;
    console.log(`shapes CNN after 4 epochs: validation top-1 ${(100 * last.valTop1).toFixed(2)} %, loss ${last.valLoss.toFixed(4)}`);
    expect(last.valTop1).toBeGreaterThan(0.9);
    expect(last.valTop5).toBeGreaterThan(0.99);
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
}, 600000);
