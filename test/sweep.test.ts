/** deepvision sweep and plot: planning a grid, running it (resumable), the results table and the chart files. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planSweep, trainArguments } from '../src/sweep/grid';
import { cli } from './support/exported-model';

const MLP = path.resolve(__dirname, '..', 'graphs', 'mlp.ts');

describe('sweep planning', () => {
  test('the grid is a cartesian product (last key fastest), then the listed runs; paths resolve from the sweep file', () => {
    const plan = planSweep({
      base: { data: 'shapes', epochs: 2, graph: 'graphs/mlp.ts' },
      grid: { lr: [0.1, 0.01], augment: ['none', 'standard'] },
      runs: [{ name: 'cnn-dropout', graph: 'graphs/cnn.ts', variant: 'dropout', lr: 0.005 }],
    }, '/studies');
    expect(plan.map((p) => p.name)).toEqual(['lr-0.1_augment-none', 'lr-0.1_augment-standard', 'lr-0.01_augment-none', 'lr-0.01_augment-standard', 'cnn-dropout']);
    expect(plan[4]!.options).toEqual({ data: 'shapes', epochs: 2, graph: '/studies/graphs/cnn.ts', variant: 'dropout', lr: 0.005 });
    expect(trainArguments(plan[1]!, '/out/x')).toEqual(['/studies/graphs/mlp.ts', '--data', 'shapes', '--epochs', '2', '--lr', '0.1', '--augment', 'standard', '--out', '/out/x', '--no-progress']);
    expect(trainArguments({ name: 'r', options: { graph: 'g.ts', variant: null, nesterov: true, set: { hidden: 8 } } }, 'o')).toEqual(['g.ts', '--nesterov', '--set', 'hidden=8', '--out', 'o', '--no-progress']);
  });

  test('config values written as relative paths in "set" resolve from the sweep file; other values stay as written', () => {
    const [run] = planSweep({ runs: [{ name: 'r', graph: 'g.ts', set: { backbone: '../models/m.onnx', here: './x.onnx', output: 'feature_map', hidden: 8 } }] }, '/studies/captioning');
    expect(run!.options.set).toEqual({ backbone: '/studies/models/m.onnx', here: '/studies/captioning/x.onnx', output: 'feature_map', hidden: 8 });
  });

  test('bad sweep files are refused with the reason', () => {
    expect(() => planSweep({}, '.')).toThrow(/no runs/);
    expect(() => planSweep({ grid: { lr: [] } }, '.')).toThrow(/grid.lr must be a non-empty list/);
    expect(() => planSweep({ grid: { lr: [1] } }, '.')).toThrow(/has no graph file/);
    expect(() => planSweep({ runs: [{ name: 'a', graph: 'g' }, { name: 'a', graph: 'g' }] }, '.')).toThrow(/two runs are named 'a'/);
    expect(() => planSweep({ grids: {} } as never, '.')).toThrow(/unknown sweep keys: grids/);
  });
});

describe('deepvision sweep and plot', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-sweep-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('a tiny grid writes the table (Markdown, CSV), curves and the best confusion matrix; a second call resumes', () => {
    const spec = {
      name: 'tiny',
      base: { graph: MLP, data: 'shapes', 'train-size': 400, 'val-size': 100, 'image-size': 8, epochs: 2, optimizer: 'sgd', set: { hidden: 16 } },
      grid: { lr: [0.05, 1e6], augment: ['none', 'standard'] },
    };
    fs.writeFileSync(path.join(tmp, 'tiny.json'), JSON.stringify(spec));
    const out = path.join(tmp, 'out');
    // Leave one run half done, as if the machine had stopped after its first epoch.
    const partial = path.join(out, 'lr-0.05_augment-standard');
    const first = cli(tmp, 'train', MLP, '--data', 'shapes', '--train-size', '400', '--val-size', '100', '--image-size', '8', '--epochs', '1',
      '--optimizer', 'sgd', '--set', 'hidden=16', '--lr', '0.05', '--augment', 'standard', '--out', partial, '--no-progress');
    expect(first.status).toBe(0);
    fs.rmSync(path.join(partial, 'summary.json'));

    const r = cli(tmp, 'sweep', 'tiny.json', '--out', out);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('[2/4] lr-0.05_augment-standard: resuming from its last checkpoint');
    expect(r.stdout).toContain('2/4 runs done; 2 failed');
    const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
    expect(md).toMatch(/\| lr-0\.05_augment-none \| mlp \| none \| 0\.05 \| done \| [\d.]+ % \| [12] \|/);
    expect(md).toMatch(/\| lr-1000000_augment-none \| mlp \| none \| 1000000 \| diverged \(loss NaN in epoch 1\)/);
    const csv = fs.readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('run,model,augmentation,lr,status,best val top-1,best epoch,final train loss,final val loss,final train top-1,final val top-1,epochs,train time (min)');
    expect(csv).toHaveLength(5);
    // The resumed run continued from epoch 2 instead of starting over.
    const resumed = fs.readFileSync(path.join(partial, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number });
    expect(resumed.map((m) => m.epoch)).toEqual([1, 2]);
    for (const f of ['all-curves', 'best-confusion', 'lr-0.05_augment-none-curves', 'lr-0.05_augment-standard-curves']) {
      const png = fs.readFileSync(path.join(out, 'plots', `${f}.png`));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.length).toBeLessThan(100_000);
      expect(fs.readFileSync(path.join(out, 'plots', `${f}.svg`), 'utf8')).toMatch(/^<svg[^>]*>/);
    }
    expect(fs.readFileSync(path.join(out, 'plots', 'all-curves.svg'), 'utf8')).toContain('top-1 accuracy');

    const again = cli(tmp, 'sweep', 'tiny.json', '--out', out);
    expect(again.stdout).toContain('[1/4] lr-0.05_augment-none: done');
    expect(again.stdout).toMatch(/\[3\/4\] lr-1000000_augment-none: failed earlier .*skipped/);
    expect(again.stdout).not.toContain('Training mlp');
    expect(cli(tmp, 'sweep', 'tiny.json', '--out', out, '--dry-run').stdout).toMatch(/^done\s+lr-0\.05_augment-none$/m);
  });

  test('plot draws any run\'s curves and confusion matrix; bad input gives a clear error', () => {
    const run = path.join(tmp, 'out', 'lr-0.05_augment-none');
    const r = cli(tmp, 'plot', path.join(run, 'metrics.jsonl'), '--confusion');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').map((l) => path.basename(l))).toEqual(['curves.svg', 'curves.png', 'confusion.svg', 'confusion.png']);
    expect(fs.readFileSync(path.join(run, 'confusion.svg'), 'utf8')).toContain('circle');
    fs.writeFileSync(path.join(tmp, 'bad.jsonl'), 'not json\n');
    expect(cli(tmp, 'plot', path.join(tmp, 'bad.jsonl')).stderr).toMatch(/bad\.jsonl, line 1: not JSON/);
    expect(cli(tmp, 'plot', path.join(tmp, 'nothing')).stderr).toMatch(/metrics\.jsonl does not exist|nothing does not exist/);
  });
});
