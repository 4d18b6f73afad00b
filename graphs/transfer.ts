/**
 * Transfer learning: a pretrained ONNX backbone (MobileNetV2, SqueezeNet, a torchvision export, your own) with a
 * new linear head. `--set backbone=FILE` names the ONNX file, `--set output=NAME` the value to cut at (default
 * `features`, as the bundled MobileNetV2 names its pooled 1280-vector; `deepvision inspect FILE` lists cut points),
 * `--set trainable=none|all|last:K|PREFIX[,PREFIX...]` which backbone parameters train (default none: a frozen
 * backbone; last:K the last K layers with weights).
 */
import { defineModel, F, nn, Tensor } from 'deepvision';

export type TransferConfig = {
  numClasses: number;
  imageSize: number;
  backbone: string;
  output: string;
  trainable: string;
  mean: string;
  std: string;
};

export class Transfer extends nn.Module {
  readonly backbone: nn.OnnxModule;
  readonly head: nn.Linear;

  constructor(c: TransferConfig) {
    super();
    if (c.backbone === '') throw new Error('no backbone: pass --set backbone=FILE.onnx (e.g. ../shared/models/mobilenetv2-7-fp32.onnx)');
    const last = /^last:(\d+)$/.exec(c.trainable);
    const trainable = c.trainable === 'none' ? false : c.trainable === 'all' ? true : last ? { last: Number(last[1]) } : c.trainable.split(',').map((s) => s.trim()).filter(Boolean);
    this.backbone = new nn.OnnxModule(c.backbone, { output: c.output || undefined, trainable });
    // The head's width is the backbone output's size per image, found by building the backbone once (a cut without
    // a fixed size is refused, as `deepvision inspect` leaves it out of the cut points it lists).
    this.head = new nn.Linear(this.backbone.featuresPerImage([1, 3, c.imageSize, c.imageSize]), c.numClasses);
  }

  forward(x: Tensor): Tensor {
    return this.head.forward(F.flatten(this.backbone.forward(x)));
  }
}

export default defineModel<TransferConfig>({
  name: 'transfer',
  description: 'Pretrained ONNX backbone (frozen or fine-tuned) + linear head',
  defaults: { numClasses: 10, imageSize: 224, backbone: '', output: 'features', trainable: 'none', mean: '0.485,0.456,0.406', std: '0.229,0.224,0.225' },
  inputs: (c) => [{ name: 'input', shape: ['batch', 3, c.imageSize, c.imageSize] }],
  // The statistics the bundled backbones (and torchvision's) were trained with; --set mean=/std= for others.
  normalization: (c) => ({ mean: c.mean.split(',').map(Number), std: c.std.split(',').map(Number) }),
  create: (c) => new Transfer(c),
});
