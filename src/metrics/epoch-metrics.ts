/** What one epoch of training measured: the record metrics.jsonl, checkpoints, summaries and sweeps share. */
export interface EpochMetrics {
  epoch: number;
  step: number;
  learningRate: number;
  trainLoss: number;
  valLoss: number;
  valTop1: number;
  valTop5: number;
  seconds: number;
  imagesPerSecond: number;
  /** Captioners: corpus BLEU-1..4 of greedy captions of validation images. */
  valBleu?: number[];
  /** Eval-mode loss and top-1 on a fixed sample of the training split (without augmentation). */
  trainEvalLoss?: number;
  trainTop1?: number;
}
