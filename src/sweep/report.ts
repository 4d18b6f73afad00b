import type { EpochMetrics } from '../train/trainer';
import type { RunSummary } from '../train/run-summary';
import type { PlannedRun } from './grid';

export interface RunOutcome {
  run: PlannedRun;
  status: 'done' | 'failed' | 'interrupted' | 'pending';
  summary?: RunSummary;
  /** Epochs recorded so far (metrics.jsonl). */
  metrics?: EpochMetrics[];
  error?: string;
}

/** The epoch with the highest validation top-1 (checkpoints keep the lowest validation loss; tables report accuracy). */
export function bestAccuracy(o: RunOutcome): EpochMetrics | undefined {
  return (o.metrics ?? []).reduce<EpochMetrics | undefined>((b, m) => (b === undefined || m.valTop1 > b.valTop1 ? m : b), undefined);
}

const COLUMNS = ['run', 'model', 'augmentation', 'lr', 'status', 'best val top-1', 'best epoch', 'final train loss', 'final val loss', 'final train top-1', 'final val top-1', 'epochs', 'train time (min)'];

function row(o: RunOutcome): string[] {
  const s = o.summary;
  const pct = (v: number | undefined) => (v === undefined ? '' : `${(100 * v).toFixed(1)} %`);
  const num = (v: number | undefined) => (v === undefined ? '' : v.toFixed(3));
  const last = o.metrics?.[o.metrics.length - 1] ?? s?.last ?? undefined;
  const model = s ? `${s.model}${s.variant ? ` (${s.variant})` : ''}` : String(o.run.options.graph ?? '').replace(/^.*\//, '').replace(/\.ts$/, '') + (o.run.options.variant ? ` (${o.run.options.variant})` : '');
  return [
    o.run.name, model, s?.augmentation ?? String(o.run.options.augment ?? 'none'), String(s?.lr ?? o.run.options.lr ?? ''),
    o.status === 'failed' ? failure(o.error ?? '') : o.status,
    pct(bestAccuracy(o)?.valTop1), bestAccuracy(o) ? String(bestAccuracy(o)!.epoch) : '', num(last?.trainLoss), num(last?.valLoss), pct(last?.trainTop1), pct(last?.valTop1),
    o.metrics?.length ? String(o.metrics[o.metrics.length - 1]!.epoch) : '',
    // Training time over all sittings of a resumed run (validation excluded).
    o.metrics?.length ? (o.metrics.reduce((t, m) => t + m.seconds, 0) / 60).toFixed(1) : '',
  ];
}

export function resultsMarkdown(outcomes: RunOutcome[]): string {
  const lines = [`| ${COLUMNS.join(' | ')} |`, `|${COLUMNS.map(() => '---').join('|')}|`];
  for (const o of outcomes) lines.push(`| ${row(o).map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

export function resultsCsv(outcomes: RunOutcome[]): string {
  const quote = (c: string) => (/[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c);
  return `${[COLUMNS, ...outcomes.map(row)].map((r) => r.map(quote).join(',')).join('\n')}\n`;
}

/** The finished run with the best validation top-1 (its confusion matrix is drawn). */
export function bestRun(outcomes: RunOutcome[]): RunOutcome | undefined {
  return outcomes.filter((o) => o.status === 'done' && bestAccuracy(o)).sort((a, b) => bestAccuracy(b)!.valTop1 - bestAccuracy(a)!.valTop1)[0];
}

/** A failure in a few words: divergence (the NaN guard) is the expected one in learning-rate sweeps. */
function failure(error: string): string {
  const diverged = /loss became (NaN|-?Infinity) at epoch (\d+)/.exec(error);
  if (diverged) return `diverged (loss ${diverged[1]} in epoch ${diverged[2]})`;
  return `failed: ${error.split('\n')[0]!.slice(0, 80)}`;
}
