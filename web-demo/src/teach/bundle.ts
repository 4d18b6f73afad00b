/**
 * A Teach bundle as the page uses it (written by `deepvision export-teach`): the card, the frozen backbone's
 * feature session, the heads' artifacts, and the taught model assembled for download.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { preprocessImage } from '../../../src/export/image-preprocessing';
import type { ModelCard } from '../../../src/export/model-card';
import { TeachBundleCard, TeachHead, teachCardProblems } from '../../../src/export/teach-card';
import { EpochReport, HeadTrainer } from '../../../src/train/teach-session';
import { spliceHead } from '../../../src/export/teach-splice';
import type { TensorClass } from '../../../src/train/training-step';
import type { TeachImage } from './images';
import { createSession, fetchBytes, Ort, Provider } from './runtime';

/** Images per run of the feature model: batching halves the time per image on wasm against one at a time. */
const FEATURE_BATCH = 8;

export class TeachBundle {
  private constructor(
    readonly base: string,
    readonly card: TeachBundleCard,
    private readonly featureBytes: Uint8Array,
    private readonly featureSession: OrtWeb.InferenceSession,
    readonly provider: Provider,
  ) {}

  static async load(base: string, provider: Provider): Promise<TeachBundle> {
    const response = await fetch(`${base}teach.json`, { cache: 'no-cache' });
    if (!response.ok) throw new Error(`${base}teach.json: HTTP ${response.status}`);
    let card: TeachBundleCard;
    try {
      card = (await response.json()) as TeachBundleCard;
    } catch {
      throw new Error(`${base}teach.json is not valid JSON`);
    }
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
  async trainer(head: TeachHead): Promise<HeadTrainer> {
    const url = (file: string) => `${this.base}${head.folder}/${file}`;
    const [training, optimizer, evaluation, init] = await Promise.all([head.training, head.optimizer, head.eval, head.init].map((f) => fetchBytes(url(f))));
    const sessions = {
      training: await createSession(training!, this.provider, `${head.folder}/${head.training}`),
      optimizer: await createSession(optimizer!, this.provider, `${head.folder}/${head.optimizer}`),
      eval: await createSession(evaluation!, this.provider, `${head.folder}/${head.eval}`),
    };
    return new HeadTrainer(head, sessions, init!, Ort.Tensor as unknown as TensorClass);
  }

  /**
   * The taught model: the backbone with the trained head spliced on (one model.onnx, image in, logits out) and its
   * model.json, which `deepvision predict` and the classify page read.
   */
  async taughtModel(trainer: HeadTrainer, labels: string[], last: EpochReport | undefined, images: number): Promise<{ model: Uint8Array<ArrayBuffer>; card: ModelCard }> {
    const head = new Uint8Array(await fetchBytes(`${this.base}${trainer.head.folder}/${trainer.head.inference}`));
    const parameters = trainer.head.parameters.map((p) => ({ name: p.name, dims: p.shape, data: trainer.state.get(p.name)!.data as Float32Array }));
    const model = spliceHead(this.featureBytes, head, parameters);
    const headParameters = parameters.reduce((n, p) => n + p.data.length, 0);
    const card: ModelCard = {
      format: 'deepvision-model-card',
      version: 1,
      name: `taught-${labels.length}-classes`,
      file: 'model.onnx',
      input: this.card.input,
      output: { name: 'logits', kind: 'logits' },
      labels,
      training: {
        dataset: `taught in the browser (${images} images, ${this.card.backbone.file})`,
        ...(last !== undefined && Number.isFinite(last.heldOutAccuracy)
          ? { validation: { top1: last.heldOutAccuracy, top5: last.heldOutTop5, loss: last.heldOutLoss, epoch: last.epoch } }
          : {}),
      },
      precision: 'float32',
      parameters: this.card.backbone.parameters + headParameters,
      bytes: model.byteLength,
      producer: `${this.card.producer} (Teach page)`,
      exportedAt: new Date().toISOString(),
    };
    return { model, card };
  }
}
