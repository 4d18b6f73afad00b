/**
 * Vega-Lite specifications of the study's charts (pure data: rendering is render-chart.ts's job).
 */
export interface RunCurve {
  run: string;
  /** valBleu: a captioner's corpus BLEU-1..4 of greedy validation captions (its top-1 is next-word accuracy). */
  metrics: { epoch: number; trainLoss: number; valLoss: number; valTop1: number; trainTop1?: number; valBleu?: number[] }[];
}

export type VegaLiteSpec = Record<string, unknown>;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const FONT = { font: 'DejaVu Sans, Helvetica, Arial, sans-serif' };

/**
 * Loss (left) and accuracy (right) per epoch, train dashed and validation solid, one colour per run. Captioners'
 * accuracy is next-word top-1, and a third panel shows their validation BLEU-4. The subtitle says what the dashed
 * lines are: the running training loss, and the eval-mode top-1 of a training sample where the runs measured one.
 */
export function curvesSpec(runs: RunCurve[], title: string): VegaLiteSpec {
  const captioners = runs.length > 0 && runs.every((r) => r.metrics.some((m) => m.valBleu !== undefined));
  const accuracy = captioners ? 'next-word top-1' : 'top-1 accuracy';
  const values = runs.flatMap((r) => r.metrics.flatMap((m) => [
    { run: r.run, epoch: m.epoch, split: 'train', metric: 'loss', value: m.trainLoss },
    { run: r.run, epoch: m.epoch, split: 'validation', metric: 'loss', value: m.valLoss },
    ...(m.trainTop1 !== undefined ? [{ run: r.run, epoch: m.epoch, split: 'train', metric: accuracy, value: m.trainTop1 }] : []),
    { run: r.run, epoch: m.epoch, split: 'validation', metric: accuracy, value: m.valTop1 },
    ...(captioners && m.valBleu?.[3] !== undefined ? [{ run: r.run, epoch: m.epoch, split: 'validation', metric: 'BLEU-4', value: m.valBleu[3] }] : []),
  ]));
  const sampled = runs.some((r) => r.metrics.some((m) => m.trainTop1 !== undefined));
  const subtitle = `solid: validation · dashed: training (loss: running average${sampled ? '; top-1: eval mode on a fixed training sample' : ''})`;
  const panel = (metric: string, format: string) => ({
    title: metric,
    transform: [{ filter: { field: 'metric', equal: metric } }],
    mark: { type: 'line', point: { size: 18 }, strokeWidth: 1.8 },
    width: 300,
    height: 200,
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'value', type: 'quantitative', title: null, axis: { format }, scale: { zero: false } },
      color: { field: 'run', type: 'nominal', legend: runs.length > 1 ? { orient: 'bottom', columns: 2, title: null, labelLimit: 480 } : null },
      strokeDash: { field: 'split', type: 'nominal', scale: { domain: ['validation', 'train'], range: [[1, 0], [5, 3]] }, legend: null },
      detail: { field: 'split' },
    },
  });
  return {
    $schema: SCHEMA,
    title: { text: title, subtitle, anchor: 'start', subtitleColor: '#555' },
    data: { values },
    hconcat: [panel('loss', '.2f'), panel(accuracy, '.0%'), ...(captioners ? [panel('BLEU-4', '.2f')] : [])],
    resolve: { scale: { color: 'shared' } },
    config: { ...FONT, view: { stroke: null }, axis: { grid: true, gridOpacity: 0.4 } },
    background: 'white',
    padding: 12,
  };
}

/** Confusion matrix: rows are true classes, columns predictions, cells the share of each true class. */
export function confusionSpec(matrix: number[][], classNames: string[], title: string): VegaLiteSpec {
  const values = matrix.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    return row.map((count, p) => ({ truth: classNames[t] ?? String(t), predicted: classNames[p] ?? String(p), share: count / total, count }));
  });
  const size = Math.max(220, Math.min(520, classNames.length * 17));
  return {
    $schema: SCHEMA,
    title: { text: title, anchor: 'start' },
    data: { values },
    width: size,
    height: size,
    layer: [
      {
        mark: 'rect',
        encoding: {
          x: { field: 'predicted', type: 'nominal', sort: classNames, axis: { labelAngle: -50, labelLimit: 90 } },
          y: { field: 'truth', type: 'nominal', sort: classNames, title: 'true class', axis: { labelLimit: 90 } },
          color: { field: 'share', type: 'quantitative', scale: { scheme: 'blues', domain: [0, 1] }, legend: { format: '.0%', title: 'share of class' } },
        },
      },
      ...(classNames.length <= 12 ? [{
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          x: { field: 'predicted', type: 'nominal', sort: classNames },
          y: { field: 'truth', type: 'nominal', sort: classNames },
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
        },
      }] : []),
    ],
    config: { ...FONT, view: { stroke: null }, axis: { labelFontSize: 9 } },
    background: 'white',
    padding: 12,
  };
}
