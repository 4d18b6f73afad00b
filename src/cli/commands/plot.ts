import * as path from 'node:path';
import { Command } from 'commander';
import { confusionSpec, curvesSpec } from '../../plot/charts';
import { writeChart } from '../../plot/render-chart';
import { locateRun, readMetrics, readSummary } from '../../sweep/run-record';
import { checkOutputs } from '../../util/output-guard';
import { UserError } from '../errors';
import { helpText } from '../help-text';

export function plotCommand(): Command {
  return new Command('plot')
    .summary('draw loss and accuracy curves of runs (PNG and SVG)')
    .description(helpText([
      'Draws the loss and top-1 accuracy per epoch (train dashed, validation solid) of one or more runs, from their',
      'metrics.jsonl, as SVG and PNG. With --confusion, also the validation confusion matrix of each run\'s best epoch',
      '(from summary.json).',
      '',
      'Examples:',
      '  deepvision plot models/cnn-shapes/metrics.jsonl',
      '  deepvision plot models/study/cnn models/study/mlp --title "MLP vs CNN"',
    ]))
    .argument('<runs...>', 'metrics.jsonl files or run folders')
    .option('-o, --out <base>', 'output path without extension (default: <first run folder>/curves)')
    .option('--title <text>', 'chart title (default: the run names)')
    .option('--confusion', 'also draw each run\'s confusion matrix (<run folder>/confusion.svg/png)', false)
    .option('--format <list>', 'svg, png or both', 'svg,png')
    .action(async (targets: string[], f: { out?: string; title?: string; confusion: boolean; format: string }) => {
      const formats = f.format.split(',').map((s) => s.trim());
      if (formats.length === 0 || formats.some((x) => x !== 'svg' && x !== 'png')) throw new UserError(`--format takes svg, png or svg,png; got '${f.format}'`);
      const runs = targets.map(locateRun);
      const base = f.out ?? path.join(runs[0]!.dir, 'curves');
      // Every file written (curves, confusion matrices) against every file read (metrics, summaries).
      const outputs = (b: string, option: string) => formats.map((x) => ({ file: `${b}.${x}`, option }));
      checkOutputs([...outputs(base, f.out === undefined ? 'plot' : '--out'), ...(f.confusion ? runs.flatMap((r) => outputs(path.join(r.dir, 'confusion'), '--confusion')) : [])], [
        ...runs.map((r) => ({ file: r.metricsFile, what: 'metrics file' })),
        ...(f.confusion ? runs.map((r) => ({ file: path.join(r.dir, 'summary.json'), what: 'run summary' })) : []),
      ]);
      const curves = runs.map((r) => ({ run: r.name, metrics: readMetrics(r.metricsFile) }));
      const empty = curves.filter((c) => c.metrics.length === 0);
      if (empty.length > 0) throw new UserError(`no epochs recorded yet in ${empty.map((c) => c.run).join(', ')}`);
      const written = await writeChart(curvesSpec(curves, f.title ?? curves.map((c) => c.run).join(' vs ')), base, formats as ('svg' | 'png')[]);
      if (f.confusion) {
        for (const r of runs) {
          const summary = readSummary(r.dir);
          if (!summary?.confusion) throw new UserError(`${r.dir} has no summary.json with a confusion matrix (written when a run finishes)`);
          const top1 = summary.best ? ` (validation top-1 ${(100 * summary.best.valTop1).toFixed(1)} %)` : '';
          written.push(...(await writeChart(confusionSpec(summary.confusion, summary.classes, `${r.name}: confusion matrix${top1}`), path.join(r.dir, 'confusion'), formats as ('svg' | 'png')[])));
        }
      }
      for (const w of written) console.log(w);
    });
}
