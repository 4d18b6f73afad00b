import * as ort from 'onnxruntime-node';
import { fillBatch, ImageDataset, Normalization } from '../data/dataset';
import { CachedFeatures, readFeatureRows } from './frozen-features';



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
