import cliProgress from 'cli-progress';
import type { TrainOptions } from '../../train/options';
import type { EpochMetrics } from '../../metrics/epoch-metrics';

/** The trainer's progress callbacks, and a way to clear the epoch bar (Ctrl-C, the end of the run). */
export interface TrainingProgress extends Required<Pick<TrainOptions, 'onBatch' | 'onFeatures' | 'onEpoch'>> {
  stopEpochBar: () => void;
}

/**
 * Shows training as it goes: with `showBars`, a bar per epoch and one while backbone features are computed; in
 * any case one line per finished epoch.
 */
export function trainingProgress(showBars: boolean, epochs: number, formatEpoch: (m: EpochMetrics) => string): TrainingProgress {
  const bar = showBars
    ? new cliProgress.SingleBar({ format: 'epoch {epoch}/{epochs} |{bar}| {value}/{total} | loss {loss} | {ips} img/s | ETA {eta_formatted}', hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  let barEpoch = -1;
  let featureBar: cliProgress.SingleBar | undefined;
  // The feature pass's speed, from its first report (one batch in) to its last: the study reports it beside epochs.
  let featureStart: { what: string; done: number; at: number } | undefined;
  return {
    onFeatures: (done, total, what) => {
      if (featureStart?.what !== what) featureStart = { what, done, at: performance.now() };
      if (done === total) {
        const seconds = (performance.now() - featureStart.at) / 1000;
        const perSecond = (done - featureStart.done) / seconds;
        const speed = perSecond > 0 && Number.isFinite(perSecond) ? `: ${perSecond.toFixed(0)} images/s, ${(total / perSecond).toFixed(1)} s` : '';
        featureBar?.stop();
        featureBar = undefined;
        featureStart = undefined;
        console.log(`backbone features (${what}), ${total.toLocaleString('en-US')} images${speed}`);
        return;
      }
      if (featureBar === undefined) {
        if (!showBars) return;
        featureBar = new cliProgress.SingleBar({ format: `backbone features (${what}) |{bar}| {value}/{total} | ETA {eta_formatted}`, hideCursor: true }, cliProgress.Presets.shades_classic);
        featureBar.start(total, done);
      }
      featureBar.update(done);
    },
    onBatch: (e) => {
      if (!bar) return;
      if (e.epoch !== barEpoch) {
        if (barEpoch >= 0) bar.stop();
        barEpoch = e.epoch;
        bar.start(e.batches, e.batch, { epoch: e.epoch + 1, epochs, loss: '-', ips: '-' });
      }
      // NaN until the first loss is read back (on WebGPU it is read every few updates).
      bar.update(e.batch + 1, { loss: Number.isNaN(e.loss) ? '-' : e.loss.toFixed(4), ips: e.imagesPerSecond.toFixed(0) });
    },
    onEpoch: (m) => {
      bar?.stop();
      barEpoch = -1;
      console.log(formatEpoch(m));
    },
    stopEpochBar: () => bar?.stop(),
  };
}
