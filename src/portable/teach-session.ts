/**
 * Teaching in the page (and in Node, for tests and the bench): a seeded held-out split per class, epochs of shuffled
 * batches, each update driven by the shared TrainingStep, and the held-out loss and accuracy after every epoch. The
 * rows are cached backbone features when a new head is taught, preprocessed images when a whole model is
 * fine-tuned. It imports only onnxruntime-common's types; the caller passes its runtime's sessions and Tensor class.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { Rng } from '../util/rng';
import { StepGraphs, stepGraphsOf, stepProblem, TensorClass, TrainingStep } from './training-step';
import { outputOf } from './session-output';

/** What a trainer needs of a head or a whole model of a Teach bundle (TeachHead and TeachWholeModel both are). */
export interface TrainableSpec {
  /** The state the graphs read, in the order of the init file's values. */
  parameters: readonly { name: string; shape: readonly number[] }[];
  /** The init file's name (for messages). */
  init: string;
  /** Dropout noise inputs of the training graph and their shapes after the batch dimension. */
  noise?: readonly { name: string; shape: readonly number[] }[];
}

/** Rows the graphs read: their input's name and a row's dims (default `features` [width]). */
export interface RowInput {
  name: string;
  dims?: readonly number[];
}

/** Rows per run of the evaluation graph: bounds memory on large held-out sets of whole images. */
const EVAL_BATCH = 32;

/** Images as rows of the graphs' input (backbone features or preprocessed pixels): `width` floats each, and a class index per row. */
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

/** A head's or a model's training state: its parameters (and buffers) from the bundle's init file, its optimizer slots at zero. */
function initialState(head: TrainableSpec, init: ArrayBuffer, graphs: StepGraphs, TensorOf: TensorClass): Map<string, Tensor> {
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
    // The longest name that prefixes the slot's: `a.b` and `a.b.c` may both be parameters.
    const param = head.parameters.filter((p) => slot.startsWith(`${p.name}.`)).sort((a, b) => b.name.length - a.name.length)[0];
    if (param === undefined) throw new Error(`optimizer slot '${slot}' belongs to no parameter of the head`);
    state.set(`optimizer.${slot}`, new TensorOf('float32', new Float32Array(param.shape.reduce((a, b) => a * b, 1)), param.shape));
  }
  return state;
}

/** Releases every session given, even when one release fails; the first failure is rethrown after all were tried. */
export async function releaseSessions(sessions: readonly InferenceSession[]): Promise<void> {
  const results = await Promise.allSettled(sessions.map((s) => s.release()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/**
 * A head being taught or a whole model being fine-tuned: its sessions (training, optimizer, evaluation), its state,
 * and the update count.
 */
export class TeachTrainer<M extends TrainableSpec = TrainableSpec> {
  readonly step: TrainingStep;
  readonly state: Map<string, Tensor>;
  readonly classes: number;
  updates = 0;
  private readonly input: RowInput;

  constructor(
    readonly model: M,
    private readonly sessions: { training: InferenceSession; optimizer: InferenceSession; eval: InferenceSession },
    init: ArrayBuffer,
    private readonly TensorOf: TensorClass,
    o: { classes: number; input?: RowInput },
  ) {
    this.classes = o.classes;
    this.input = o.input ?? { name: 'features' };
    const graphs = stepGraphsOf(sessions.training, sessions.optimizer);
    this.state = initialState(model, init, graphs, TensorOf);
    const problem = stepProblem(graphs, this.state);
    if (problem !== undefined) throw new Error(`the ${o.classes}-class model of ${model.init} does not fit its graphs: ${problem}`);
    this.step = new TrainingStep(sessions.training, sessions.optimizer, graphs, TensorOf);
  }

  /**
   * The data inputs of a batch of rows; for update number `step` of a graph with dropout, also its noise, drawn
   * from the stream the Node trainer draws update `step`'s noise from (so both feed the same masks).
   */
  batch(set: FeatureSet, rows: readonly number[], step?: { step: number; seed: number }): Record<string, Tensor> {
    const { features, labels } = selectRows(set, rows);
    const n = rows.length;
    const feeds: Record<string, Tensor> = {
      [this.input.name]: new this.TensorOf('float32', features, [n, ...(this.input.dims ?? [set.width])]),
      labels: new this.TensorOf('int64', BigInt64Array.from(labels, (l) => BigInt(l)), [n]),
    };
    for (const v of step === undefined ? [] : this.model.noise ?? []) {
      const rng = Rng.derive(step!.seed, `dropout/${step!.step}/${v.name}`);
      const size = n * v.shape.reduce((a, b) => a * b, 1);
      feeds[v.name] = new this.TensorOf('float32', Float32Array.from({ length: size }, () => rng.next()), [n, ...v.shape]);
    }
    return feeds;
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
      // Rows this epoch trained on: a stop ends it early, and its mean loss is over those rows only.
      let seen = 0;
      for (let start = 0; start < count; start += o.batchSize) {
        const rows = order.slice(start, start + o.batchSize);
        const step = ++this.updates;
        const loss = await this.step.run(this.state, this.batch(train, rows, { step, seed: o.seed ?? 0 }), o.learningRate, step);
        lossSum += (loss.data as Float32Array)[0]! * rows.length;
        seen += rows.length;
        if (o.shouldStop?.()) break;
      }
      const seconds = (performance.now() - started) / 1000;
      const evaluated = heldOut.labels.length > 0 ? await this.evaluate(heldOut) : { loss: NaN, accuracy: NaN, top5: NaN };
      const report = {
        epoch, trainLoss: lossSum / seen, heldOutLoss: evaluated.loss, heldOutAccuracy: evaluated.accuracy, heldOutTop5: evaluated.top5, steps: this.updates, seconds,
      };
      if (!Number.isFinite(report.trainLoss)) throw new Error(`the loss became ${report.trainLoss} in epoch ${epoch}: try a lower learning rate`);
      reports.push(report);
      await o.onEpoch?.(report);
      if (o.shouldStop?.()) break;
    }
    return reports;
  }

  /** Mean loss, top-1 and top-5 accuracy on a labelled set (eval mode, in runs of at most EVAL_BATCH rows). */
  async evaluate(set: FeatureSet): Promise<{ loss: number; accuracy: number; top5: number }> {
    const count = set.labels.length;
    const k = this.classes;
    let lossSum = 0;
    let top1 = 0;
    let top5 = 0;
    for (let start = 0; start < count; start += EVAL_BATCH) {
      const rows = [...Array(Math.min(EVAL_BATCH, count - start)).keys()].map((i) => start + i);
      const out = await this.sessions.eval.run({ ...this.batch(set, rows), ...this.evalState() });
      const logits = outputOf(out, 'logits', 'the evaluation graph').data as Float32Array;
      lossSum += (outputOf(out, 'loss', 'the evaluation graph').data as Float32Array)[0]! * rows.length;
      rows.forEach((row, i) => {
        const label = set.labels[row]!;
        // The label's rank: how many classes score higher.
        let above = 0;
        for (let c = 0; c < k; c++) if (logits[i * k + c]! > logits[i * k + label]!) above++;
        top1 += Number(above === 0);
        top5 += Number(above < 5);
      });
    }
    return { loss: lossSum / count, accuracy: top1 / count, top5: top5 / count };
  }

  /** Logits [rows x classes] of unlabelled rows of `width` floats. */
  async logits(rows: Float32Array, width: number): Promise<Float32Array> {
    const n = rows.length / width;
    const out = await this.sessions.eval.run({
      ...this.batch({ features: rows, labels: new Int32Array(n), width }, [...Array(n).keys()]),
      ...this.evalState(),
    });
    return outputOf(out, 'logits').data as Float32Array;
  }

  /** The state by name, parameters and buffers (what the downloaded model is assembled from). */
  parameters(): Record<string, Tensor> {
    return Object.fromEntries(this.model.parameters.map((p) => [p.name, this.state.get(p.name)!]));
  }

  /**
   * Frees the trainer's sessions (onnxruntime-web keeps their memory until released); the trainer is unusable after.
   * Its state stays readable: it is plain tensors.
   */
  async release(): Promise<void> {
    await releaseSessions(Object.values(this.sessions));
  }

  /** The state the evaluation graph reads. */
  private evalState(): Record<string, Tensor> {
    const wanted = new Set(this.sessions.eval.inputNames);
    return Object.fromEntries(Object.entries(this.parameters()).filter(([name]) => wanted.has(name)));
  }
}
