import type { EpochMetrics } from '../../metrics/epoch-metrics';

/** The line printed after each epoch. */
export function formatEpoch(m: EpochMetrics): string {
  if (m.valBleu !== undefined) {
    return `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)} | val loss ${m.valLoss.toFixed(4)} next-word top-1 ${(100 * m.valTop1).toFixed(2)} % BLEU-4 ${m.valBleu[3]!.toFixed(3)} (BLEU-1 ${m.valBleu[0]!.toFixed(3)}) | ${m.imagesPerSecond.toFixed(0)} captions/s, ${m.seconds.toFixed(1)} s`;
  }
  const trainTop1 = m.trainTop1 === undefined ? '' : ` top-1 ${(100 * m.trainTop1).toFixed(2)} %`;
  return `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)}${trainTop1} | val loss ${m.valLoss.toFixed(4)} top-1 ${(100 * m.valTop1).toFixed(2)} % top-5 ${(100 * m.valTop5).toFixed(2)} % | ${m.imagesPerSecond.toFixed(0)} img/s, ${m.seconds.toFixed(1)} s`;
}

/** The table of all epochs printed when the run ends. */
export function summaryTable(history: EpochMetrics[]): string {
  const header = 'epoch  train loss  train top-1  val loss  val top-1  val top-5   img/s';
  const percent = (v: number | undefined) => (v === undefined ? '      -  ' : `${(100 * v).toFixed(2).padStart(9)} %`);
  const rows = history.map((m) => `${String(m.epoch).padStart(5)}${m.trainLoss.toFixed(4).padStart(12)}  ${percent(m.trainTop1)}${m.valLoss.toFixed(4).padStart(10)}${percent(m.valTop1)}${percent(m.valTop5)}${m.imagesPerSecond.toFixed(0).padStart(8)}`);
  return [header, ...rows].join('\n');
}
