/**
 * The study's baseline: a multi-layer perceptron on raw pixels.
 * flatten 3x64x64 -> 128 -> 128 -> 30 with ReLU: 1,593,374 parameters at the defaults.
 */
import { defineModel, nn, Tensor } from 'deepvision';

export type MlpConfig = {
  numClasses: number;
  imageSize: number;
  channels: number;
  hidden: number;
};

export class MLP extends nn.Module {
  readonly classifier: nn.Sequential;

  constructor(c: MlpConfig) {
    super();
    this.classifier = new nn.Sequential(
      new nn.Flatten(),
      new nn.Linear(c.channels * c.imageSize * c.imageSize, c.hidden),
      new nn.ReLU(),
      new nn.Linear(c.hidden, c.hidden),
      new nn.ReLU(),
      new nn.Linear(c.hidden, c.numClasses),
    );
  }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(x);
  }
}

export default defineModel<MlpConfig>({
  name: 'mlp',
  description: 'Multi-layer perceptron: flatten -> 128 -> 128 -> classes, ReLU',
  defaults: { numClasses: 30, imageSize: 64, channels: 3, hidden: 128 },
  variants: { cifar10: { numClasses: 10, imageSize: 32 } },
  inputs: (c) => [{ name: 'input', shape: ['batch', c.channels, c.imageSize, c.imageSize] }],
  create: (c) => new MLP(c),
});
