/**
 * A small ResNet for 64x64 (or 32x32) images, beyond the reference study: a conv3x3 stem, three stages of
 * residual basic blocks (each halving the resolution and doubling the channels, 64/128/256 by default), global
 * average pooling and one linear layer. Batch norm after every convolution, identity shortcuts where shapes match
 * and a 1x1 strided projection where they do not (He et al. 2016).
 */
import { defineModel, F, nn, Tensor } from 'deepvision';

export type ResNetConfig = {
  numClasses: number;
  imageSize: number;
  channels: number;
  /** Channels of the stem; the stages use 2x, 4x and 8x this. */
  width: number;
  /** Residual blocks per stage. */
  blocks: number;
  /** Dropout before the classifier (0: none). */
  dropout: number;
};

function convBn(inChannels: number, outChannels: number, kernel: number, stride: number): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(inChannels, outChannels, kernel, { stride, padding: (kernel - 1) / 2, bias: false }),
    new nn.BatchNorm2d(outChannels),
  );
}

export class BasicBlock extends nn.Module {
  readonly conv1: nn.Sequential;
  readonly conv2: nn.Sequential;
  readonly shortcut: nn.Sequential | undefined;

  constructor(inChannels: number, outChannels: number, stride: number) {
    super();
    this.conv1 = convBn(inChannels, outChannels, 3, stride);
    this.conv2 = convBn(outChannels, outChannels, 3, 1);
    this.shortcut = stride !== 1 || inChannels !== outChannels ? convBn(inChannels, outChannels, 1, stride) : undefined;
  }

  forward(x: Tensor): Tensor {
    const y = this.conv2.forward(F.relu(this.conv1.forward(x)));
    return F.relu(F.add(y, this.shortcut ? this.shortcut.forward(x) : x));
  }
}

export class ResNet extends nn.Module {
  readonly stem: nn.Sequential;
  readonly stages: nn.Sequential;
  readonly head: nn.Sequential;

  constructor(c: ResNetConfig) {
    super();
    if (c.imageSize % 8 !== 0) throw new Error(`resnet: imageSize must be a multiple of 8 (three stride-2 stages), got ${c.imageSize}`);
    this.stem = new nn.Sequential(convBn(c.channels, c.width, 3, 1), new nn.ReLU());
    const stages: BasicBlock[] = [];
    let channels = c.width;
    for (const multiple of [2, 4, 8]) {
      for (let b = 0; b < c.blocks; b++) {
        stages.push(new BasicBlock(channels, c.width * multiple, b === 0 ? 2 : 1));
        channels = c.width * multiple;
      }
    }
    this.stages = new nn.Sequential(...stages);
    this.head = new nn.Sequential(new nn.GlobalAvgPool(), new nn.Dropout(c.dropout), new nn.Linear(channels, c.numClasses));
  }

  forward(x: Tensor): Tensor {
    return this.head.forward(this.stages.forward(this.stem.forward(x)));
  }
}

export default defineModel<ResNetConfig>({
  name: 'resnet',
  description: 'ResNet: conv3x3 stem, 3 stages of basic residual blocks (2x/4x/8x width, stride 2), global average pool, linear',
  defaults: { numClasses: 30, imageSize: 64, channels: 3, width: 32, blocks: 1, dropout: 0 },
  variants: {
    cifar10: { numClasses: 10, imageSize: 32 },
    deeper: { blocks: 2 },
  },
  inputs: (c) => [{ name: 'input', shape: ['batch', c.channels, c.imageSize, c.imageSize] }],
  create: (c) => new ResNet(c),
});
