/**
 * Image captioning as in Show and Tell: an image encoder whose feature vector is the decoder LSTM's first input,
 * then the caption's words (teacher forcing), each output through a linear layer to the vocabulary. By default the
 * features also go beside every word (inject 'every'), which learns much faster than from the first input alone.
 *
 * Default: a small CNN encoder (4 conv blocks, 32/64/128/128 channels, its map flattened) trained with the decoder
 * (the `shapes` captions, at 48 px by default). The `reference` variant is the reference study's decoder (Linear +
 * BatchNorm to an embedding of 256, LSTM of 512) on a pretrained ONNX backbone's pooled features
 * (`--set backbone=FILE`, frozen). The `attention` variant is Show, Attend and Tell's decoder: at each word it attends
 * over the regions of the backbone's spatial `feature_map` (7x7 = 49 for MobileNetV2 at 224 px; without a backbone
 * the map of a 3-block small CNN, 4x4 at 32 px, 6x6 at 48) and reads their weighted sum beside the word. Its
 * regularizers, as in the paper: `dropout` before the vocabulary layer and `attentionPenalty`, the weight of the
 * doubly stochastic attention penalty (both 0 by default; `dropout` serves the LSTM decoder too).
 *
 * Graphs: training (`input` images, `captions` [N, T] = the caption from <start>, predicting `targets` [N, T] = the
 * caption to <end>), and for generation two entry points: `encoder` (image -> its features and the LSTM state after
 * them) and `step` (previous token, state and features -> log-probabilities of the next token and the new state).
 */
import { defineModel, F, losses, nn, PAD_TOKEN, Tensor } from 'deepvision';

export type CaptionerConfig = {
  /** Vocabulary size and caption length (tokens fed per caption): set from the data by `deepvision train`. */
  vocabularySize: number;
  maxLength: number;
  imageSize: number;
  embedding: number;
  hidden: number;
  /** A pretrained ONNX backbone whose pooled features are the image's ('' : the small CNN). */
  backbone: string;
  output: string;
  /** Where the image enters the LSTM: 'first' (Show and Tell: its first input only) or 'every' (also beside each word). */
  inject: string;
  /** 'lstm' (the image as a vector, Show and Tell) or 'attention' (over regions of a feature map, Show, Attend and Tell). */
  decoder: string;
  /** Attention: the size of its hidden layer (the regions' and the state's projections). */
  attentionSize: number;
  /** Dropout on the LSTM's output before the vocabulary layer, in training (0: none). */
  dropout: number;
  /**
   * Attention: the weight of Show, Attend and Tell's doubly stochastic penalty (losses.attentionPenalty), which
   * pushes the attention each region gets over a caption towards 1 (0: none). Training graphs only.
   */
  attentionPenalty: number;
};

class SmallEncoder extends nn.Module {
  readonly features: nn.Sequential;
  readonly project: nn.Linear;

  constructor(c: CaptionerConfig) {
    super();
    const block = (cin: number, cout: number) => [new nn.Conv2d(cin, cout, 3, { padding: 1 }), new nn.BatchNorm2d(cout), new nn.ReLU(), new nn.MaxPool2d(2)];
    // No global pooling: captions say where things are ("in the top left corner"), so the map keeps its layout.
    // Four blocks: with three (32/64/96, any width) the shape's name was the weak word, a square called a circle.
    this.features = new nn.Sequential(...block(3, 32), ...block(32, 64), ...block(64, 128), ...block(128, 128));
    this.project = new nn.Linear(128 * Math.floor(c.imageSize / 16) ** 2, c.embedding);
  }

  forward(images: Tensor): Tensor {
    return this.project.forward(F.flatten(this.features.forward(images)));
  }
}

/** The image as a map of regions [N, C, H, W]: the small CNN's last block, or a pretrained backbone's output. */
class MapEncoder extends nn.Module {
  readonly features?: nn.Sequential;
  readonly backbone?: nn.OnnxModule;
  /** Channels C and regions H x W of the map. */
  readonly channels: number;
  readonly regions: number;

  constructor(c: CaptionerConfig) {
    super();
    let shape: readonly (number | string)[];
    if (c.backbone === '') {
      const block = (cin: number, cout: number) => [new nn.Conv2d(cin, cout, 3, { padding: 1 }), new nn.BatchNorm2d(cout), new nn.ReLU(), new nn.MaxPool2d(2)];
      this.features = new nn.Sequential(...block(3, 32), ...block(32, 64), ...block(64, 96));
      shape = [1, 96, Math.floor(c.imageSize / 8), Math.floor(c.imageSize / 8)];
    } else {
      this.backbone = new nn.OnnxModule(c.backbone, { output: c.output });
      shape = this.backbone.outputShape([1, 3, c.imageSize, c.imageSize]);
      if (shape.length !== 4) throw new Error(`the attention decoder needs a spatial map [N, C, H, W] from the backbone; its output '${c.output}' is [${shape.join(', ')}] (try --set output=feature_map)`);
    }
    this.channels = Number(shape[1]);
    this.regions = Number(shape[2]) * Number(shape[3]);
  }

  /** Regions as rows: [N, C, H, W] -> [N, H*W, C]. */
  forward(images: Tensor): Tensor {
    const map = this.features !== undefined ? this.features.forward(images) : this.backbone!.forward(images);
    return F.transpose(F.reshape(map, [0, this.channels, this.regions]), [0, 2, 1]);
  }
}

/** A pretrained backbone's features, then Linear + BatchNorm (the reference study's encoder head). */
class PretrainedEncoder extends nn.Module {
  readonly backbone: nn.OnnxModule;
  readonly project: nn.Linear;
  readonly norm: nn.BatchNorm2d;

  constructor(c: CaptionerConfig) {
    super();
    this.backbone = new nn.OnnxModule(c.backbone, { output: c.output });
    const shape = this.backbone.outputShape([1, 3, c.imageSize, c.imageSize]);
    const size = shape.slice(1).reduce<number>((n, d) => n * Number(d), 1);
    this.project = new nn.Linear(size, c.embedding);
    this.norm = new nn.BatchNorm2d(c.embedding);
  }

  forward(images: Tensor): Tensor {
    const projected = this.project.forward(F.flatten(this.backbone.forward(images)));
    // BatchNorm1d over [N, E] as BatchNorm2d over [N, E, 1, 1].
    return F.flatten(this.norm.forward(F.unsqueeze(projected, [2, 3])));
  }
}

export class Captioner extends nn.Module {
  readonly encoder: nn.Module;
  readonly embed: nn.Embedding;
  readonly lstm: nn.LSTM;
  readonly classifier: nn.Linear;

  constructor(readonly c: CaptionerConfig) {
    super();
    this.encoder = c.backbone === '' ? new SmallEncoder(c) : new PretrainedEncoder(c);
    this.embed = new nn.Embedding(c.vocabularySize, c.embedding, { paddingIdx: PAD_TOKEN });
    this.lstm = new nn.LSTM(c.inject === 'every' ? 2 * c.embedding : c.embedding, c.hidden);
    this.classifier = new nn.Linear(c.hidden, c.vocabularySize);
  }

  /** The LSTM's input at step 0: the image alone ('every': beside an empty word). */
  private imageStep(features: Tensor): Tensor {
    return F.unsqueeze(this.c.inject === 'every' ? F.concat([F.mul(features, 0), features], 1) : features, [1]);
  }

  /** The LSTM's inputs for words [N, T, ...]: their embeddings ('every': each beside the image's features). */
  private wordSteps(words: Tensor, features: Tensor): Tensor {
    const embedded = this.embed.forward(words);
    if (this.c.inject !== 'every') return embedded;
    const length = words.shape[1] as number;
    return F.concat([embedded, F.concat(Array.from({ length }, () => F.unsqueeze(features, [1])), 1)], 2);
  }

  /** Teacher forcing: the image, then each caption token, through the LSTM; logits [N, T, vocabulary]. */
  forward(images: Tensor, captions: Tensor): Tensor {
    const features = this.encoder.forward(images) as Tensor;
    const { output } = this.lstm.forward(F.concat([this.imageStep(features), this.wordSteps(captions, features)], 1));
    // Position 0 saw only the image; positions 1..T predict the caption's tokens.
    return this.classifier.forward(F.dropout(F.slice(output, [1], [this.c.maxLength + 1], [1]), this.c.dropout));
  }

  /** The image's features and the LSTM state after reading them: what decoding starts from. */
  encode(images: Tensor): Tensor[] {
    const features = this.encoder.forward(images) as Tensor;
    const { h, c } = this.lstm.forward(this.imageStep(features));
    return [features, h, c];
  }

  /** One decoding step: log-probabilities of the next token given the previous one, the state and the features. */
  step(token: Tensor, h: Tensor, c: Tensor, features: Tensor): Tensor[] {
    const next = this.lstm.forward(this.wordSteps(F.unsqueeze(token, [1]), features), { h0: h, c0: c });
    const logits = this.classifier.forward(F.squeeze(next.output, [1]));
    return [F.logSoftmax(logits, -1), next.h, next.c];
  }
}

/**
 * Show, Attend and Tell (Xu et al. 2015), soft attention: the LSTM's state starts from the mean region; at each step
 * additive attention over the regions (given the state) yields a context vector, gated by the state, that enters
 * the LSTM beside the previous word; the new state predicts the next word. Unrolled over the caption for training.
 */
export class AttentionCaptioner extends nn.Module {
  readonly encoder: MapEncoder;
  readonly regions: nn.Linear;
  readonly initH: nn.Linear;
  readonly initC: nn.Linear;
  readonly attention: nn.AdditiveAttention;
  readonly gate: nn.Linear;
  readonly embed: nn.Embedding;
  readonly cell: nn.LSTMCell;
  readonly classifier: nn.Linear;

  constructor(readonly c: CaptionerConfig) {
    super();
    this.encoder = new MapEncoder(c);
    // Regions projected to the embedding's size: the context vector is as wide as a word.
    this.regions = new nn.Linear(this.encoder.channels, c.embedding);
    this.initH = new nn.Linear(c.embedding, c.hidden);
    this.initC = new nn.Linear(c.embedding, c.hidden);
    this.attention = new nn.AdditiveAttention(c.embedding, c.hidden, c.attentionSize);
    this.gate = new nn.Linear(c.hidden, c.embedding);
    this.embed = new nn.Embedding(c.vocabularySize, c.embedding, { paddingIdx: PAD_TOKEN });
    this.cell = new nn.LSTMCell(2 * c.embedding, c.hidden);
    this.classifier = new nn.Linear(c.hidden, c.vocabularySize);
  }

  /** Regions [N, R, E], their attention keys [N, R, A] (projected once per image) and the starting state [N, H]. */
  encode(images: Tensor): Tensor[] {
    const features = this.regions.forward(this.encoder.forward(images));
    const mean = F.reduceMean(features, [1], false);
    return [features, this.attention.projectFeatures(features), F.tanh(this.initH.forward(mean)), F.tanh(this.initC.forward(mean))];
  }

  /** One word: the new state, and where the model looked [N, R]. */
  private decode(word: Tensor, h: Tensor, c: Tensor, features: Tensor, keys: Tensor): { h: Tensor; c: Tensor; weights: Tensor } {
    const { context, weights } = this.attention.forward(features, h, { projectedFeatures: keys });
    // The gate lets the state decide how much of the image a word needs (little for "a", "the").
    const gated = F.mul(F.sigmoid(this.gate.forward(h)), context);
    const next = this.cell.forward(F.concat([word, gated], 1), h, c);
    return { h: next.h, c: next.c, weights };
  }

  /** Teacher forcing, one step per caption token: logits [N, T, vocabulary]. */
  forward(images: Tensor, captions: Tensor): Tensor {
    let [features, keys, h, c] = this.encode(images) as [Tensor, Tensor, Tensor, Tensor];
    const embedded = this.embed.forward(captions);
    const states: Tensor[] = [];
    const weights: Tensor[] = [];
    for (let t = 0; t < this.c.maxLength; t++) {
      const word = F.squeeze(F.slice(embedded, [t], [t + 1], [1]), [1]);
      const out = this.decode(word, h, c, features, keys);
      states.push(F.unsqueeze(out.h, [1]));
      weights.push(F.unsqueeze(out.weights, [1]));
      ({ h, c } = out);
    }
    // A step is real when its input token is (padding follows the caption's <end>): only those count.
    losses.addTrainingLoss('attention', () => losses.attentionPenalty(F.concat(weights, 1), F.greater(captions, PAD_TOKEN)), this.c.attentionPenalty);
    // One vocabulary layer over all the steps' states [N, T, H].
    return this.classifier.forward(F.dropout(F.concat(states, 1), this.c.dropout));
  }

  step(token: Tensor, h: Tensor, c: Tensor, features: Tensor, keys: Tensor): Tensor[] {
    const out = this.decode(this.embed.forward(token), h, c, features, keys);
    return [F.logSoftmax(this.classifier.forward(out.h), -1), out.h, out.c, out.weights];
  }
}

type AnyCaptioner = Captioner | AttentionCaptioner;
const attending = (c: CaptionerConfig) => c.decoder === 'attention';

export default defineModel<CaptionerConfig>({
  name: 'captioner',
  description: 'Show and Tell captioner: image encoder -> LSTM decoder',
  task: 'captioning',
  defaults: {
    vocabularySize: 1000, maxLength: 16, imageSize: 32, embedding: 128, hidden: 256, backbone: '', output: 'features', inject: 'every', decoder: 'lstm', attentionSize: 256,
    dropout: 0, attentionPenalty: 0,
  },
  variants: {
    // The reference study's decoder on MobileNetV2's pooled features.
    reference: { imageSize: 224, embedding: 256, hidden: 512, inject: 'first' },
    // Show, Attend and Tell on a backbone's spatial map (or the small CNN's 4x4 map without --set backbone).
    attention: { decoder: 'attention', output: 'feature_map', imageSize: 224, embedding: 256, hidden: 512, attentionSize: 256 },
  },
  inputs: (c) => [
    { name: 'input', shape: ['batch', 3, c.imageSize, c.imageSize] },
    { name: 'captions', dtype: 'int64', shape: ['batch', c.maxLength] },
  ],
  // A pretrained backbone's statistics; the small CNN learns from the data's own.
  normalization: (c) => (c.backbone === '' ? undefined : { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }),
  create: (c) => (attending(c) ? new AttentionCaptioner(c) : new Captioner(c)),
  // The generation graphs' contract is in src/generate/decoder-steps.ts: the encoder's outputs are the step's state.
  entryPoints: {
    encoder: {
      inputs: (c) => [{ name: 'input', shape: ['batch', 3, c.imageSize, c.imageSize] }],
      outputs: (c) => (attending(c) ? ['features', 'keys', 'h', 'c'] : ['features', 'h', 'c']),
      run: (model, images) => (model as AnyCaptioner).encode(images!),
    },
    step: {
      inputs: (c) => {
        if (!attending(c)) {
          return [
            { name: 'token', dtype: 'int64', shape: ['batch'] },
            { name: 'h', shape: [1, 'batch', c.hidden] },
            { name: 'c', shape: [1, 'batch', c.hidden] },
            { name: 'features', shape: ['batch', c.embedding] },
          ];
        }
        // The number of regions depends on the encoder (and image size): a symbolic dimension.
        return [
          { name: 'token', dtype: 'int64', shape: ['batch'] },
          { name: 'h', shape: ['batch', c.hidden] },
          { name: 'c', shape: ['batch', c.hidden] },
          { name: 'features', shape: ['batch', 'regions', c.embedding] },
          { name: 'keys', shape: ['batch', 'regions', c.attentionSize] },
        ];
      },
      outputs: (c) => (attending(c) ? ['log_probs', 'h_next', 'c_next', 'attention'] : ['log_probs', 'h_next', 'c_next']),
      run: (model, token, h, c, features, keys) => (model instanceof AttentionCaptioner ? model.step(token!, h!, c!, features!, keys!) : (model as Captioner).step(token!, h!, c!, features!)),
    },
  },
});
