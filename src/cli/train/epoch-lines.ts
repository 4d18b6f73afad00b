import type { EpochMetrics } from '../../metrics/epoch-metrics';

/** The table of all epochs printed when the run ends. */
export function summaryTable(history: EpochMetrics[]): string {
  const header = 'epoch  train loss  train top-1  val loss  val top-1  val top-5   img/s';
  const percent = (v: number | undefined) => (v === undefined ? '      -  ' : `${(100 * v).toFixed(2).padStart(9)} %`);
  const rows = history.map((m) => `${String(m.epoch).padStart(5)}${m.trainLoss.toFixed(4).padStart(12)}  ${percent(m.trainTop1)}${m.valLoss.toFixed(4).padStart(10)}${percent(m.valTop1)}${percent(m.valTop5)}${m.imagesPerSecond.toFixed(0).padStart(8)}`);
  return [header, ...rows].join('\n');
}
