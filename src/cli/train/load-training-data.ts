import cliProgress from 'cli-progress';
import type { CaptionData } from '../../data/captions/load-captions';
import type { ImageDataset } from '../../data/dataset';
import { isUserFacing, UserError } from '../errors';
import type { DataRequest } from './training-settings';

export interface TrainingData {
  train: ImageDataset;
  val: ImageDataset;
  /** Captioners only: the images' captions and the vocabulary. */
  captions: CaptionData | undefined;
}

/** What the flags ask of any data set, with where loading reports its progress and its notes. */
export type DataLoad = DataRequest & { onProgress: (done: number, total: number) => void; onNotice: (message: string) => void };

/**
 * Loads the training data with `load` (the task's: a classifier's images, a captioner's images and captions).
 * Decoding shows a progress bar when `showBar`; any failure becomes a one-line UserError.
 */
export async function loadTrainingData(request: DataRequest, showBar: boolean, load: (request: DataLoad) => Promise<TrainingData>): Promise<TrainingData> {
  const decodeBar = showBar ? new cliProgress.SingleBar({ format: 'decoding images |{bar}| {value}/{total} | ETA {eta_formatted}', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  try {
    return await load({
      ...request,
      onProgress: (done: number, total: number) => {
        if (!decodeBar) return;
        if (done <= 256) decodeBar.start(total, done);
        decodeBar.update(done);
        if (done === total) decodeBar.stop();
      },
      onNotice: (message: string) => console.warn(message),
    });
  } catch (err) {
    if (isUserFacing(err)) throw err;
    throw new UserError((err as Error).message);
  } finally {
    decodeBar?.stop();
  }
}
