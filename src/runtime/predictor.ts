import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { MAX_CARD_BYTES, ModelCard, modelCardProblems } from '../portable/model-card';
import { Pixels, Prediction, preprocessImage, scoresProblem, topK } from '../portable/image-preprocessing';
import { outputOf } from '../portable/session-output';
import { UserError } from '../util/user-error';
import { FileReadError, readRegularText } from '../util/regular-file';

class PredictorError extends UserError {}

/**
 * The ONNX file model.json names, which must lie inside the model's folder: a card from elsewhere must not make
 * predict open any file on the disk (an absolute path, '..', or a link that leads out).
 */
function modelFileOf(dir: string, cardFile: string, file: string): string {
  const refuse = (why: string) => new PredictorError(`${cardFile}: 'file' must name a file inside the model folder, but '${file}' ${why}`);
  if (path.isAbsolute(file) || path.win32.isAbsolute(file)) throw refuse('is an absolute path');
  const folder = path.resolve(dir);
  const joined = path.resolve(folder, file);
  if (!joined.startsWith(folder + path.sep)) throw refuse('leads out of it');
  if (!fs.existsSync(joined)) throw new PredictorError(`${cardFile}: 'file' names ${file}, which does not exist`);
  const real = fs.realpathSync(joined);
  const realFolder = fs.realpathSync(folder);
  if (!real.startsWith(realFolder + path.sep)) throw refuse(`is a link to ${real}, outside it`);
  if (!fs.statSync(real).isFile()) throw refuse('is not a file');
  return real;
}

/** An exported model (model.json + model.onnx) ready to classify images, with the page's exact preprocessing. */
export class Predictor {
  private constructor(readonly card: ModelCard, private readonly session: ort.InferenceSession) {}

  static async load(dir: string): Promise<Predictor> {
    const cardFile = path.join(dir, 'model.json');
    if (!fs.existsSync(cardFile)) throw new PredictorError(`${dir} has no model.json: export a model with \`deepvision export\``);
    let card: ModelCard;
    try {
      card = JSON.parse(readRegularText(cardFile, { what: 'model card', maxBytes: MAX_CARD_BYTES })) as ModelCard;
    } catch (err) {
      if (err instanceof FileReadError) throw err;
      throw new PredictorError(`${cardFile} is not valid JSON (${(err as Error).message})`);
    }
    const problems = modelCardProblems(card);
    if (problems.length > 0) throw new PredictorError(`${cardFile}: ${problems.join('; ')}`);
    const modelFile = modelFileOf(dir, cardFile, card.file);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelFile, { intraOpNumThreads: os.availableParallelism(), graphOptimizationLevel: 'all' });
    } catch (err) {
      throw new PredictorError(`cannot load ${modelFile}: ${(err as Error).message.split('\n')[0]}`);
    }
    return new Predictor(card, session);
  }

  /** Top-k classes of one decoded image. */
  async classify(image: Pixels, k = 5): Promise<Prediction[]> {
    const [c, h, w] = this.card.input.shape;
    const input = preprocessImage(image, this.card.input.preprocessing, c, h, w);
    const out = await this.session.run({ [this.card.input.name]: new ort.Tensor('float32', input, [1, c, h, w]) });
    const scores = outputOf(out, this.card.output.name).data as Float32Array;
    const problem = scoresProblem(scores, this.card.labels);
    if (problem !== undefined) throw new PredictorError(problem);
    return topK(scores, this.card.labels, k);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
