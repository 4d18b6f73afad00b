import cliProgress from 'cli-progress';
import { CaptionData, loadCaptionData } from '../../data/captions/load-captions';
import type { ImageDataset } from '../../data/dataset';
import { loadData } from '../../data/registry';
import { isUserFacing, UserError } from '../errors';
import type { CaptionRequest, DataRequest } from './training-settings';

export interface TrainingData {
  train: ImageDataset;
  val: ImageDataset;
  /** Captioners only: the images' captions and the vocabulary. */
  captions: CaptionData | undefined;
}

/**
 * Loads what `--data` names: a classifier's images, or (given a caption request) a captioner's images with their
 * captions. Decoding shows a progress bar when `showBar`; any failure becomes a one-line UserError.
 */
export async function loadTrainingData(source: string, request: DataRequest, captionRequest: CaptionRequest | undefined, showBar: boolean): Promise<TrainingData> {
  const decodeBar = showBar ? new cliProgress.SingleBar({ format: 'decoding images |{bar}| {value}/{total} | ETA {eta_formatted}', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  try {
    const common = {
      ...request,
      onProgress: (done: number, total: number) => {
        if (!decodeBar) return;
        if (done <= 256) decodeBar.start(total, done);
        decodeBar.update(done);
        if (done === total) decodeBar.stop();
      },
      onNotice: (message: string) => console.warn(message),
    };
    if (captionRequest === undefined) return { ...await loadData(source, common), captions: undefined };
    // Captioners: the caption data set's images, and each image's captions encoded with a vocabulary built
    // from the training split.
    const captions = await loadCaptionData(source, { ...common, ...captionRequest });
    return { train: captions.train.images, val: captions.val.images, captions };
  } catch (err) {
    if (isUserFacing(err)) throw err;
    throw new UserError((err as Error).message);
  } finally {
    decodeBar?.stop();
  }
}

/** The line that says what the run trains on. */
export function describeTrainingData(modelName: string, source: string, data: TrainingData): string {
  const { train, val, captions } = data;
  return captions !== undefined
    ? `Training ${modelName} on ${source} (${train.count} train images with ${captions.train.encoded.count} captions / ${val.count} validation images, ${train.height}x${train.width}, vocabulary of ${captions.vocabulary.size} words, captions of up to ${captions.maxLength} tokens)`
    : `Training ${modelName} on ${source} (${train.count} train / ${val.count} validation images, ${train.height}x${train.width}, ${train.classNames.length} classes)`;
}
