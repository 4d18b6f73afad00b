/**
 * A Teach bundle as the page uses it (written by `deepvision export-teach`): the card, the frozen backbone's
 * feature session, the heads' artifacts, a run's whole model when the bundle has one, and the taught or fine-tuned
 * model assembled for download.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { preprocessImage } from '../../../src/portable/image-preprocessing';
import type { ModelCard } from '../../../src/portable/model-card';
import { TeachBundleCard, TeachHead, teachCardProblems, TeachWholeModel } from '../../../src/portable/teach-card';
import { EpochReport, releaseSessions, TeachTrainer } from '../../../src/portable/teach-session';
import { bindInputs, spliceHead } from '../../../src/portable/teach-splice';
import type { TensorClass } from '../../../src/portable/training-step';
import type { TeachImage } from './images';
import { fetchBytes, fetchJson } from '../fetch-files';
import { createSession, Ort, Provider } from './runtime';

/** Images per run of the feature model: batching halves the time per image on wasm against one at a time. */
const FEATURE_BATCH = 8;

/** A trainer made from fresh sessions; when making it throws (its graphs do not fit), the sessions are released. */
async function withSessions<T>(sessions: { training: OrtWeb.InferenceSession; optimizer: OrtWeb.InferenceSession; eval: OrtWeb.InferenceSession }, make: () => T): Promise<T> {
  try {
    return make();
  } catch (err) {
    await releaseSessions(Object.values(sessions)).catch(() => undefined);
    throw err;
  }
}

export class TeachBundle {
  private constructor(
    readonly base: string,
    readonly card: TeachBundleCard,
    private readonly featureBytes: Uint8Array,
    private readonly featureSession: OrtWeb.InferenceSession,
    readonly provider: Provider,
  ) {}

  static async load(base: string, provider: Provider): Promise<TeachBundle> {
    const card = await fetchJson<TeachBundleCard>(`${base}teach.json`);
    const problems = teachCardProblems(card);
    if (problems.length > 0) throw new Error(`${base}teach.json: ${problems.join('; ')}`);
    const bytes = new Uint8Array(await fetchBytes(base + card.featureModel));
    // The session gets its own copy: onnxruntime-web may take over the buffer it is given.
    const session = await createSession(bytes.slice(), provider, `the backbone (${card.featureModel})`);
    return new TeachBundle(base, card, bytes, session, provider);
  }

  /** Class counts this bundle has heads for. */
  get classCounts(): number[] {
    return this.card.heads.map((h) => h.classes);
  }

  /** Values of one preprocessed image (channels x height x width): a row of the whole model's input. */
  get imageSize(): number {
    return this.card.input.shape.reduce((a, b) => a * b, 1);
  }

  /** Each image preprocessed as the model reads it, [images x channels x height x width]. */
  pixels(images: readonly TeachImage[]): Float32Array {
    const [c, h, w] = this.card.input.shape;
    const out = new Float32Array(images.length * this.imageSize);
    images.forEach((image, i) => out.set(preprocessImage(image.pixels, this.card.input.preprocessing, c, h, w), i * this.imageSize));
    return out;
  }

  /** Backbone features of each image, [images x features], computed in batches; reports progress after each. */
  async features(images: readonly TeachImage[], onProgress?: (done: number) => Promise<void> | void): Promise<Float32Array> {
    const [c, h, w] = this.card.input.shape;
    const size = c * h * w;
    const width = this.card.features;
    const out = new Float32Array(images.length * width);
    for (let start = 0; start < images.length; start += FEATURE_BATCH) {
      const batch = images.slice(start, start + FEATURE_BATCH);
      const input = new Float32Array(batch.length * size);
      batch.forEach((image, i) => input.set(preprocessImage(image.pixels, this.card.input.preprocessing, c, h, w), i * size));
      const result = await this.featureSession.run({ [this.card.input.name]: new Ort.Tensor('float32', input, [batch.length, c, h, w]) });
      const features = result.features;
      if (features === undefined || features.data.length !== batch.length * width) throw new Error(`the backbone returned no features [${batch.length}, ${width}]`);
      out.set(features.data as Float32Array, start * width);
      await onProgress?.(start + batch.length);
    }
    return out;
  }

  head(classes: number): TeachHead | undefined {
    return this.card.heads.find((h) => h.classes === classes);
  }

  /** A fresh trainer for a head: its graphs in sessions, its initial parameters. */
  async trainer(head: TeachHead): Promise<TeachTrainer<TeachHead>> {
    const { sessions, init } = await this.sessions(head);
    return withSessions(sessions, () => new TeachTrainer(head, sessions, init, Ort.Tensor as unknown as TensorClass, { classes: head.classes }));
  }

  /** A fresh trainer for the run's whole model (every parameter trains) from its trained state; undefined without one. */
  async wholeTrainer(): Promise<TeachTrainer<TeachWholeModel> | undefined> {
    const whole = this.card.wholeModel;
    if (whole === undefined) return undefined;
    const { sessions, init } = await this.sessions(whole);
    return withSessions(sessions, () => new TeachTrainer(whole, sessions, init, Ort.Tensor as unknown as TensorClass, {
      classes: whole.labels.length, input: { name: this.card.input.name, dims: this.card.input.shape },
    }));
  }

  private async sessions(m: TeachHead | TeachWholeModel) {
    const url = (file: string) => `${this.base}${m.folder}/${file}`;
    const [training, optimizer, evaluation, init] = await Promise.all([m.training, m.optimizer, m.eval, m.init].map((f) => fetchBytes(url(f))));
    // One at a time, so that when one fails to load, those already made are released rather than leaked.
    const made: OrtWeb.InferenceSession[] = [];
    try {
      for (const [bytes, file] of [[training!, m.training], [optimizer!, m.optimizer], [evaluation!, m.eval]] as const) {
        made.push(await createSession(bytes, this.provider, `${m.folder}/${file}`));
      }
    } catch (err) {
      await releaseSessions(made).catch(() => undefined);
      throw err;
    }
    return { sessions: { training: made[0]!, optimizer: made[1]!, eval: made[2]! }, init: init! };
  }

  /**
   * The taught model: the backbone with the trained head spliced on (one model.onnx, image in, logits out) and its
   * model.json, which `deepvision predict` and the classify page read.
   */
  async taughtModel(trainer: TeachTrainer<TeachHead>, labels: string[], last: EpochReport | undefined, images: number): Promise<{ model: Uint8Array<ArrayBuffer>; card: ModelCard }> {
    const head = new Uint8Array(await fetchBytes(`${this.base}${trainer.model.folder}/${trainer.model.inference}`));
    const parameters = trainer.model.parameters.map((p) => ({ name: p.name, dims: p.shape, data: trainer.state.get(p.name)!.data as Float32Array }));
    const model = spliceHead(this.featureBytes, head, parameters);
    const headParameters = parameters.reduce((n, p) => n + p.data.length, 0);
    const dataset = `taught in the browser (${images} images, ${this.card.backbone.file})`;
    return { model, card: this.modelCard(`taught-${labels.length}-classes`, labels, dataset, last, this.card.backbone.parameters + headParameters, model.byteLength) };
  }

  /** The fine-tuned whole model: its inference graph with the fine-tuned state bound as initializers, and its model.json. */
  async fineTunedModel(trainer: TeachTrainer<TeachWholeModel>, last: EpochReport | undefined, images: number): Promise<{ model: Uint8Array<ArrayBuffer>; card: ModelCard }> {
    const whole = trainer.model;
    const graph = new Uint8Array(await fetchBytes(`${this.base}${whole.folder}/${whole.inference}`));
    const bound = new Set(whole.inferenceParameters);
    const state = whole.parameters.filter((p) => bound.has(p.name)).map((p) => ({ name: p.name, dims: p.shape, data: trainer.state.get(p.name)!.data as Float32Array }));
    const model = bindInputs(graph, state);
    const dataset = `fine-tuned in the browser (${images} images, from ${this.card.backbone.file})`;
    const count = state.reduce((n, p) => n + p.data.length, 0);
    return { model, card: this.modelCard(`${this.card.backbone.file}-fine-tuned`, whole.labels, dataset, last, count, model.byteLength) };
  }

  private modelCard(name: string, labels: string[], dataset: string, last: EpochReport | undefined, parameters: number, bytes: number): ModelCard {
    return {
      format: 'deepvision-model-card',
      version: 1,
      name,
      file: 'model.onnx',
      input: this.card.input,
      output: { name: 'logits', kind: 'logits' },
      labels,
      training: {
        dataset,
        ...(last !== undefined && Number.isFinite(last.heldOutAccuracy)
          ? { validation: { top1: last.heldOutAccuracy, top5: last.heldOutTop5, loss: last.heldOutLoss, epoch: last.epoch } }
          : {}),
      },
      precision: 'float32',
      parameters,
      bytes,
      producer: `${this.card.producer} (Teach page)`,
      exportedAt: new Date().toISOString(),
    };
  }
}
