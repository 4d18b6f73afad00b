import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { planSweep, SweepSpec } from '../../sweep/grid';
import { runOutcome, runSweep, writeSweepReport } from '../../sweep/run-sweep';
import { UserError } from '../errors';
import { helpText } from '../help-text';
import { FileReadError, readRegularText } from '../../util/regular-file';

export function sweepCommand(): Command {
  return new Command('sweep')
    .summary('run a grid of training runs and tabulate and plot the results')
    .description(helpText([
      'Runs the experiments of a sweep file one after another (each is a `deepvision train` run in <out>/<run>), then',
      'writes results.md and results.csv (best validation accuracy and its epoch, final train/validation loss and',
      'accuracy, time), loss and accuracy curves per run and for all runs, and the best run\'s confusion matrix (PNG + SVG).',
      'Run it again to continue a partly finished sweep: finished runs are skipped, an interrupted run resumes from its',
      'checkpoint. Runs that fail (e.g. a learning rate that diverges) are recorded and the sweep goes on.',
      '',
      'A sweep file (JSON; paths relative to it):',
      '  {',
      '    "base": { "data": "../shared/data/tiny-imagenet-30", "val-fraction": 0.2,',
      '              "epochs": 10, "optimizer": "sgd" },',
      '    "grid": { "graph": ["graphs/mlp.ts", "graphs/cnn.ts"],',
      '              "lr": [0.1, 0.01, 0.001], "augment": ["none", "standard"] },',
      '    "runs": [ { "name": "cnn-dropout-aug", "graph": "graphs/cnn.ts",',
      '                "variant": "dropout", "augment": "standard", "lr": 0.005 } ]',
      '  }',
    ]))
    .argument('<sweep-file>', 'JSON sweep file')
    .option('-o, --out <dir>', 'output folder (default: models/sweeps/<sweep file name>)')
    .option('--dry-run', 'list the runs and their state without training', false)
    .option('--report-only', 'write the table and plots from the runs done so far, without training', false)
    .option('--retry-failed', 'run failed runs again', false)
    .option('--only <names>', 'comma-separated run names: run (or report) just these')
    .action(async (file: string, f: { out?: string; dryRun: boolean; reportOnly: boolean; retryFailed: boolean; only?: string }) => {
      let spec: SweepSpec;
      try {
        spec = JSON.parse(readRegularText(file, { what: 'sweep file', maxBytes: 16 * 1024 * 1024 })) as SweepSpec;
      } catch (err) {
        if (err instanceof FileReadError) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        throw new UserError(code ? `cannot read sweep file ${file}: ${code}` : `sweep file ${file} is not valid JSON: ${(err as Error).message}`);
      }
      let plan = planSweep(spec, path.dirname(path.resolve(file)));
      if (f.only !== undefined) {
        const wanted = f.only.split(',').map((n) => n.trim()).filter((n) => n !== '');
        const unknown = wanted.filter((n) => !plan.some((p) => p.name === n));
        if (unknown.length > 0) throw new UserError(`--only: no run named ${unknown.join(', ')} in ${file} (runs: ${plan.map((p) => p.name).join(', ')})`);
        plan = plan.filter((p) => wanted.includes(p.name));
      }
      const name = spec.name ?? path.basename(file).replace(/\.json$/, '');
      const outDir = f.out ?? path.join('models', 'sweeps', path.basename(file).replace(/\.json$/, ''));
      if (f.dryRun) {
        for (const run of plan) console.log(`${runOutcome(run, outDir).status.padEnd(12)} ${run.name}`);
        return;
      }
      let stop = false;
      const onSigint = () => {
        if (stop) process.exit(130);
        stop = true;
        console.error('\nStopping the sweep after the current run saves its checkpoint (Ctrl-C again to quit at once)...');
      };
      process.on('SIGINT', onSigint);
      try {
        const outcomes = f.reportOnly
          ? plan.map((run) => runOutcome(run, outDir))
          : await runSweep(plan, { outDir, bin: path.resolve(__dirname, '..', '..', '..', 'bin', 'deepvision.js'), retryFailed: f.retryFailed, stopRequested: () => stop });
        const written = await writeSweepReport(outcomes, outDir, name);
        const done = outcomes.filter((o) => o.status === 'done').length;
        console.log(`${done}/${outcomes.length} runs done; ${outcomes.filter((o) => o.status === 'failed').length} failed`);
        console.log(fs.readFileSync(path.join(outDir, 'results.md'), 'utf8'));
        console.log(`Wrote ${written.length} files to ${outDir}`);
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
