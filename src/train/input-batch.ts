import * as ort from 'onnxruntime-node';
import { fillBatch, ImageDataset, Normalization } from '../data/dataset';
import { CachedFeatures, readFeatureRows } from './frozen-features';

/**
 * Pixels per evaluation batch: 256 images of 64x64. Images are evaluated at most `atMost` at a time, and large ones
 * fewer, so that a batch's activations stay about what 256 small images take: MobileNetV2 evaluated 256 images
 * of 224 px at a time peaked at 13.7 GB (5.7 GB while training in batches of 32).
 */
const EVALUATION_BATCH_PIXELS = 256 * 64 * 64;

/** Images per evaluation batch of `data`: `atMost`, or fewer for large images; cached features are small. */
export function evaluationBatchSize(data: ImageDataset, atMost: number, features?: CachedFeatures): number {
  if (features !== undefined) return atMost;
  return Math.max(1, Math.min(atMost, Math.floor(EVALUATION_BATCH_PIXELS / (data.height * data.width))));
}

/**
 * The data input of an evaluation batch, by image index: the images normalized (`input`), or their cached backbone
 * features (`features`) when the graph starts after a frozen backbone. Reuses one buffer; `labels` holds the images'
 * labels after each fill.
 */
export class InputBatch {
  readonly name: 'input' | 'features';
  private readonly dims: number[];
  private readonly size: number;
  private readonly buffer: Float32Array;
  readonly labels: BigInt64Array;

  constructor(private readonly data: ImageDataset, private readonly normalization: Normalization, capacity: number, private readonly features?: CachedFeatures) {
    this.name = features ? 'features' : 'input';
    this.dims = features ? features.perImage : [data.channels, data.height, data.width];
    this.size = this.dims.reduce((a, b) => a * b, 1);
    this.buffer = new Float32Array(capacity * this.size);
    this.labels = new BigInt64Array(capacity);
  }

  /** The input tensor [n, ...] of the images `indices` (valid until the next fill). */
  fill(indices: readonly number[]): ort.Tensor {
    const n = indices.length;
    if (this.features) {
      readFeatureRows(this.features, indices, this.buffer);
      indices.forEach((k, i) => (this.labels[i] = BigInt(this.data.labels[k]!)));
    } else fillBatch(this.data, indices, this.normalization, this.buffer, this.labels);
    return new ort.Tensor('float32', this.buffer.subarray(0, n * this.size), [n, ...this.dims]);
  }
}
