import { loadCaptionData } from '../../data/captions/load-captions';
import { evaluateCaptionerCheckpoint } from '../caption-eval';
import { UserError } from '../errors';
import { applyCaptionerDefaults } from '../train/captioner-defaults';
import { captionRequestFromFlags } from '../train/training-settings';
import type { CliTask } from './task';

/** A captioner on the command line: images with captions (a vocabulary from the training split); eval reports BLEU and CIDEr-D. */
export const CAPTIONING_CLI: CliTask = {
  applyTrainDefaults: applyCaptionerDefaults,

  // The caption data set's images, and each image's captions encoded with a vocabulary built from the training split.
  async loadTrainingData(source, request, f) {
    const captions = await loadCaptionData(source, { ...request, ...captionRequestFromFlags(f) });
    return { train: captions.train.images, val: captions.val.images, captions };
  },

  describeTrainingData(modelName, source, { train, val, captions }) {
    // This task's loadTrainingData always loads captions.
    const c = captions!;
    return `Training ${modelName} on ${source} (${train.count} train images with ${c.train.encoded.count} captions / ${val.count} validation images, ${train.height}x${train.width}, vocabulary of ${c.vocabulary.size} words, captions of up to ${c.maxLength} tokens)`;
  },

  formatEpoch(m) {
    const bleu = m.valBleu ?? [];
    return `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)} | val loss ${m.valLoss.toFixed(4)} next-word top-1 ${(100 * m.valTop1).toFixed(2)} % BLEU-4 ${bleu[3]!.toFixed(3)} (BLEU-1 ${bleu[0]!.toFixed(3)}) | ${m.imagesPerSecond.toFixed(0)} captions/s, ${m.seconds.toFixed(1)} s`;
  },

  evaluateCheckpoint: (file, checkpoint, definition, f) => {
    if (f.tta !== 'none') throw new UserError(`--tta ${f.tta}: test-time augmentation is for classifiers; ${file} is a captioner's checkpoint`);
    return evaluateCaptionerCheckpoint(file, checkpoint.metadata, definition, {
      data: f.data, split: f.split, images: f.valSize, beam: f.beam, seed: f.seed, valFraction: f.valFraction, gallery: f.gallery, gallerySize: f.gallerySize,
    });
  },
};
