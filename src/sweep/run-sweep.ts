import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { confusionSpec, curvesSpec } from '../plot/charts';
import { writeChart } from '../plot/render-chart';
import { makeOutputFolder, writeFileAtomic } from '../util/atomic-write';
import type { PlannedRun } from './grid';
import { trainArguments } from './grid';
import { bestAccuracy, bestRun, resultsCsv, resultsMarkdown, RunOutcome } from './report';
import { readRunSummary } from '../train/run-summary';
import { readMetrics } from './run-record';

export interface SweepOptions {
  outDir: string;
  /** The deepvision CLI entry (bin/deepvision.js). */
  bin: string;
  retryFailed?: boolean;
  log?: (line: string) => void;
  /** Set when the user asks to stop (Ctrl-C): the running run saves a checkpoint, the sweep stops after it. */
  stopRequested?: () => boolean;
}

const FAILED = 'failed.json';

/** What is known of a run from its folder: finished, failed earlier, interrupted (resumable) or not started. */
export function runOutcome(run: PlannedRun, outDir: string): RunOutcome {
  const dir = path.join(outDir, run.name);
  const summary = readRunSummary(dir);
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const metrics = fs.existsSync(metricsFile) ? readMetrics(metricsFile) : undefined;
  if (summary && summary.stopped !== 'interrupted') return { run, status: 'done', summary, metrics };
  const failedFile = path.join(dir, FAILED);
  if (fs.existsSync(failedFile)) {
    const failure = JSON.parse(fs.readFileSync(failedFile, 'utf8')) as { error: string };
    return { run, status: 'failed', error: failure.error, metrics };
  }
  if (fs.existsSync(path.join(dir, 'last.safetensors'))) return { run, status: 'interrupted', summary: summary ?? undefined, metrics };
  return { run, status: 'pending' };
}

/**
 * Runs the planned runs one after another as `deepvision train` child processes, each in <outDir>/<run name>:
 * finished runs are skipped, an interrupted one resumes from its last checkpoint, a failed one (e.g. a diverging
 * learning rate stopped by the NaN guard) is recorded and the sweep goes on. Returns the outcomes in plan order.
 */
export async function runSweep(plan: PlannedRun[], o: SweepOptions): Promise<RunOutcome[]> {
  const log = o.log ?? console.log;
  makeOutputFolder(o.outDir);
  for (const [i, run] of plan.entries()) {
    if (o.stopRequested?.()) break;
    const dir = path.join(o.outDir, run.name);
    let outcome = runOutcome(run, o.outDir);
    if (outcome.status === 'done') {
      log(`[${i + 1}/${plan.length}] ${run.name}: done (best validation top-1 ${(100 * (bestAccuracy(outcome)?.valTop1 ?? 0)).toFixed(1)} %), skipped`);
      continue;
    }
    if (outcome.status === 'failed' && !o.retryFailed) {
      log(`[${i + 1}/${plan.length}] ${run.name}: failed earlier (${outcome.error?.split('\n')[0]}), skipped (--retry-failed runs it again)`);
      continue;
    }
    fs.rmSync(path.join(dir, FAILED), { force: true });
    const args = ['train', ...trainArguments(run, dir)];
    const last = path.join(dir, 'last.safetensors');
    if (outcome.status === 'interrupted') args.push('--resume', last);
    else if (fs.existsSync(path.join(dir, 'metrics.jsonl'))) fs.rmSync(path.join(dir, 'metrics.jsonl'));
    log(`[${i + 1}/${plan.length}] ${run.name}: ${outcome.status === 'interrupted' ? 'resuming from its last checkpoint' : 'starting'}`);
    log(`  deepvision ${args.join(' ')}`);
    const { code, stderr } = await runChild(process.execPath, [o.bin, ...args], o.stopRequested);
    outcome = runOutcome(run, o.outDir);
    if (outcome.status === 'done') continue;
    if (o.stopRequested?.()) {
      log(`${run.name}: interrupted; run the sweep again to resume it`);
      break;
    }
    const error = stderr.split('\n').filter((l) => l.startsWith('error: ')).map((l) => l.slice(7)).join(' ') || `deepvision train exited with code ${code}`;
    writeFileAtomic(path.join(dir, FAILED), `${JSON.stringify({ error, exitCode: code }, null, 2)}\n`);
    log(`${run.name}: failed: ${error}`);
  }
  return plan.map((run) => runOutcome(run, o.outDir));
}

/** Runs a child with the terminal's stdout; stderr is shown and kept (for the failure message). */
function runChild(command: string, args: string[], stopRequested?: () => boolean): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      process.stderr.write(chunk);
    });
    // Ctrl-C reaches the child too (same process group): it saves a checkpoint and exits.
    const poll = setInterval(() => {
      if (stopRequested?.() && child.exitCode === null) child.kill('SIGINT');
    }, 500);
    child.on('error', (err) => {
      clearInterval(poll);
      reject(err);
    });
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code, stderr });
    });
  });
}

/** results.md, results.csv, per-run curves, all runs' curves together, and the best run's confusion matrix. */
export async function writeSweepReport(outcomes: RunOutcome[], outDir: string, title: string): Promise<string[]> {
  const written: string[] = [];
  writeFileAtomic(path.join(outDir, 'results.md'), `# ${title}\n\n${resultsMarkdown(outcomes)}`);
  writeFileAtomic(path.join(outDir, 'results.csv'), resultsCsv(outcomes));
  written.push(path.join(outDir, 'results.md'), path.join(outDir, 'results.csv'));
  const plots = path.join(outDir, 'plots');
  const curves = [];
  for (const o of outcomes) {
    const metricsFile = path.join(outDir, o.run.name, 'metrics.jsonl');
    if (!fs.existsSync(metricsFile)) continue;
    const metrics = readMetrics(metricsFile);
    if (metrics.length === 0) continue;
    curves.push({ run: o.run.name, metrics });
    written.push(...(await writeChart(curvesSpec([{ run: o.run.name, metrics }], o.run.name), path.join(plots, `${o.run.name}-curves`))));
  }
  if (curves.length > 1) written.push(...(await writeChart(curvesSpec(curves, title), path.join(plots, 'all-curves'))));
  const best = bestRun(outcomes);
  if (best?.summary?.confusion) {
    const t = `${best.run.name}: validation confusion matrix of its lowest-loss epoch (${best.summary.best!.epoch}, top-1 ${(100 * best.summary.best!.valTop1).toFixed(1)} %)`;
    written.push(...(await writeChart(confusionSpec(best.summary.confusion, best.summary.classes, t), path.join(plots, 'best-confusion'))));
  }
  return written;
}
