/**
 * Transfer learning: a pretrained ONNX backbone (MobileNetV2, SqueezeNet, a torchvision export, your own) with a
 * new linear head. `--set backbone=FILE` names the ONNX file, `--set output=NAME` the value to cut at (default
 * `features`, as the bundled MobileNetV2 names its pooled 1280-vector; `deepvision inspect FILE` lists cut points),
 * `--set trainable=none|all|last:K|PREFIX[,PREFIX...]` which backbone parameters train (default none: a frozen
 * backbone; last:K the last K layers with weights). `--set pool=avg` averages a spatial cut over its positions first
 * (SqueezeNet's `features` is 512x13x13); `--set hidden=N` puts a hidden layer of N ReLU units (with `--set
 * dropout=P` before the last layer) between the features and the classes instead of one linear layer.
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
  pool: string;
  hidden: number;
  dropout: number;
};

export class Transfer extends nn.Module {
  readonly backbone: nn.OnnxModule;
  readonly hidden: nn.Linear | undefined;
  readonly dropout: nn.Dropout;
  readonly head: nn.Linear;
  readonly pool: boolean;

  constructor(c: TransferConfig) {
    super();
    if (c.backbone === '') throw new Error('no backbone: pass --set backbone=FILE.onnx (e.g. ../shared/models/mobilenetv2-7-fp32.onnx)');
    const last = /^last:(\d+)$/.exec(c.trainable);
    const trainable = c.trainable === 'none' ? false : c.trainable === 'all' ? true : last ? { last: Number(last[1]) } : c.trainable.split(',').map((s) => s.trim()).filter(Boolean);
    if (c.pool !== 'none' && c.pool !== 'avg') throw new Error(`pool must be none or avg, not '${c.pool}'`);
    if (!Number.isInteger(c.hidden) || c.hidden < 0 || c.hidden > 65536) throw new Error(`hidden must be a whole number of units from 0 (a linear head) to 65536, not ${c.hidden}`);
    this.backbone = new nn.OnnxModule(c.backbone, { output: c.output || undefined, trainable });
    // The head's width is the backbone output's size per image, found by building the backbone once (a cut without
    // a fixed size is refused, as `deepvision inspect` leaves it out of the cut points it lists).
    const shape = [1, 3, c.imageSize, c.imageSize];
    const perImage = this.backbone.featuresPerImage(shape);
    const cut = this.backbone.outputShape(shape);
    // A cut that is already a vector per image has nothing to pool.
    this.pool = c.pool === 'avg' && cut.length > 2;
    const features = this.pool ? Number(cut[1]) : perImage;
    this.hidden = c.hidden > 0 ? new nn.Linear(features, c.hidden) : undefined;
    this.dropout = new nn.Dropout(c.dropout);
    this.head = new nn.Linear(c.hidden > 0 ? c.hidden : features, c.numClasses);
  }

  forward(x: Tensor): Tensor {
    let y = this.backbone.forward(x);
    y = F.flatten(this.pool ? F.globalAvgPool(y) : y);
    if (this.hidden !== undefined) y = F.relu(this.hidden.forward(y));
    return this.head.forward(this.dropout.forward(y));
  }
}

export default defineModel<TransferConfig>({
  name: 'transfer',
  description: 'Pretrained ONNX backbone (frozen or fine-tuned) + linear head',
  defaults: {
    numClasses: 10, imageSize: 224, backbone: '', output: 'features', trainable: 'none', mean: '0.485,0.456,0.406', std: '0.229,0.224,0.225',
    pool: 'none', hidden: 0, dropout: 0,
  },
  inputs: (c) => [{ name: 'input', shape: ['batch', 3, c.imageSize, c.imageSize] }],
  // The statistics the bundled backbones (and torchvision's) were trained with; --set mean=/std= for others.
  normalization: (c) => ({ mean: c.mean.split(',').map(Number), std: c.std.split(',').map(Number) }),
  create: (c) => new Transfer(c),
});
