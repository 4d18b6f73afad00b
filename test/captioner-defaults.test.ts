/**
 * What `deepvision train` uses for a captioner on shapes when the user passes no flags: the values the README
 * documents (and its measured figures are for), shown by --help, below the command line and --config, and only
 * for captioners on shapes (the classifiers' defaults, and so `npm start`, stay as they were).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { trainCommand } from '../src/cli/commands/train';
import { SHAPES_CAPTIONER_DEFAULTS, shapesCaptionerFlags } from '../src/cli/train/captioner-defaults';
import { applyTrainDefaults } from '../src/cli/tasks';
import type { TaskKind } from '../src/model/task-kind';
import type { TrainFlags } from '../src/cli/train/train-flags';

const ROOT = path.resolve(__dirname, '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The train command's options after parsing `args` (its action not run) and applying the task's defaults. */
async function parsed(args: string[], task: TaskKind | undefined, data = 'shapes'): Promise<TrainFlags> {
  const command = trainCommand();
  command.action(() => undefined);
  await command.parseAsync(['graphs/captioner.ts', ...args], { from: 'user' });
  applyTrainDefaults(command, task, data);
  return command.opts<TrainFlags>();
}

test('a captioner on shapes without flags trains with the shapes captioner defaults', async () => {
  const f = await parsed([], 'captioning');
  expect({ imageSize: f.imageSize, trainSize: f.trainSize, epochs: f.epochs, lr: f.lr, schedule: f.schedule, warmupSteps: f.warmupSteps, clipGradNorm: f.clipGradNorm })
    .toEqual(SHAPES_CAPTIONER_DEFAULTS);
  // 48 px: at 32 the small encoder confused squares with circles and hexagons with hearts.
  expect(f.imageSize).toBe('48');
  // The rest stays the command's.
  expect([f.batchSize, f.optimizer]).toEqual(['64', 'adam']);
});

test('the command line and a --config file win over them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-captioner-defaults-'));
  try {
    const config = path.join(dir, 'config.json');
    fs.writeFileSync(config, JSON.stringify({ epochs: 7, 'warmup-steps': 0 }));
    const f = await parsed(['--lr', '0.01', '--schedule', 'constant', '--config', config], 'captioning');
    expect([f.lr, f.schedule, f.epochs, f.warmupSteps]).toEqual(['0.01', 'constant', '7', '0']);
    expect([f.trainSize, f.clipGradNorm]).toEqual([SHAPES_CAPTIONER_DEFAULTS.trainSize, SHAPES_CAPTIONER_DEFAULTS.clipGradNorm]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--image-size and --set imageSize win over the captioner\'s image size', async () => {
  expect((await parsed(['--image-size', '32'], 'captioning')).imageSize).toBe('32');
  // --set imageSize sizes the data when --image-size is left out (chooseImageSize), so the default stays unset.
  const f = await parsed(['--set', 'imageSize=64'], 'captioning');
  expect([f.imageSize, f.epochs]).toEqual([undefined, SHAPES_CAPTIONER_DEFAULTS.epochs]);
});

test('classifiers, and captioners on other data, keep the command\'s defaults', async () => {
  for (const f of [await parsed([], undefined), await parsed([], 'classification'), await parsed(['--data', 'photos'], 'captioning', 'photos')]) {
    expect({ imageSize: f.imageSize, trainSize: f.trainSize, epochs: f.epochs, lr: f.lr, schedule: f.schedule, warmupSteps: f.warmupSteps, clipGradNorm: f.clipGradNorm })
      .toEqual({ imageSize: undefined, trainSize: undefined, epochs: '10', lr: '0.001', schedule: 'constant', warmupSteps: '0', clipGradNorm: undefined });
  }
});

test('--help and the README say what they are', () => {
  const help = trainCommand().helpInformation().replace(/\s+/g, ' ');
  expect(help).toContain(`(default: 10; a captioner on shapes: ${SHAPES_CAPTIONER_DEFAULTS.epochs})`);
  expect(help).toContain(`(default: 0.001; a captioner on shapes: ${SHAPES_CAPTIONER_DEFAULTS.lr})`);
  expect(help).toContain(`default: constant; a captioner on shapes: ${SHAPES_CAPTIONER_DEFAULTS.schedule})`);
  expect(help).toContain(`(default: 0; a captioner on shapes: ${SHAPES_CAPTIONER_DEFAULTS.warmupSteps})`);
  expect(help).toContain(`(default: none; a captioner on shapes: ${SHAPES_CAPTIONER_DEFAULTS.clipGradNorm})`);
  expect(help).toContain(`for a captioner ${SHAPES_CAPTIONER_DEFAULTS.trainSize}`);
  expect(help).toContain(`32 for shapes; a captioner on shapes: ${SHAPES_CAPTIONER_DEFAULTS.imageSize})`);
  // The README's captioning section spells them out as the flags they stand for.
  expect(README.replace(/\s*\\\n\s*/g, ' ')).toContain(shapesCaptionerFlags());
});

test('npm run demo:caption trains the default captioner and exports it for the page, and the quickstart says so', () => {
  const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  expect(scripts['demo:caption']).toBe('node bin/deepvision.js train graphs/captioner.ts --data shapes --out models/captioner-shapes '
    + '&& node bin/deepvision.js export models/captioner-shapes --out web-demo/models/captioner-shapes');
  const quickstart = README.slice(README.indexOf('## Quickstart'), README.indexOf('## Writing a model'));
  expect(quickstart).toContain('npm run demo:caption');
});
