import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { GraphBuilder } from '../../src/dsl/builder';
import * as F from '../../src/dsl/functional';
import type { Tensor } from '../../src/dsl/builder';
import { TensorData } from '../../src/ir/tensor';
import { encodeModel } from '../../src/onnx/write';
import { Rng } from '../../src/util/rng';

/**
 * Writes a small pretrained-like backbone (seeded weights) with the ops of MobileNetV2 and SqueezeNet: depthwise
 * conv, Clip as ReLU6 (bounds shaped [1], as some exporters write them), a residual Add, MaxPool with ceil_mode,
 * Concat of two branches, global average pool, Flatten, Gemm. Input [N, 3, 9, 9]; outputs `features` [N, 8] and
 * `logits` [N, 5]. Returns the file's path.
 */
export function writeSmallBackbone(dir: string, seed = 'small-backbone'): string {
  const rng = new Rng(seed);
  const randn = (dims: number[], scale = 0.3) => TensorData.float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => scale * rng.normal()));
  const b = new GraphBuilder('small-backbone');
  const x = b.input('input', 'float32', ['N', 3, 9, 9]);
  const features = b.run(() => {
    const init = (name: string, dims: number[]) => b.initializer(name, randn(dims));
    const stem = F.conv2d(x, init('stem.weight', [4, 3, 3, 3]), init('stem.bias', [4]), { padding: 1 });
    const six = b.initializer('six', TensorData.float32([], [6]));
    const zero = b.initializer('zero', TensorData.float32([], [0]));
    const relu6 = (t: Tensor) => b.op('Clip', [t, zero, six], {}, 'clip');
    const a = relu6(stem);
    const depthwise = relu6(F.conv2d(a, init('dw.weight', [4, 1, 3, 3]), init('dw.bias', [4]), { padding: 1, groups: 4 }));
    const residual = F.add(a, F.conv2d(depthwise, init('pw.weight', [4, 4, 1, 1]), undefined));
    const pooled = F.maxPool2d(residual, 2, { ceilMode: true }); // 9 -> 5 with ceil_mode
    const left = F.relu(F.conv2d(pooled, init('left.weight', [4, 4, 1, 1]), init('left.bias', [4])));
    const right = F.relu(F.conv2d(pooled, init('right.weight', [4, 4, 3, 3]), init('right.bias', [4]), { padding: 1 }));
    return F.flatten(F.globalAvgPool(F.concat([left, right], 1)));
  });
  b.output('features', features);
  b.output('logits', b.run(() => F.linear(features, b.initializer('fc.weight', randn([5, 8])), b.initializer('fc.bias', randn([5])))));
  // The Clip bounds as [1]-shaped tensors (the builder itself only makes scalars).
  const proto = onnx.ModelProto.decode(encodeModel(b.toModel()));
  for (const t of proto.graph!.initializer!) if (t.name === 'six' || t.name === 'zero') t.dims = [1];
  const file = path.join(dir, 'small-backbone.onnx');
  fs.writeFileSync(file, onnx.ModelProto.encode(proto).finish());
  return file;
}
