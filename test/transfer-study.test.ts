/**
 * The transfer study's sweep file (docs/study/transfer.json) runs as written on a small slice of each of its data
 * sets: every run (frozen, two-layer head, SqueezeNet, fine-tuned) with its own options, one short epoch, so that
 * the study's commands cannot rot between the long runs that produce docs/RESULTS.md.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planSweep } from '../src/sweep/grid';
import { cli } from './support/exported-model';
import { dataTest, sharedFile } from './support/shared';

const STUDY = path.resolve(__dirname, '..', 'docs', 'study', 'transfer.json');

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-transfer-study-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The first `count` files (by name) of each of the first `classes` class folders of `from`, copied to `to`. */
function copyClasses(from: string, to: string, classes: number, count: number, inner = ''): string[] {
  const names = fs.readdirSync(from).filter((n) => fs.statSync(path.join(from, n)).isDirectory()).sort().slice(0, classes);
  for (const name of names) {
    const source = path.join(from, name, inner);
    fs.mkdirSync(path.join(to, name, inner), { recursive: true });
    for (const file of fs.readdirSync(source).sort().slice(0, count)) fs.copyFileSync(path.join(source, file), path.join(to, name, inner, file));
  }
  return names;
}

/** CIFAR-10's layout (train/, test/) and TinyImageNet's (wnids.txt, train/<wnid>/images/), a few dozen images each. */
function slices(): Record<string, string> {
  const cifar = path.join(tmp, 'cifar10-slice');
  copyClasses(sharedFile('data/cifar10-jpeg/train'), path.join(cifar, 'train'), 10, 3);
  copyClasses(sharedFile('data/cifar10-jpeg/test'), path.join(cifar, 'test'), 10, 2);
  const tin = path.join(tmp, 'tin30-slice');
  const wnids = copyClasses(sharedFile('data/tiny-imagenet-30/train'), path.join(tin, 'train'), 3, 10, 'images');
  fs.writeFileSync(path.join(tin, 'wnids.txt'), `${wnids.join('\n')}\n`);
  fs.copyFileSync(sharedFile('data/tiny-imagenet-30/words.txt'), path.join(tin, 'words.txt'));
  return { 'cifar10-jpeg': cifar, 'tiny-imagenet-30': tin };
}

dataTest('the transfer study\'s sweep file runs every one of its runs on a slice of its data sets', [
  'data/cifar10-jpeg/train', 'data/tiny-imagenet-30/train', 'models/mobilenetv2-7-fp32.onnx', 'models/squeezenet1.1-fp32.onnx',
], () => {
  const study = JSON.parse(fs.readFileSync(STUDY, 'utf8')) as Record<string, unknown>;
  const planned = planSweep(study, path.dirname(STUDY));
  expect(planned.length).toBeGreaterThanOrEqual(6);
  const sliceOf = slices();
  // The study's options as written (paths resolved), with the data set swapped for its slice and one short epoch.
  const runs = planned.map((run) => {
    const data = sliceOf[path.basename(String(run.options.data))];
    if (data === undefined) throw new Error(`${run.name}: no slice for ${String(run.options.data)}`);
    // The study names the backbones beside the checkout (../shared); the lane may have them elsewhere (DEEPVISION_SHARED).
    const set = Object.fromEntries(Object.entries(run.options.set as Record<string, unknown> | undefined ?? {}).map(([k, v]) => [k, typeof v === 'string' && v.includes('/shared/models/') ? sharedFile(`models/${v.split('/shared/models/')[1]}`) : v]));
    return { name: run.name, ...run.options, set, data, epochs: 1, 'batch-size': 8, 'cache-dir': path.join(tmp, 'cache') };
  });
  fs.writeFileSync(path.join(tmp, 'study.json'), JSON.stringify({ runs }));
  const r = cli(tmp, 'sweep', 'study.json', '--out', path.join(tmp, 'out'));
  expect(r.stderr).not.toMatch(/failed unexpectedly|^\s+at /m);
  expect(r.status).toBe(0);
  expect(r.stdout).toContain(`${runs.length}/${runs.length} runs done`);
  const table = fs.readFileSync(path.join(tmp, 'out', 'results.md'), 'utf8');
  for (const run of runs) expect(table).toMatch(new RegExp(`\\| ${run.name} \\| transfer \\| [^|]+ \\| [^|]+ \\| done \\| [\\d.]+ % \\|`));
}, 600_000);
