/**
 * Teaching a head in the page (and in Node, for tests and the bench): a seeded held-out split per class, epochs of
 * shuffled batches of cached backbone features, each update driven by the shared TrainingStep, and the held-out
 * loss and accuracy after every epoch. It imports only onnxruntime-common's types; the caller passes its runtime's
 * sessions and Tensor class.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { Rng } from '../util/rng';
import { StepGraphs, stepGraphsOf, stepProblem, TensorClass, TrainingStep } from './training-step';
import type { TeachHead } from '../export/teach-card';

/** Images as backbone features: `count` rows of `width` floats, and a class index per row. */
export interface FeatureSet {
  features: Float32Array;
  labels: Int32Array;
  width: number;
}

export interface EpochReport {
  epoch: number;
  /** Mean training loss over the epoch's batches (weighted by batch size). */
  trainLoss: number;
  heldOutLoss: number;
  heldOutAccuracy: number;
  /** Held-out top-5 accuracy (1 with five classes or fewer). */
  heldOutTop5: number;
  /** Updates so far, and wall time of this epoch's updates (evaluation excluded). */
  steps: number;
  seconds: number;
}

export interface TeachOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed?: number;
  /** Called after each epoch; training waits for it (the page draws, and checks whether to stop). */
  onEpoch?: (report: EpochReport) => Promise<void> | void;
  /** Checked between updates: true stops training after the current one. */
  shouldStop?: () => boolean;
}

/**
 * Rows of each class held out for validation: round(fraction x count), at least one of a class with two or more
 * images and never all of them; which ones is seeded. Returns train and held-out row indices, in row order.
 */
export function heldOutSplit(labels: ArrayLike<number>, fraction: number, seed = 0): { train: number[]; heldOut: number[] } {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) byClass.set(labels[i]!, [...(byClass.get(labels[i]!) ?? []), i]);
  const heldOut = new Set<number>();
  for (const [label, rows] of byClass) {
    const n = rows.length < 2 ? 0 : Math.min(rows.length - 1, Math.max(1, Math.round(fraction * rows.length)));
    for (const row of new Rng(`teach-split/${seed}/${label}`).shuffle([...rows]).slice(0, n)) heldOut.add(row);
  }
  const all = [...Array(labels.length).keys()];
  return { train: all.filter((i) => !heldOut.has(i)), heldOut: all.filter((i) => heldOut.has(i)) };
}

/** The rows `indices` of a feature set, as a set of their own. */
export function selectRows(set: FeatureSet, indices: readonly number[]): FeatureSet {
  const features = new Float32Array(indices.length * set.width);
  const labels = new Int32Array(indices.length);
  indices.forEach((k, i) => {
    features.set(set.features.subarray(k * set.width, (k + 1) * set.width), i * set.width);
    labels[i] = set.labels[k]!;
  });
  return { features, labels, width: set.width };
}

/** A head's training state: its parameters from the bundle's init file, its optimizer slots at zero. */
export function initialState(head: TeachHead, init: ArrayBuffer, graphs: StepGraphs, TensorOf: TensorClass): Map<string, Tensor> {
  const state = new Map<string, Tensor>();
  const values = new Float32Array(init);
  let at = 0;
  for (const p of head.parameters) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (at + size > values.length) throw new Error(`the head's ${head.init} is too short for its parameters`);
    state.set(p.name, new TensorOf('float32', values.slice(at, at + size), p.shape));
    at += size;
  }
  if (at !== values.length) throw new Error(`the head's ${head.init} has ${values.length - at} values more than its parameters`);
  for (const slot of graphs.slots) {
    const param = head.parameters.find((p) => slot.startsWith(`${p.name}.`));
    if (param === undefined) throw new Error(`optimizer slot '${slot}' belongs to no parameter of the head`);
    state.set(`optimizer.${slot}`, new TensorOf('float32', new Float32Array(param.shape.reduce((a, b) => a * b, 1)), param.shape));
  }
  return state;
}

/** A head being taught: its sessions (training, optimizer, evaluation), its state, and the update count. */
export class HeadTrainer {
  readonly step: TrainingStep;
  readonly state: Map<string, Tensor>;
  updates = 0;

  constructor(
    readonly head: TeachHead,
    private readonly sessions: { training: InferenceSession; optimizer: InferenceSession; eval: InferenceSession },
    init: ArrayBuffer,
    private readonly TensorOf: TensorClass,
  ) {
    const graphs = stepGraphsOf(sessions.training, sessions.optimizer);
    this.state = initialState(head, init, graphs, TensorOf);
    const problem = stepProblem(graphs, this.state);
    if (problem !== undefined) throw new Error(`the head for ${head.classes} classes does not fit its graphs: ${problem}`);
    this.step = new TrainingStep(sessions.training, sessions.optimizer, graphs, TensorOf);
  }

  /** The data inputs of a batch of rows. */
  batch(set: FeatureSet, rows: readonly number[]): Record<string, Tensor> {
    const { features, labels } = selectRows(set, rows);
    return {
      features: new this.TensorOf('float32', features, [rows.length, set.width]),
      labels: new this.TensorOf('int64', BigInt64Array.from(labels, (l) => BigInt(l)), [rows.length]),
    };
  }

  /** Trains on `train` for the epochs asked, reporting held-out loss and accuracy on `heldOut` after each. */
  async train(train: FeatureSet, heldOut: FeatureSet, o: TeachOptions): Promise<EpochReport[]> {
    const reports: EpochReport[] = [];
    const rng = new Rng(`teach/${o.seed ?? 0}`);
    const count = train.labels.length;
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const order = rng.shuffle([...Array(count).keys()]);
      const started = performance.now();
      let lossSum = 0;
      for (let start = 0; start < count; start += o.batchSize) {
        const rows = order.slice(start, start + o.batchSize);
        const loss = await this.step.run(this.state, this.batch(train, rows), o.learningRate, ++this.updates);
        lossSum += (loss.data as Float32Array)[0]! * rows.length;
        if (o.shouldStop?.()) break;
      }
      const seconds = (performance.now() - started) / 1000;
      const evaluated = heldOut.labels.length > 0 ? await this.evaluate(heldOut) : { loss: NaN, accuracy: NaN, top5: NaN };
      const report = {
        epoch, trainLoss: lossSum / count, heldOutLoss: evaluated.loss, heldOutAccuracy: evaluated.accuracy, heldOutTop5: evaluated.top5, steps: this.updates, seconds,
      };
      if (!Number.isFinite(report.trainLoss)) throw new Error(`the loss became ${report.trainLoss} in epoch ${epoch}: try a lower learning rate`);
      reports.push(report);
      await o.onEpoch?.(report);
      if (o.shouldStop?.()) break;
    }
    return reports;
  }

  /** Mean loss, top-1 and top-5 accuracy on a labelled set (eval mode). */
  async evaluate(set: FeatureSet): Promise<{ loss: number; accuracy: number; top5: number }> {
    const rows = [...Array(set.labels.length).keys()];
    const out = await this.sessions.eval.run({ ...this.batch(set, rows), ...this.parameters() });
    const logits = out.logits!.data as Float32Array;
    const k = this.head.classes;
    let top1 = 0;
    let top5 = 0;
    for (const i of rows) {
      const label = set.labels[i]!;
      // The label's rank: how many classes score higher.
      let above = 0;
      for (let c = 0; c < k; c++) if (logits[i * k + c]! > logits[i * k + label]!) above++;
      top1 += Number(above === 0);
      top5 += Number(above < 5);
    }
    return { loss: (out.loss!.data as Float32Array)[0]!, accuracy: top1 / rows.length, top5: top5 / rows.length };
  }

  /** Logits [rows x classes] of unlabelled features. */
  async logits(features: Float32Array, width: number): Promise<Float32Array> {
    const n = features.length / width;
    const out = await this.sessions.eval.run({
      features: new this.TensorOf('float32', features, [n, width]),
      labels: new this.TensorOf('int64', new BigInt64Array(n), [n]),
      ...this.parameters(),
    });
    return out.logits!.data as Float32Array;
  }

  /** The head's parameters by name (what the evaluation graph and the downloaded model take). */
  parameters(): Record<string, Tensor> {
    return Object.fromEntries(this.head.parameters.map((p) => [p.name, this.state.get(p.name)!]));
  }
}
