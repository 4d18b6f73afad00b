/**
 * The study's CNN: three blocks of conv3x3 (pad 1) + BatchNorm + ReLU + MaxPool2, channels 3 -> 64 -> 128 -> 256,
 * then a classifier 16384 -> 512 -> 1024 -> classes with ReLU. 9,316,894 parameters at the defaults; the
 * `dropout` variant adds Dropout(0.5) before the last layer.
 */
import { defineModel, nn, Tensor } from 'deepvision';

export type CnnConfig = {
  numClasses: number;
  imageSize: number;
  channels: number;
  dropout: number;
};

function block(inChannels: number, outChannels: number): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(inChannels, outChannels, 3, { padding: 1 }),
    new nn.BatchNorm2d(outChannels),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
  );
}

export class CNN extends nn.Module {
  readonly features: nn.Sequential;
  readonly classifier: nn.Sequential;

  constructor(c: CnnConfig) {
    super();
    if (c.imageSize % 8 !== 0) throw new Error(`cnn: imageSize must be a multiple of 8 (three 2x poolings), got ${c.imageSize}`);
    this.features = new nn.Sequential(block(c.channels, 64), block(64, 128), block(128, 256));
    const flat = 256 * (c.imageSize / 8) ** 2;
    this.classifier = new nn.Sequential(
      new nn.Flatten(),
      new nn.Linear(flat, 512),
      new nn.ReLU(),
      new nn.Linear(512, 1024),
      new nn.ReLU(),
      new nn.Dropout(c.dropout), // p = 0 is a no-op; kept so that parameter names match across variants
      new nn.Linear(1024, c.numClasses),
    );
  }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.features.forward(x));
  }
}

export default defineModel<CnnConfig>({
  name: 'cnn',
  description: 'CNN: 3 x (conv3x3 + BN + ReLU + maxpool2), 64/128/256 channels, then 512 -> 1024 -> classes',
  defaults: { numClasses: 30, imageSize: 64, channels: 3, dropout: 0 },
  variants: {
    dropout: { dropout: 0.5 },
    cifar10: { numClasses: 10, imageSize: 32 },
  },
  inputs: (c) => [{ name: 'input', shape: ['batch', c.channels, c.imageSize, c.imageSize] }],
  create: (c) => new CNN(c),
});
