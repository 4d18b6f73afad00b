/**
 * Gradients through the real pretrained backbones (data lane), against an independent reference: PyTorch (Debian's
 * python3-torch, float64) running the same ONNX file node by node with its own conv, clip, pooling and concat, on
 * the same weights, input and head. Every backbone parameter's gradient is compared (its first values and its
 * norm) to 1e-4 of the tensor's largest gradient.
 */
import * as ort from 'onnxruntime-node';
import transfer from '../graphs/transfer';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { runPyTorch } from './support/pytorch';
import { dataTest, sharedFile } from './support/shared';
import { trainingFeeds } from './support/training-feeds';

/** A float64 PyTorch interpreter of the ONNX ops these backbones use, with a linear head and cross-entropy. */
const SCRIPT = `
import json, sys, math, torch, onnx
from onnx import numpy_helper
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)
d = json.load(sys.stdin)
model = onnx.load(d['file'])
T = lambda k: torch.tensor(d['feeds'][k]['data'], dtype=torch.float64).reshape(d['feeds'][k]['shape'])
weights = {t.name: torch.tensor(numpy_helper.to_array(t), dtype=torch.float64) for t in model.graph.initializer}
params = {}
for name in d['params']:
    weights[name] = weights[name].clone().requires_grad_(True)
    params[name] = weights[name]
attrs = lambda n: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
values = dict(weights)
values[model.graph.input[0].name] = T('input')
for n in model.graph.node:
    a = attrs(n)
    x = [values[i] if i else None for i in n.input]
    if n.op_type == 'Conv':
        p = a.get('pads', [0, 0, 0, 0])
        h = F.pad(x[0], (p[1], p[3], p[0], p[2]))
        y = F.conv2d(h, x[1], x[2] if len(x) > 2 else None, a.get('strides', [1, 1]), 0, a.get('dilations', [1, 1]), a.get('group', 1))
    elif n.op_type == 'Clip': y = torch.clamp(x[0], x[1].item(), x[2].item())
    elif n.op_type == 'Relu': y = F.relu(x[0])
    elif n.op_type == 'Add': y = x[0] + x[1]
    elif n.op_type == 'Concat': y = torch.cat(x, a['axis'])
    elif n.op_type == 'MaxPool':
        p = a.get('pads', [0, 0, 0, 0])
        assert p[0] == p[2] and p[1] == p[3]
        y = F.max_pool2d(x[0], a['kernel_shape'], a.get('strides', a['kernel_shape']), (p[0], p[1]), ceil_mode=bool(a.get('ceil_mode', 0)))
    elif n.op_type == 'GlobalAveragePool': y = x[0].mean(dim=(2, 3), keepdim=True)
    elif n.op_type == 'Flatten': y = torch.flatten(x[0], a.get('axis', 1))
    elif n.op_type == 'Identity': y = x[0]
    elif n.op_type == 'Gemm': y = x[0] @ (x[1].T if a.get('transB', 0) else x[1]) + x[2]
    else: raise Exception('no reference for ' + n.op_type)
    values[n.output[0]] = y
    if n.output[0] == d['output']: break
f = torch.flatten(values[d['output']], 1)
logits = f @ T('head.weight').T + T('head.bias')
loss = F.cross_entropy(logits, torch.tensor(d['feeds']['labels']['data']).long())
loss.backward()
out = {}
for k, v in params.items():
    g = v.grad.flatten()
    out[k] = {'first': g[:64].tolist(), 'norm': g.norm().item(), 'max': g.abs().max().item()}
print(json.dumps({'loss': loss.item(), 'grads': out}))
`;

async function compareWithPyTorch(relative: string, output: string): Promise<void> {
  const file = sharedFile(relative);
  const graph = buildTrainingGraph(transfer, { config: { backbone: file, output, imageSize: 64, numClasses: 3, trainable: 'all' }, seed: 1 });
  const feeds = trainingFeeds(graph, 64, [0, 2]);
  const session = await ort.InferenceSession.create(encodeModel(graph.model));
  const out = await session.run(feeds);
  await session.release();
  const backbone = graph.trainable.filter((n) => n.startsWith('backbone.'));
  const plain = (k: string) => ({ shape: [...feeds[k]!.dims], data: Array.from(feeds[k]!.data as ArrayLike<number | bigint>, Number) });
  const reference = runPyTorch(SCRIPT, {
    file, output, feeds: { input: plain('input'), labels: plain('labels'), 'head.weight': plain('head.weight'), 'head.bias': plain('head.bias') },
    params: backbone.map((n) => n.slice('backbone.'.length)),
  }) as { loss: number; grads: Record<string, { first: number[]; norm: number; max: number }> };
  expect(Math.abs((out.loss!.data as Float32Array)[0]! - reference.loss)).toBeLessThan(1e-4);
  expect(backbone.length).toBe(Object.keys(reference.grads).length);
  for (const name of backbone) {
    const theirs = reference.grads[name.slice('backbone.'.length)]!;
    const ours = out[`${name}_grad`]!.data as Float32Array;
    const norm = Math.sqrt(ours.reduce((s, v) => s + v * v, 0));
    const worst = Math.max(...theirs.first.map((v, i) => Math.abs(v - ours[i]!)));
    expect([name, worst <= 1e-4 * theirs.max, Math.abs(norm - theirs.norm) <= 1e-4 * theirs.norm]).toEqual([name, true, true]);
  }
}

dataTest('gradients through every parameter of MobileNetV2 (depthwise Conv, Clip as ReLU6, residual Add, pooling) match PyTorch', ['models/mobilenetv2-7-fp32.onnx'],
  () => compareWithPyTorch('models/mobilenetv2-7-fp32.onnx', 'features'));

dataTest('gradients through every parameter of SqueezeNet (ceil-mode MaxPool, Concat, Relu) match PyTorch', ['models/squeezenet1.1-fp32.onnx'],
  () => compareWithPyTorch('models/squeezenet1.1-fp32.onnx', 'features'));
