/** The sweep's results table: columns, best epochs, and captioners' BLEU beside their next-word accuracy. */
import { bestRun, resultsCsv, resultsMarkdown, RunOutcome } from '../src/sweep/report';
import type { EpochMetrics } from '../src/train/trainer';

const epoch = (n: number, valTop1: number, extra: Partial<EpochMetrics> = {}): EpochMetrics => ({
  epoch: n, step: 10 * n, learningRate: 0.001, trainLoss: 1 / n, valLoss: 1.5 / n, valTop1, valTop5: 0.9, seconds: 30, imagesPerSecond: 100, ...extra,
});

const classifier: RunOutcome = { run: { name: 'cnn', options: { graph: 'graphs/cnn.ts' } }, status: 'done', metrics: [epoch(1, 0.5), epoch(2, 0.7), epoch(3, 0.6)] };
const captioner: RunOutcome = {
  run: { name: 'captioner', options: { graph: 'graphs/captioner.ts' } }, status: 'done',
  metrics: [epoch(1, 0.3, { valBleu: [0.5, 0.3, 0.2, 0.1] }), epoch(2, 0.4, { valBleu: [0.6, 0.4, 0.3, 0.15] })],
};

test('classifier sweeps keep their columns; the best epoch is the one with the highest validation top-1', () => {
  const [header, , row] = resultsMarkdown([classifier]).trim().split('\n');
  expect(header).not.toContain('BLEU');
  const cells = row!.split(' | ');
  expect(cells.slice(5, 7)).toEqual(['70.0 %', '2']);
  expect(bestRun([classifier, { ...classifier, run: { name: 'failed', options: {} }, status: 'failed', error: 'x' }])).toBe(classifier);
});

test('with a captioner the table gains the best epoch\'s validation BLEU-4 after the best epoch; classifiers leave it empty', () => {
  const csv = resultsCsv([classifier, captioner]).trim().split('\n').map((line) => line.split(','));
  const at = csv[0]!.indexOf('best-epoch val BLEU-4');
  expect(at).toBe(csv[0]!.indexOf('best epoch') + 1);
  expect(csv.map((r) => r.length)).toEqual([14, 14, 14]);
  expect(csv[1]![at]).toBe('');
  expect([csv[2]![at - 1], csv[2]![at]]).toEqual(['2', '0.150']);
});
