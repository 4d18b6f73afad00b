/**
 * Top-k accuracy counts from logits [N, C] (row-major) and labels. A row with a NaN logit counts as wrong: NaN
 * compares false with everything, so it would otherwise rank its label first.
 */
export function topKCorrect(logits: Float32Array, labels: ArrayLike<bigint | number>, classes: number, k: number): number {
  let correct = 0;
  const n = labels.length;
  for (let i = 0; i < n; i++) {
    const row = i * classes;
    const target = logits[row + Number(labels[i])]!;
    // The label is in the top k when fewer than k classes score strictly higher.
    let higher = 0;
    let nan = false;
    for (let c = 0; c < classes; c++) {
      const v = logits[row + c]!;
      if (Number.isNaN(v)) nan = true;
      else if (v > target) higher++;
    }
    if (!nan && higher < k) correct++;
  }
  return correct;
}

/** Running means of a metric over batches of different sizes. */
export class Average {
  constructor(private sum = 0, private count = 0) {}

  /** The running totals, to save and continue later. */
  get totals(): { sum: number; count: number } {
    return { sum: this.sum, count: this.count };
  }

  add(value: number, weight = 1): void {
    this.sum += value * weight;
    this.count += weight;
  }

  get value(): number {
    return this.count === 0 ? NaN : this.sum / this.count;
  }
}
