import type { EpochMetrics } from '../metrics/epoch-metrics';
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

/** Captioners' BLEU-4 (greedy, validation) of their best epoch by validation top-1, after that column. */
const BLEU_COLUMN = 'best-epoch val BLEU-4';

function columns(outcomes: RunOutcome[]): string[] {
  if (!outcomes.some(isCaptioner)) return COLUMNS;
  const at = COLUMNS.indexOf('best epoch') + 1;
  return [...COLUMNS.slice(0, at), BLEU_COLUMN, ...COLUMNS.slice(at)];
}

/** A run whose epochs report BLEU (a captioner); its top-1 columns are next-word accuracies. */
function isCaptioner(o: RunOutcome): boolean {
  return (o.metrics ?? []).some((m) => m.valBleu !== undefined);
}

function row(o: RunOutcome, withBleu: boolean): string[] {
  const s = o.summary;
  const pct = (v: number | undefined) => (v === undefined ? '' : `${(100 * v).toFixed(1)} %`);
  const num = (v: number | undefined) => (v === undefined ? '' : v.toFixed(3));
  const last = o.metrics?.[o.metrics.length - 1] ?? s?.last ?? undefined;
  const best = bestAccuracy(o);
  const model = s ? `${s.model}${s.variant ? ` (${s.variant})` : ''}` : String(o.run.options.graph ?? '').replace(/^.*\//, '').replace(/\.ts$/, '') + (o.run.options.variant ? ` (${o.run.options.variant})` : '');
  return [
    o.run.name, model, s?.augmentation ?? String(o.run.options.augment ?? 'none'), String(s?.lr ?? o.run.options.lr ?? ''),
    o.status === 'failed' ? failure(o.error ?? '') : o.status,
    pct(best?.valTop1), best ? String(best.epoch) : '',
    ...(withBleu ? [num(best?.valBleu?.[3])] : []),
    num(last?.trainLoss), num(last?.valLoss), pct(last?.trainTop1), pct(last?.valTop1),
    last !== undefined && o.metrics?.length ? String(last.epoch) : '',
    // Training time over all sittings of a resumed run (validation excluded).
    o.metrics?.length ? (o.metrics.reduce((t, m) => t + m.seconds, 0) / 60).toFixed(1) : '',
  ];
}

export function resultsMarkdown(outcomes: RunOutcome[]): string {
  const header = columns(outcomes);
  const withBleu = header.includes(BLEU_COLUMN);
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const o of outcomes) lines.push(`| ${row(o, withBleu).map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

export function resultsCsv(outcomes: RunOutcome[]): string {
  const header = columns(outcomes);
  const withBleu = header.includes(BLEU_COLUMN);
  const quote = (c: string) => (/[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c);
  return `${[header, ...outcomes.map((o) => row(o, withBleu))].map((r) => r.map(quote).join(',')).join('\n')}\n`;
}

/** The finished run with the best validation top-1 (its confusion matrix is drawn). */
export function bestRun(outcomes: RunOutcome[]): RunOutcome | undefined {
  const ranked = outcomes.flatMap((o) => {
    const best = o.status === 'done' ? bestAccuracy(o) : undefined;
    return best === undefined ? [] : [{ o, top1: best.valTop1 }];
  });
  return ranked.sort((a, b) => b.top1 - a.top1)[0]?.o;
}

/** A failure in a few words: divergence (the NaN guard) is the expected one in learning-rate sweeps. */
function failure(error: string): string {
  const diverged = /loss became (NaN|-?Infinity) at epoch (\d+)/.exec(error);
  if (diverged) return `diverged (loss ${diverged[1]} in epoch ${diverged[2]})`;
  return `failed: ${error.split('\n')[0]!.slice(0, 80)}`;
}
