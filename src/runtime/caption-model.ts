import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Vocabulary, END, START } from '../portable/vocabulary';
import type { Normalization } from '../data/dataset';
import { CaptionerCard, captionerCardProblems, isCaptionerCard, stepVocabularyProblem } from '../portable/captioner-card';
import { Pixels, preprocessImage } from '../portable/image-preprocessing';
import { Caption, searchCaptions } from '../portable/caption-search';
import { DecoderState, decoderSteps, stepModelProblem } from '../portable/decoder-steps';
import { TensorData } from '../ir/tensor';
import { buildEntryPoint } from '../model/build';
import type { ModelDefinition } from '../model/definition';
import { readModelFile } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import { checkpointConfig, checkpointNormalization, loadCheckpoint } from '../checkpoint/checkpoint';
import { UserError } from '../util/user-error';
import { FileReadError, readRegularText } from '../util/regular-file';
import { beamProblem, fedTokensProblem } from '../portable/search-limits';
import { MAX_CARD_BYTES } from '../portable/model-card';

/** Loads the model definition of a checkpoint whose run folder lacks the generation graphs. */
export type DefinitionLoader = (checkpointFile: string, metadata: Record<string, string>) => ModelDefinition;

/** What a captioner is made of, read from a training run or an exported folder, before onnxruntime sees it. */
export interface CaptionerParts {
  vocabulary: Vocabulary;
  /** The encoder (`input` -> the decoder's starting state) and one decoder step, as ONNX bytes. */
  encoder: Uint8Array;
  step: Uint8Array;
  imageSize: number;
  normalization: Normalization;
  /** Longest caption in words. */
  maxLength: number;
  /** The search an exported captioner was published with (the page uses it; `caption` too, unless told otherwise). */
  generation?: { beam: number; lengthPenalty: number };
  /** The checkpoint's metadata, when the parts come from one. */
  metadata?: Record<string, string>;
}

/**
 * A trained captioner ready to caption images: its encoder and decoder-step graphs (from a training run's best
 * checkpoint, or exported by `deepvision export`), the vocabulary saved with it, and the preprocessing `predict` uses.
 */
export class CaptionModel {
  private constructor(
    readonly vocabulary: Vocabulary,
    private readonly encoder: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
    readonly input: { size: number; normalization: Normalization },
    readonly maxLength: number,
    /** Beam and length penalty to use when the caller gives none: an exported card's, else beam 3 and 0.7. */
    readonly generation: { beam: number; lengthPenalty: number } = { beam: 3, lengthPenalty: 0.7 },
  ) {}

  /** An exported captioner's folder (model.json) or a training run's (best.safetensors). */
  static async fromDirectory(dir: string, definition?: DefinitionLoader): Promise<CaptionModel> {
    return fs.existsSync(path.join(dir, 'model.json')) ? CaptionModel.fromExported(dir) : CaptionModel.fromRun(dir, definition);
  }

  /**
   * From a training run's folder: its best checkpoint's vocabulary and preprocessing, and the generation graphs the
   * run wrote (encoder_model.onnx, step_model.onnx: data, no code runs). A run without them (one trained through
   * the library) is built from its model definition, which `definition` loads.
   */
  static async fromRun(dir: string, definition?: DefinitionLoader): Promise<CaptionModel> {
    return CaptionModel.fromParts(CaptionModel.readRun(dir, definition), dir);
  }

  /**
   * From a captioner's checkpoint, with its generation graphs read from `graphFiles` (encoder, step) or, without
   * them, built from the model definition with the checkpoint's parameters.
   */
  static async fromCheckpoint(file: string, graphFiles: string[] | undefined, definition?: DefinitionLoader): Promise<CaptionModel> {
    return CaptionModel.fromParts(CaptionModel.readCheckpoint(file, graphFiles, definition), path.dirname(file));
  }

  /** From a folder `deepvision export` wrote for a captioner: model.json and the two ONNX files it names. */
  static async fromExported(dir: string): Promise<CaptionModel> {
    return CaptionModel.fromParts(CaptionModel.readExported(dir), dir);
  }

  /** A training run's parts (see fromRun). */
  static readRun(dir: string, definition?: DefinitionLoader): CaptionerParts {
    const file = path.join(dir, 'best.safetensors');
    if (!fs.existsSync(file)) throw new UserError(`${dir} has no best.safetensors (a captioner's training run) and no model.json (a captioner exported by \`deepvision export\`)`);
    const files = ['encoder_model.onnx', 'step_model.onnx'].map((f) => path.join(dir, f));
    return CaptionModel.readCheckpoint(file, files.every((f) => fs.existsSync(f)) ? files : undefined, definition);
  }

  /** A checkpoint's parts (see fromCheckpoint). */
  static readCheckpoint(file: string, graphFiles: string[] | undefined, definition?: DefinitionLoader): CaptionerParts {
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
    const tokensRefused = fedTokensProblem(Number(config.maxLength));
    if (tokensRefused !== undefined) throw new UserError(`${file}: its config's maxLength: ${tokensRefused}`);
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
    // Captions the model was trained on had maxLength tokens fed (<start> and the words): that many words at most.
    return {
      vocabulary, encoder: graphs[0]!, step: graphs[1]!, imageSize: Number(config.imageSize), normalization,
      maxLength: Number(config.maxLength) - 1, metadata: meta,
    };
  }

  /** An exported folder's parts: its card checked, the ONNX files it names read (and validated) as data. */
  static readExported(dir: string): CaptionerParts {
    const cardFile = path.join(dir, 'model.json');
    let card: unknown;
    try {
      card = JSON.parse(readRegularText(cardFile, { what: 'model card', maxBytes: MAX_CARD_BYTES }));
    } catch (err) {
      if (err instanceof FileReadError) throw err;
      throw new UserError(`${cardFile} is not readable JSON (${(err as Error).message.split('\n')[0]})`);
    }
    if (!isCaptionerCard(card)) throw new UserError(`${cardFile} is not a captioner's card (for classifiers: deepvision predict)`);
    const problems = captionerCardProblems(card);
    if (problems.length > 0) throw new UserError(`${cardFile}: ${problems.join('; ')}`);
    const c = card as CaptionerCard;
    const [encoder, step] = [c.files.encoder, c.files.step].map((name) => {
      const file = path.join(dir, name);
      if (!fs.existsSync(file)) throw new UserError(`${file} is missing (${cardFile} names it): export the captioner again`);
      return encodeModel(readModelFile(file));
    });
    // captionerCardProblems has checked that the input is a square image resized to its side.
    const [, height] = c.input.shape;
    return {
      vocabulary: Vocabulary.fromJSON(c.vocabulary), encoder: encoder!, step: step!, imageSize: height,
      normalization: { mean: c.input.preprocessing.mean, std: c.input.preprocessing.std }, maxLength: c.generation.maxLength,
      generation: { beam: c.generation.beam, lengthPenalty: c.generation.lengthPenalty },
    };
  }

  /** Sessions for the parts, checked against the generation contract; `where` names them in errors. */
  static async fromParts(parts: CaptionerParts, where: string): Promise<CaptionModel> {
    const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: os.availableParallelism(), graphOptimizationLevel: 'all' };
    const created = await Promise.allSettled([parts.encoder, parts.step].map((bytes) => ort.InferenceSession.create(bytes, options)));
    const failed = created.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      // The one that did load is released: nothing is left behind by a refused captioner.
      await Promise.all(created.flatMap((r) => (r.status === 'fulfilled' ? [r.value.release()] : [])));
      throw new UserError(`onnxruntime rejected the captioner in ${where}: ${(failed.reason as Error).message.split('\n')[0]}`);
    }
    const sessions = created.map((r) => (r as PromiseFulfilledResult<ort.InferenceSession>).value);
    const [encoder, step] = sessions as [ort.InferenceSession, ort.InferenceSession];
    const problem = !encoder.inputNames.includes('input')
      ? "the captioner's encoder model has no input `input`"
      : stepModelProblem(step, encoder.outputNames) ?? stepVocabularyProblem(step, parts.vocabulary.size);
    if (problem !== undefined) {
      await Promise.all(sessions.map((s) => s.release()));
      throw new UserError(`${where}: ${problem}`);
    }
    return new CaptionModel(parts.vocabulary, encoder, step, { size: parts.imageSize, normalization: parts.normalization }, parts.maxLength, parts.generation);
  }

  /** The best captions of one decoded image, best first (beam 1: greedy; default: `generation`). */
  async caption(image: Pixels, o: { beam?: number; lengthPenalty?: number } = {}): Promise<(Caption & { text: string })[]> {
    const beamRefused = beamProblem(o.beam ?? this.generation.beam, this.vocabulary.size);
    if (beamRefused !== undefined) throw new UserError(beamRefused);
    const { size, normalization } = this.input;
    const input = preprocessImage(image, { resizeShorterSide: size, mean: normalization.mean, std: normalization.std }, 3, size, size);
    const start = await this.encoder.run({ input: new ort.Tensor('float32', input, [1, 3, size, size]) });
    const step = decoderSteps(this.decoder, this.vocabulary.size, ort.Tensor);
    const found = await searchCaptions<DecoderState>(step, start, {
      startId: START, endId: END, maxLength: this.maxLength, beam: o.beam ?? this.generation.beam, lengthPenalty: o.lengthPenalty ?? this.generation.lengthPenalty,
    });
    return found.map((c) => ({ ...c, text: this.vocabulary.decode(c.tokens) }));
  }

  /** Whether the step model reports where it looked (an attention captioner's `attention` output). */
  get attends(): boolean {
    return this.decoder.outputNames.includes('attention');
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }
}
