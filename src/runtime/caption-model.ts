import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Vocabulary, END, START } from '../data/captions/vocabulary';
import type { Normalization } from '../data/dataset';
import { Pixels, preprocessImage } from '../export/image-preprocessing';
import { Caption, searchCaptions } from '../generate/caption-search';
import { DecoderState, decoderSteps, stepModelProblem } from '../generate/decoder-steps';
import { TensorData } from '../ir/tensor';
import { buildEntryPoint } from '../model/build';
import type { ModelDefinition } from '../model/definition';
import { readModelFile } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import { checkpointConfig, checkpointNormalization, loadCheckpoint } from '../train/checkpoint';
import { UserError } from '../util/user-error';

/**
 * A trained captioner ready to caption images: its encoder and decoder-step graphs built from a training run's best
 * checkpoint (the same entry points the trainer's validation BLEU uses), the vocabulary saved with it, and the
 * preprocessing `predict` uses.
 */
export class CaptionModel {
  private constructor(
    readonly vocabulary: Vocabulary,
    private readonly encoder: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
    private readonly input: { size: number; normalization: Normalization },
    readonly maxLength: number,
  ) {}

  /**
   * From a training run's folder: its best checkpoint's vocabulary and preprocessing, and the generation graphs the
   * run wrote (encoder_model.onnx, step_model.onnx: data, no code runs). A run without them (one trained through
   * the library) is built from its model definition, which `definition` loads.
   */
  static async fromRun(dir: string, definition?: (checkpointFile: string, metadata: Record<string, string>) => ModelDefinition): Promise<CaptionModel> {
    const file = path.join(dir, 'best.safetensors');
    if (!fs.existsSync(file)) throw new UserError(`${dir} has no best.safetensors: give the folder a \`deepvision train\` run of a captioner wrote`);
    const files = ['encoder_model.onnx', 'step_model.onnx'].map((f) => path.join(dir, f));
    return CaptionModel.fromCheckpoint(file, files.every((f) => fs.existsSync(f)) ? files : undefined, definition);
  }

  /**
   * From a captioner's checkpoint, with its generation graphs read from `graphFiles` (encoder, step) or, without
   * them, built from the model definition with the checkpoint's parameters.
   */
  static async fromCheckpoint(
    file: string, graphFiles: string[] | undefined, definition?: (checkpointFile: string, metadata: Record<string, string>) => ModelDefinition,
  ): Promise<CaptionModel> {
    const dir = path.dirname(file);
    const checkpoint = loadCheckpoint(file);
    const meta = checkpoint.metadata;
    if (meta['deepvision.task'] !== 'captioning') throw new UserError(`${file} is not a captioner's checkpoint (for classifiers: deepvision predict)`);
    let vocabulary: Vocabulary;
    try {
      vocabulary = Vocabulary.fromJSON(JSON.parse(meta['deepvision.vocabulary'] ?? 'null'));
    } catch (err) {
      throw new UserError(`${file}: its vocabulary (metadata 'deepvision.vocabulary') is missing or invalid: ${(err as Error).message}`);
    }
    const config = checkpointConfig(meta, file);
    const normalization = checkpointNormalization(meta, file);
    if (normalization === undefined) throw new UserError(`${file} does not record its input normalization`);
    if (config.vocabularySize !== vocabulary.size) throw new UserError(`${file}: the model's vocabulary size (${String(config.vocabularySize)}) differs from its saved vocabulary's (${vocabulary.size})`);
    let graphs: Uint8Array[];
    if (graphFiles !== undefined) {
      graphs = graphFiles.map((f) => encodeModel(readModelFile(f)));
    } else {
      if (definition === undefined) throw new UserError(`${dir} has no encoder_model.onnx and step_model.onnx (written by \`deepvision train\`)`);
      const values = new Map<string, TensorData>();
      for (const [name, t] of checkpoint.tensors) if (!name.startsWith('optimizer.')) values.set(name, TensorData.fromTyped('float32', [...t.dims], t.data as Float32Array));
      const model = definition(file, meta);
      const build = { variant: meta['deepvision.variant'], config, values };
      graphs = ['encoder', 'step'].map((entry) => encodeModel(buildEntryPoint(model, entry, build)));
    }
    const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: os.availableParallelism(), graphOptimizationLevel: 'all' };
    let sessions: ort.InferenceSession[];
    try {
      sessions = await Promise.all(graphs.map((bytes) => ort.InferenceSession.create(bytes, options)));
    } catch (err) {
      throw new UserError(`onnxruntime rejected the captioner in ${dir}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (!sessions[0]!.inputNames.includes('input')) throw new UserError(`${dir}: the captioner's encoder model has no input \`input\``);
    const problem = stepModelProblem(sessions[1]!, sessions[0]!.outputNames);
    if (problem !== undefined) throw new UserError(`${dir}: ${problem}`);
    // Captions the model was trained on had maxLength tokens fed (<start> and the words): that many words at most.
    return new CaptionModel(vocabulary, sessions[0]!, sessions[1]!, { size: Number(config.imageSize), normalization }, Number(config.maxLength));
  }

  /** The best captions of one decoded image, best first (beam 1: greedy). */
  async caption(image: Pixels, o: { beam?: number; lengthPenalty?: number } = {}): Promise<(Caption & { text: string })[]> {
    const { size, normalization } = this.input;
    const input = preprocessImage(image, { resizeShorterSide: size, mean: normalization.mean, std: normalization.std }, 3, size, size);
    const start = await this.encoder.run({ input: new ort.Tensor('float32', input, [1, 3, size, size]) });
    const step = decoderSteps(this.decoder, this.vocabulary.size, ort.Tensor);
    const found = await searchCaptions<DecoderState>(step, start, {
      startId: START, endId: END, maxLength: this.maxLength - 1, beam: o.beam ?? 1, lengthPenalty: o.lengthPenalty,
    });
    return found.map((c) => ({ ...c, text: this.vocabulary.decode(c.tokens) }));
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }
}
