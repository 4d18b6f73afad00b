/**
 * The benchmark's reference CNN (the same network as ../shared/bench/torch_cnn.py): conv3x3 (pad 1) 3 -> 32 -> 64
 * -> 128, each with ReLU and MaxPool2, then 2048 -> 256 -> 10. Input 3x32x32.
 */
import { defineModel, nn, Tensor } from 'deepvision';

export type ReferenceCnnConfig = {
  numClasses: number;
  imageSize: number;
};

export class ReferenceCNN extends nn.Module {
  readonly features: nn.Sequential;
  readonly classifier: nn.Sequential;

  constructor(c: ReferenceCnnConfig) {
    super();
    if (c.imageSize % 8 !== 0) throw new Error(`reference-cnn: imageSize must be a multiple of 8, got ${c.imageSize}`);
    const stage = (i: number, o: number) => [new nn.Conv2d(i, o, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2)];
    this.features = new nn.Sequential(...stage(3, 32), ...stage(32, 64), ...stage(64, 128));
    this.classifier = new nn.Sequential(
      new nn.Flatten(), new nn.Linear(128 * (c.imageSize / 8) ** 2, 256), new nn.ReLU(), new nn.Linear(256, c.numClasses),
    );
  }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.features.forward(x));
  }
}

export default defineModel<ReferenceCnnConfig>({
  name: 'reference-cnn',
  description: 'Benchmark CNN: 3 x (conv3x3 + ReLU + maxpool2), 32/64/128 channels, then 256 -> classes',
  defaults: { numClasses: 10, imageSize: 32 },
  inputs: (c) => [{ name: 'input', shape: ['batch', 3, c.imageSize, c.imageSize] }],
  create: (c) => new ReferenceCNN(c),
});
