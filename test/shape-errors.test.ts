/** Shape and type mismatches fail while building, naming the DSL op, the module and the shapes. */
import { GraphBuilder } from '../src/dsl/builder';
import * as F from '../src/dsl/functional';
import type { Tensor } from '../src/dsl/builder';
import { defineModel } from '../src/model/definition';
import { buildModel } from '../src/model/build';
import * as nn from '../src/nn';
import { TensorData } from '../src/ir/tensor';

function building(body: (b: GraphBuilder) => unknown): () => unknown {
  return () => {
    const b = new GraphBuilder('g');
    return b.run(() => body(b));
  };
}

describe('shape errors', () => {
  test('conv2d channel mismatch inside a module names the module path', () => {
    class Block extends nn.Module {
      conv = new nn.Conv2d(128, 128, 3, { padding: 1 });
      forward(x: Tensor): Tensor {
        return this.conv.forward(x);
      }
    }
    class Net extends nn.Module {
      block1 = new nn.Conv2d(3, 64, 3, { padding: 1 });
      block2 = new Block();
      forward(x: Tensor): Tensor {
        return this.block2.forward(this.block1.forward(x));
      }
    }
    const def = defineModel({ name: 'net', defaults: {}, inputs: () => [{ name: 'input', shape: ['batch', 3, 32, 32] }], create: () => new Net() });
    expect(() => buildModel(def)).toThrow(/^conv2d 'block2\.conv': input has 64 channels, weight expects 128 \(Conv inputs: float32\[batch, 64, 32, 32\], float32\[128, 128, 3, 3\], float32\[128\]\)$/);
  });

  test('linear with the wrong number of input features', () => {
    class Net extends nn.Module {
      head = new nn.Sequential(new nn.Flatten(), new nn.Linear(100, 10));
      forward(x: Tensor): Tensor {
        return this.head.forward(x);
      }
    }
    const def = defineModel({ name: 'net', defaults: {}, inputs: () => [{ name: 'input', shape: ['batch', 3, 8, 8] }], create: () => new Net() });
    expect(() => buildModel(def)).toThrow("linear 'head.1': input has 192 features, weight expects 100");
  });

  test('matmul inner dimensions', () => {
    expect(building((b) => F.matmul(b.input('a', 'float32', [2, 3]), b.input('b', 'float32', [4, 5]))))
      .toThrow("matmul 'g': inner dimensions differ: float32[2, 3] @ float32[4, 5] (3 vs 4)");
  });

  test('broadcasting clash and mixed element types', () => {
    expect(building((b) => F.add(b.input('a', 'float32', [2, 3]), b.input('b', 'float32', [4]))))
      .toThrow("add 'g': shapes [2, 3] and [4] do not broadcast: dimension -1 is 3 in one operand and 4 in another");
    expect(building((b) => F.mul(b.input('a', 'float32', [2]), b.input('b', 'int64', [2]))))
      .toThrow("mul 'g': first operand is float32 but second operand is int64; cast one of them");
  });

  test('reshape to a different element count', () => {
    expect(building((b) => F.reshape(b.input('a', 'float32', [2, 3, 4]), [5, -1])))
      .toThrow("reshape 'g': cannot reshape [2, 3, 4] to [5,-1]: 24 elements do not divide into 5");
    expect(building((b) => F.reshape(b.input('a', 'float32', [2, 3]), [4, 2])))
      .toThrow('cannot reshape [2, 3] (6 elements) to [4,2] (8 elements)');
  });

  test('a pooling window larger than the input', () => {
    expect(building((b) => F.maxPool2d(b.input('a', 'float32', [1, 1, 2, 2]), 3)))
      .toThrow("maxPool2d 'g': spatial size 2 (padded to 2) is smaller than the 3-wide window on axis 2");
  });

  test('concat with mismatched dims, gather with float indices, bad transpose perm', () => {
    expect(building((b) => F.concat([b.input('a', 'float32', [2, 3]), b.input('b', 'float32', [3, 3])], 1)))
      .toThrow("concat 'g': inputs differ outside the concat axis 1");
    expect(building((b) => F.gather(b.input('a', 'float32', [5, 2]), b.input('i', 'float32', [3]))))
      .toThrow("gather 'g': indices must be int64 or int32, got float32");
    expect(building((b) => F.transpose(b.input('a', 'float32', [2, 3]), [0, 0])))
      .toThrow("transpose 'g': perm [0,0] is not a permutation of the 2 axes of float32[2, 3]");
  });

  test('symbolic dimensions flow through shape rules', () => {
    const b = new GraphBuilder('g');
    const x = b.input('x', 'float32', ['batch', 256, 8, 8]);
    const w = b.initializer('w', TensorData.float32([10, 16384], new Float32Array(163840)));
    const y = b.run(() => F.linear(F.reshape(x, [0, -1]), w));
    expect(y.shape).toEqual(['batch', 10]);
    expect(b.run(() => F.flatten(x, 2)).shape).toEqual(['batch*256', 64]);
    expect(b.run(() => F.reshape(x, [-1, 64])).shape).toEqual(['batch*256', 64]);
    // A symbolic product splits back into its factors: planes of the batch regrouped per image.
    const planes = b.run(() => F.reshape(x, [-1, 1, 8, 8]));
    expect(planes.shape).toEqual(['batch*256', 1, 8, 8]);
    expect(b.run(() => F.reshape(planes, [-1, 256, 64])).shape).toEqual(['batch', 256, 64]);
    expect(b.run(() => F.reshape(planes, [0, 64])).shape).toEqual(['batch*256', 64]);
    expect(() => b.run(() => F.reshape(planes, [-1, 3, 64]))).toThrow('do not divide into 192');
  });

  test('DSL ops outside a build and parameters of modules outside the model are explained', () => {
    expect(() => F.relu(new nn.Linear(2, 2).weight)).toThrow('DSL ops can only be used while a graph is being built');
    const stray = new nn.Linear(2, 2);
    expect(building((b) => F.linear(b.input('x', 'float32', [1, 2]), stray.weight)))
      .toThrow("parameter '(unnamed)' is not part of the model being built");
  });
});
